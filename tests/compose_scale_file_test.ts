/**
 * compose.scale.yaml, checked by parsing against compose.yaml and shared/runtime/config.ts: PostgreSQL
 * with a database per service, a 3-node RabbitMQ cluster, and replicas that each get a
 * configuration the services accept.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { loadConfig, type ServiceName } from "@campus/shared/config";

const ROOT = new URL("..", import.meta.url).pathname;

interface Service {
  image?: string;
  hostname?: string;
  extends?: { file: string; service: string };
  environment?: Record<string, string>;
  ports?: unknown;
  depends_on?: Record<string, { condition?: string }>;
  volumes?: string[];
}

/** `!reset` clears what compose.yaml set; here it reads as the value it resets to. */
const reset = { tag: "!reset", resolve: (value: unknown) => value, collection: "seq" as const };

async function read(file: string): Promise<{ services: Record<string, Service> }> {
  return parse(await Deno.readTextFile(join(ROOT, file)), { merge: true, customTags: [reset] });
}

const base = await read("compose.yaml");
const scale = await read("compose.scale.yaml");

/** Each service's replicas in the overlay, by Compose service name. */
const REPLICAS: Record<ServiceName, string[]> = {
  order: ["order_service", "order_service_2"],
  inventory: ["inventory_service", "inventory_service_2", "inventory_service_3"],
  notification: ["notification_service", "notification_service_2"],
};

/** A replica's environment as Compose merges it: compose.yaml's service, then the overlay's. */
function environmentOf(name: string): Record<string, string> {
  const overlay = scale.services[name];
  const from = overlay.extends?.service ?? name;
  return { ...base.services[from]?.environment, ...overlay.environment };
}

/** A value as Compose resolves it when the variable is unset: `${NAME:-default}` → default. */
function resolveDefault(value: string): string {
  return String(value).replace(/\$\{(\w+):?-([^}]*)\}/g, (_, _name, fallback) => fallback);
}

Deno.test("compose.scale.yaml runs a 3-node RabbitMQ cluster that includes compose.yaml's broker", () => {
  const nodes = ["rabbitmq", "rabbitmq2", "rabbitmq3"];
  for (const node of nodes) {
    const entry = scale.services[node];
    assert.ok(entry, `the overlay has ${node}`);
    assert.equal(entry.hostname, node, "a fixed node name, listed in the cluster config");
    assert.ok(entry.environment?.RABBITMQ_ERLANG_COOKIE, "one cookie for every node");
    assert.ok(
      entry.volumes?.includes("./ops/rabbitmq-cluster.conf:/etc/rabbitmq/rabbitmq.conf:ro"),
    );
  }
  assert.ok(base.services.rabbitmq, "the first node is compose.yaml's broker");
});

Deno.test("ops/rabbitmq-cluster.conf lists every node of the overlay", async () => {
  const conf = await Deno.readTextFile(join(ROOT, "ops/rabbitmq-cluster.conf"));
  for (const node of ["rabbitmq", "rabbitmq2", "rabbitmq3"]) {
    assert.match(conf, new RegExp(`classic_config\\.nodes\\.\\d = rabbit@${node}\\n`));
  }
  assert.match(conf, /listeners\.tcp\.default = 5672/);
});

Deno.test("each replica runs on PostgreSQL and quorum queues of the cluster", async (t) => {
  for (const [service, replicas] of Object.entries(REPLICAS) as [ServiceName, string[]][]) {
    await t.step(service, () => {
      const databases = new Set<string>();
      for (const [i, replica] of replicas.entries()) {
        const entry = scale.services[replica];
        assert.ok(entry, `the overlay has ${replica}`);
        if (i > 0) {
          assert.deepEqual(entry.extends, { file: "compose.yaml", service: replicas[0] });
          assert.deepEqual(entry.ports, [], "only the first replica publishes a host port");
        }
        assert.equal(entry.depends_on?.databases?.condition, "service_completed_successfully");
        const env = Object.fromEntries(
          Object.entries(environmentOf(replica)).map(([k, v]) => [k, resolveDefault(v)]),
        );
        const config = loadConfig(service, env);
        assert.equal(config.queueType, "quorum");
        assert.equal(config.amqpUrls.length, 3);
        assert.match(config.databaseUrl ?? "", /^postgres:\/\/campus:[^@]+@postgres:5432\/\w+$/);
        databases.add(config.databaseUrl!);
      }
      assert.equal(databases.size, 1, "the replicas of a service share its database");
    });
  }
  const perService = Object.values(REPLICAS).map((r) => environmentOf(r[0]).DATABASE_URL);
  assert.equal(new Set(perService).size, 3, "one database per service");
});

Deno.test("the databases are made once PostgreSQL answers, before any service starts", () => {
  const postgres = scale.services.postgres;
  assert.equal(postgres.image, "postgres:15");
  const databases = scale.services.databases;
  assert.equal(databases.depends_on?.postgres?.condition, "service_healthy");
  const script = JSON.stringify(databases);
  for (const name of ["orders", "inventory", "notifications"]) {
    assert.ok(script.includes(name), `the databases job makes ${name}`);
  }
});
