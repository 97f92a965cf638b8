import assert from "node:assert/strict";
import { parseDiagnostics } from "./check_docs.ts";

// `deno doc --lint` output without colours, as the check reads it.
const OUTPUT = `error[missing-jsdoc]: exported symbol is missing JSDoc documentation
  --> /repo/shared/menu.ts:71:14
   |
71 | export const undocumented = 1;
   |              ^


error[private-type-ref]: public type 'f' references private type 'P'
 --> /repo/shared/messaging/topology.ts:2:1
  |
2 | export function f(x: P) { return x.a; }
  | ^

error: Found 2 documentation lint errors.
`;

Deno.test("each diagnostic is read with the file it points at, the summary left out", () => {
  const found = parseDiagnostics(OUTPUT, "/repo");
  assert.deepEqual(found.map((d) => d.file), ["shared/menu.ts", "shared/messaging/topology.ts"]);
  assert.ok(found[0].text.startsWith("error[missing-jsdoc]"), found[0].text);
  assert.ok(found[1].text.endsWith("| ^"), `no summary in: ${found[1].text}`);
});

Deno.test("no diagnostics in clean output", () => {
  assert.deepEqual(parseDiagnostics("Checked 3 files\n", "/repo"), []);
});
