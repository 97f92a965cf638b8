/**
 * Writes the entry program of a `source` container image (see the Dockerfile): a script that
 * runs one service with `deno run --cached-only` and the permissions of tools/service_runtime.ts.
 *   deno run --allow-write=/out tools/source_entry.ts --service order --out /out/campus-service
 * @module
 */
// deno-lint-ignore-file no-console -- a build step: its error message is its output
import { parseArgs } from "node:util";
import { sourceEntryScript } from "./service_runtime.ts";
import { SERVICE_NAMES } from "@campus/shared/topology";
import { CONTAINER_DATA_DIR } from "./compile.ts";

/** Where the `source` image keeps the workspace, and its `deno`. */
export const SOURCE_ROOT = "/app";
export const SOURCE_DENO = "/usr/local/bin/deno";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      service: { type: "string" },
      out: { type: "string" },
      root: { type: "string", default: SOURCE_ROOT },
      deno: { type: "string", default: SOURCE_DENO },
      "data-dir": { type: "string", default: CONTAINER_DATA_DIR },
    },
  });
  const service = values.service ?? "";
  if (!(SERVICE_NAMES as readonly string[]).includes(service) || !values.out) {
    console.error(
      `usage: source_entry.ts --service ${SERVICE_NAMES.join("|")} --out <file>` +
        ` (got --service "${service}")`,
    );
    Deno.exit(2);
  }
  const script = sourceEntryScript(values.deno, values.root, service, values["data-dir"]);
  await Deno.writeTextFile(values.out, script, { mode: 0o755 });
}
