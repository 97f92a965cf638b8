/**
 * `deno task order` (and `inventory`, `notification`): runs one service on 127.0.0.1 (unless
 * HOST is set) with the permissions its configuration calls for (tools/service_runtime.ts),
 * computed here from the environment it will see, since a task's fixed command line cannot know
 * `DATA_DIR` or the broker's host.
 *   deno run --allow-env --allow-run tools/run_service.ts order
 * @module
 */
// deno-lint-ignore-file no-console -- a terminal program: its usage message is its output
import { SERVICE_NAMES, type ServiceName } from "@campus/shared/topology";
import { serviceRunArgs } from "./service_runtime.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const [service] = Deno.args;
if (!(SERVICE_NAMES as readonly string[]).includes(service)) {
  console.error(`usage: run_service.ts ${SERVICE_NAMES.join("|")} (got "${service ?? ""}")`);
  Deno.exit(2);
}
// As with `deno task dev`, a service started by hand serves this machine only unless HOST says
// otherwise; containers and binaries keep the configuration's default, 0.0.0.0.
const env = { HOST: Deno.env.get("HOST") || "127.0.0.1" };
const child = new Deno.Command(Deno.execPath(), {
  args: serviceRunArgs(ROOT, service as ServiceName, env),
  env,
  stdin: "null",
}).spawn();
// Ctrl-C reaches the service from the terminal too; a SIGTERM sent to this process alone is
// passed on, and either way the service shuts down gracefully before this process exits.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  });
}
Deno.exit((await child.status).code);
