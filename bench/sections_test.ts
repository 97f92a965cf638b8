/** Tests of how the replica comparison shares bench/BASELINE.md with the full run. */
import assert from "node:assert/strict";
import { replicaSectionOf, withReplicaSection } from "./replicas.ts";

const FULL = "# Benchmark\n\n## Targets\n\nt\n\n## Correctness\n\nc\n";
const SECTION = "## Replicas on PostgreSQL\n\nrows\n";

Deno.test("withReplicaSection() adds the section at the end, then replaces only it", () => {
  const once = withReplicaSection(FULL, SECTION);
  assert.equal(once, `${FULL}\n${SECTION}`);
  assert.equal(replicaSectionOf(once).trim(), SECTION.trim());
  const again = withReplicaSection(once, "## Replicas on PostgreSQL\n\nnew rows\n");
  assert.match(again, /## Correctness\n\nc\n/, "the full run's part stays");
  assert.match(again, /new rows/);
  assert.doesNotMatch(again, /\nrows\n/, "the old rows are gone");
  const middle = withReplicaSection(
    "# B\n\n## Replicas on PostgreSQL\n\nold\n\n## Later\n\nl\n",
    SECTION,
  );
  assert.equal(middle, "# B\n\n## Replicas on PostgreSQL\n\nrows\n\n## Later\n\nl\n");
});

Deno.test("replicaSectionOf() is empty for a report without one", () => {
  assert.equal(replicaSectionOf(FULL), "");
});
