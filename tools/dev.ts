/**
 * `deno task dev`: runs the whole system on one machine. Uses the broker at AMQP_URL; when
 * none answers there and rabbitmq-server is installed, starts a private node for the session.
 * Ctrl-C stops everything it started.
 * @module
 */
// deno-lint-ignore-file no-console -- a terminal program: talking to the user is its job
import { join } from "node:path";
import { ENV_DEFAULTS } from "@campus/shared/config";
import { SERVICES } from "@campus/shared/topology";
import { type BrokerNode, canStartBrokerNode, createBrokerNode } from "./broker_node.ts";
import { serviceRunArgs } from "./service_runtime.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const amqpUrl = Deno.env.get("AMQP_URL") || ENV_DEFAULTS.AMQP_URL;
const dataDir = Deno.env.get("DATA_DIR") || join(ROOT, "data");
let node: BrokerNode | undefined;
let url = amqpUrl;

if (!(await answers(amqpUrl))) {
  if (!canStartBrokerNode()) {
    console.error(`No RabbitMQ answers at ${amqpUrl.replace(/:[^:@/]+@/, ":***@")}. Start one:
  docker compose up -d rabbitmq          (Docker)
  sudo apt-get install rabbitmq-server   (Debian/Ubuntu; it starts on 5672)
or point AMQP_URL at a running broker, then run deno task dev again.`);
    Deno.exit(1);
  }
  console.log("No broker at AMQP_URL; starting a private RabbitMQ node for this session...");
  // Same port as AMQP_URL, so scripts and tools using the default URL find it.
  const port = Number(new URL(amqpUrl.replace(/^amqps?:/, "http:")).port || 5672);
  node = await createBrokerNode({ port });
  await node.start();
  url = node.url;
  console.log(`Private broker listening at ${url} (data in ${node.dir})`);
}

const children = SERVICES.map(({ name: service }) => {
  const child = new Deno.Command(Deno.execPath(), {
    args: serviceRunArgs(ROOT, service),
    env: { AMQP_URL: url, DATA_DIR: join(dataDir, service) },
    stdin: "null",
  }).spawn();
  child.status.then((status) => {
    if (!stopping) console.error(`${service} exited with code ${status.code}`);
  });
  return child;
});
console.log(
  `${SERVICES.map((s) => `${s.name} :${s.port}`).join(", ")} — Ctrl-C stops everything.`,
);
console.log(
  `Try: curl -s -X POST localhost:5001/order -H 'Content-Type: application/json' ` +
    `-d '{"item":"Coffee","qty":1,"student_id":"S1"}'`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  for (const child of children) {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
  await Promise.all(children.map((c) => c.status));
  await node?.dispose();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);

async function answers(amqp: string): Promise<boolean> {
  const { hostname, port } = new URL(amqp.replace(/^amqps?:/, "http:"));
  try {
    const conn = await Deno.connect({ hostname, port: Number(port || 5672) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}
