/** Tests of how the comparisons share bench/BASELINE.md with the full run. */
import assert from "node:assert/strict";
import { keepSections, sectionOf, withSection } from "./sections.ts";
import { REPLICAS_HEADING } from "./replicas.ts";
import { OBSERVE_HEADING } from "./observe.ts";

const FULL = "# Benchmark\n\n## Targets\n\nt\n\n## Correctness\n\nc\n";
const SECTION = "## Replicas on PostgreSQL\n\nrows\n";

Deno.test("withSection() adds the section at the end, then replaces only it", () => {
  const once = withSection(FULL, REPLICAS_HEADING, SECTION);
  assert.equal(once, `${FULL}\n${SECTION}`);
  assert.equal(sectionOf(once, REPLICAS_HEADING).trim(), SECTION.trim());
  const again = withSection(once, REPLICAS_HEADING, "## Replicas on PostgreSQL\n\nnew rows\n");
  assert.match(again, /## Correctness\n\nc\n/, "the full run's part stays");
  assert.match(again, /new rows/);
  assert.doesNotMatch(again, /\nrows\n/, "the old rows are gone");
  const middle = withSection(
    "# B\n\n## Replicas on PostgreSQL\n\nold\n\n## Later\n\nl\n",
    REPLICAS_HEADING,
    SECTION,
  );
  assert.equal(middle, "# B\n\n## Replicas on PostgreSQL\n\nrows\n\n## Later\n\nl\n");
});

Deno.test("sectionOf() is empty for a report without one", () => {
  assert.equal(sectionOf(FULL, REPLICAS_HEADING), "");
});

Deno.test("each comparison rewrites its own section and the full run keeps both", () => {
  const observe = "## Observability cost\n\nplain, scraped, traced\n";
  const both = withSection(withSection(FULL, REPLICAS_HEADING, SECTION), OBSERVE_HEADING, observe);
  const replicasAgain = withSection(both, REPLICAS_HEADING, "## Replicas on PostgreSQL\n\nnew\n");
  assert.equal(sectionOf(replicasAgain, OBSERVE_HEADING).trim(), observe.trim());
  assert.match(sectionOf(replicasAgain, REPLICAS_HEADING), /new/);
  const fresh = "# Benchmark\n\n## Targets\n\nfresh\n";
  const rerun = keepSections(fresh, replicasAgain, [REPLICAS_HEADING, OBSERVE_HEADING]);
  assert.match(rerun, /## Targets\n\nfresh\n/);
  assert.doesNotMatch(rerun, /## Correctness/, "the old full report is gone");
  assert.match(sectionOf(rerun, REPLICAS_HEADING), /new/);
  assert.equal(sectionOf(rerun, OBSERVE_HEADING).trim(), observe.trim());
  assert.equal(keepSections(fresh, "", [REPLICAS_HEADING, OBSERVE_HEADING]), fresh);
});
