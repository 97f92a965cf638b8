/**
 * `deno task dev`: runs the whole system on one machine. Uses the broker at AMQP_URL; when
 * none answers there and rabbitmq-server is installed, starts a private node for the session,
 * with the management UI on RABBITMQ_UI_PORT (15672). Everything listens on 127.0.0.1 only
 * (the services unless HOST says otherwise), and each service runs with the least permissions
 * its configuration allows (tools/service_runtime.ts). Ctrl-C stops everything it started.
 * @module
 */
// deno-lint-ignore-file no-console -- a terminal program: talking to the user is its job
import { join } from "node:path";
import { ENV_DEFAULTS } from "@campus/shared/config";
import { redactUrl } from "@campus/shared/redact";
import { SERVICES } from "@campus/shared/topology";
import { type BrokerNode, canStartBrokerNode, createBrokerNode } from "./broker_node.ts";
import { serviceRunArgs } from "./service_runtime.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** Where the management UI of a private node listens unless RABBITMQ_UI_PORT says otherwise. */
const UI_PORT = 15672;

const amqpUrl = Deno.env.get("AMQP_URL") || ENV_DEFAULTS.AMQP_URL;
// A developer's machine serves only itself; containers say HOST=0.0.0.0 in their environment.
const host = Deno.env.get("HOST") || "127.0.0.1";
const dataDir = Deno.env.get("DATA_DIR") || join(ROOT, "data");
const uiPort = portFrom("RABBITMQ_UI_PORT", UI_PORT);
// Each service's port: <NAME>_PORT (e.g. ORDER_PORT) or the table's; one PORT cannot serve three.
const services = SERVICES.map((s) => ({
  name: s.name,
  port: portFrom(`${s.name.toUpperCase()}_PORT`, s.port),
}));
const orderPort = services.find((s) => s.name === "order")!.port;
const inventoryUrl = `http://127.0.0.1:${services.find((s) => s.name === "inventory")!.port}`;
let node: BrokerNode | undefined;
let url = amqpUrl;

if (!(await answers(amqpUrl))) {
  if (!canStartBrokerNode()) {
    console.error(`No RabbitMQ answers at ${redactUrl(amqpUrl)}. Start one:
  docker compose up -d rabbitmq          (Docker)
  sudo apt-get install rabbitmq-server   (Debian/Ubuntu; it starts on 5672)
or point AMQP_URL at a running broker, then run deno task dev again.`);
    Deno.exit(1);
  }
  console.log("No broker at AMQP_URL; starting a private RabbitMQ node for this session...");
  // Same port as AMQP_URL, so scripts and tools using the default URL find it.
  const port = Number(new URL(amqpUrl.replace(/^amqps?:/, "http:")).port || 5672);
  const uiFree = portIsFree(uiPort);
  if (!uiFree) {
    console.log(
      `Port ${uiPort} is taken, so the node starts without its management UI ` +
        `(set RABBITMQ_UI_PORT to use another port).`,
    );
  }
  node = await createBrokerNode({ port, managementPort: uiFree ? uiPort : undefined });
  await node.start();
  url = node.url;
  console.log(`Private broker listening at ${redactUrl(url)} (data in ${node.dir})`);
}

const children = services.map(({ name, port }) => {
  // OTEL_SERVICE_NAME names each service in its traces when OTEL_DENO=true.
  const env = {
    AMQP_URL: url,
    HOST: host,
    DATA_DIR: join(dataDir, name),
    PORT: String(port),
    OTEL_SERVICE_NAME: name,
    INVENTORY_URL: inventoryUrl,
  };
  const child = new Deno.Command(Deno.execPath(), {
    args: serviceRunArgs(ROOT, name, env),
    env,
    stdin: "null",
  }).spawn();
  child.status.then((status) => {
    if (!stopping) console.error(`${name} exited with code ${status.code}`);
  });
  return child;
});
console.log(`${services.map((s) => `${s.name} :${s.port}`).join(", ")} — Ctrl-C stops everything.`);
if (node?.managementUrl) {
  console.log(`RabbitMQ management UI: ${node.managementUrl} (log in as guest / guest)`);
}
console.log(`Student page: http://localhost:${orderPort}/`);
console.log(`Kitchen board: http://localhost:${orderPort}/board`);
console.log(
  `Try: curl -s -X POST localhost:${orderPort}/order -H 'Content-Type: application/json' ` +
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

/** True when a broker listens at `amqp`, or at any node of a comma-separated list. */
async function answers(amqp: string): Promise<boolean> {
  for (const url of amqp.split(",").map((u) => u.trim()).filter(Boolean)) {
    const { hostname, port } = new URL(url.replace(/^amqps?:/, "http:"));
    try {
      const conn = await Deno.connect({ hostname, port: Number(port || 5672) });
      conn.close();
      return true;
    } catch {
      // try the next node
    }
  }
  return false;
}

/** The port in the variable `name`, or `fallback`; exits naming the variable when it is no port. */
function portFrom(name: string, fallback: number): number {
  const text = Deno.env.get(name);
  if (!text) return fallback;
  const port = Number(text);
  if (Number.isInteger(port) && port > 0 && port < 65536) return port;
  console.error(`${name} must be a port number (1-65535), got "${text}"`);
  Deno.exit(1);
}

/** True when `port` is free on 127.0.0.1, where the management UI would listen. */
function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse) return false;
    throw err;
  }
}
