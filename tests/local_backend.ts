/**
 * The local backend of the stack controller (tests/stack.ts), its default: real processes, with
 * a private RabbitMQ node (or a private cluster of several) unless `TEST_AMQP_URL` names a broker
 * to share, and with SQLite files or PostgreSQL databases of its own; it can run several
 * replicas of a service.
 * @module
 */
import { join } from "node:path";
import { QueueAdmin } from "@campus/testing/amqp_admin";
import { redactUrl } from "@campus/shared/redact";
import { topologyOptions } from "@campus/shared/config";
import { createPostgresDatabase } from "@campus/testing/store_contract";
import {
  dlqOf,
  retryQueueOf,
  SERVICE_NAMES,
  type ServiceName,
  type TopologyOptions,
  WORK_QUEUES,
} from "@campus/shared/topology";
import { type BrokerCluster, startBrokerCluster } from "../tools/broker_cluster.ts";
import {
  type BrokerNode,
  canStartBrokerNode,
  createBrokerNode,
  freePort,
  listensOn,
} from "../tools/broker_node.ts";
import { appendTo } from "../tools/process_log.ts";
import { serviceRunArgs } from "../tools/service_runtime.ts";
import { answers, waitFor } from "./poll.ts";
import type { ServiceExit, StackBackend, StackOptions } from "./stack_backend.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/**
 * Local processes: `deno run services/<name>/main.ts`, each replica on a free port, with its own
 * SQLite folder or its service's PostgreSQL database.
 */
export async function startLocalBackend(options: StackOptions = {}): Promise<StackBackend> {
  const shared = Deno.env.get("TEST_AMQP_URL");
  if (!shared && !canStartBrokerNode()) {
    throw new Error(
      "The tests need RabbitMQ: install rabbitmq-server (a private node is started per suite) " +
        "or set TEST_AMQP_URL to a broker they may purge.",
    );
  }
  const replicas = Object.fromEntries(
    SERVICE_NAMES.map((s) => [s, options.replicas?.[s] ?? 1]),
  ) as Record<ServiceName, number>;
  const store = options.store ?? "sqlite";
  if (store === "sqlite" && Object.values(replicas).some((n) => n > 1)) {
    throw new TypeError('Replicas share a database: run them with store "postgres"');
  }
  const nodeCount = options.brokerNodes ?? 1;
  if (shared && nodeCount > 1) throw new TypeError("A cluster cannot run on TEST_AMQP_URL");
  const passwords = options.passwords ?? {};
  if (shared && passwords.broker) {
    throw new TypeError("No broker user can be made on TEST_AMQP_URL");
  }

  let cluster: BrokerCluster | undefined;
  let node: BrokerNode | undefined;
  const databases: { url: string; drop(): Promise<void> }[] = [];
  const dir = await Deno.makeTempDir({ prefix: "campus-stack-" });
  const children = new Map<string, Deno.ChildProcess>();
  const exits = new Map<string, ServiceExit>();
  /** A process's key: the service name for the first replica, `name-N` for the others. */
  const keyOf = (service: ServiceName, replica = 0) =>
    replica === 0 ? service : `${service}-${replica}`;
  const logPath = (key: string) => join(dir, `${key}.log`);

  const exited = async (key: string) => {
    const child = children.get(key);
    if (!child) return;
    await child.status;
    children.delete(key);
  };

  const cleanUp = async () => {
    for (const key of [...children.keys()]) {
      children.get(key)?.kill("SIGKILL");
      await exited(key);
    }
    await cluster?.dispose();
    if (!cluster) await node?.dispose();
    for (const database of databases) await database.drop().catch(() => {});
    if (!Deno.env.get("KEEP_STACK")) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  let amqpUrl: string;
  /** What the services connect with: `amqpUrl`, or the user of `passwords.broker`. */
  let serviceAmqpUrl: string;
  const databaseUrls = {} as Record<ServiceName, string>;
  const ports = {} as Record<ServiceName, number[]>;
  try {
    if (nodeCount > 1) {
      cluster = await startBrokerCluster(nodeCount);
      node = cluster.nodes[0];
    } else if (!shared) {
      node = await createBrokerNode();
      await node.start();
    }
    amqpUrl = shared ?? cluster?.amqpUrl ?? node!.url;
    if (shared) await purgeAll(amqpUrl, topologyOptions(options.env));
    serviceAmqpUrl = amqpUrl;
    if (passwords.broker) {
      // Users are shared by a cluster's nodes: one node makes it for all.
      await node!.ctl("add_user", "campus", passwords.broker);
      await node!.ctl("set_permissions", "-p", "/", "campus", ".*", ".*", ".*");
      serviceAmqpUrl = amqpUrl.split(",").map((url) => {
        const withUser = new URL(url);
        withUser.username = "campus";
        withUser.password = passwords.broker!;
        return withUser.toString();
      }).join(",");
    }
    for (const service of SERVICE_NAMES) {
      ports[service] = Array.from({ length: replicas[service] }, () => freePort());
      if (store === "postgres") {
        const database = await createPostgresDatabase();
        databases.push(database);
        const url = new URL(database.url);
        if (passwords.database) url.password = passwords.database;
        databaseUrls[service] = overSocket(url.toString());
      }
    }
  } catch (err) {
    await cleanUp();
    throw err;
  }

  const backend: StackBackend = {
    amqpUrl,
    replicas,
    controlsBroker: node !== undefined,
    baseUrl: (service, replica = 0) => `http://127.0.0.1:${ports[service][replica]}`,
    async start(service, replica = 0) {
      const key = keyOf(service, replica);
      if (children.has(key)) return;
      const env = {
        AMQP_URL: serviceAmqpUrl,
        HOST: "127.0.0.1",
        PORT: String(ports[service][replica]),
        DATA_DIR: join(dir, key),
        ...(databaseUrls[service] ? { DATABASE_URL: databaseUrls[service] } : {}),
        RETRY_DELAY_MS: "200",
        SHUTDOWN_TIMEOUT_MS: "10000",
        // Names the service in its traces when a suite turns tracing on (OTEL_DENO=true).
        OTEL_SERVICE_NAME: service,
        INVENTORY_URL: backend.baseUrl("inventory"),
        // Off unless the suite turns it on: a secret exported in the shell must not lock the
        // other suites out.
        AUTH_SECRET: "",
        ...options.env,
      };
      // The permissions of tools/service_runtime.ts, so the suites run the services as deployed.
      const child = new Deno.Command(Deno.execPath(), {
        args: profiled(serviceRunArgs(ROOT, service, env), options.cpuProfileDir, key),
        cwd: ROOT,
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Both streams are read to the end: a stderr nobody reads fills its pipe and blocks the
      // service on its next log line.
      appendTo(logPath(key), child.stdout).catch(() => {});
      appendTo(logPath(key), child.stderr).catch(() => {});
      children.set(key, child);
      exits.delete(key);
      // A child that exits on its own is forgotten, so start() can bring it back.
      child.status.then((status) => {
        if (children.get(key) !== child) return;
        exits.set(key, { code: status.code, signal: status.signal ?? undefined });
        children.delete(key);
      });
      await waitFor(async () => {
        if (!children.has(key)) {
          throw new Error(`${key} exited while starting:\n${await tail(logPath(key))}`);
        }
        // Its own socket: another process answering on the port must not pass for the service
        // (this one then fails to start, and says so above).
        return await answers(`${backend.baseUrl(service, replica)}/health`) &&
          await listensOn(child.pid, ports[service][replica]);
      }, { timeoutMs: 30_000, what: `${key} to answer /health on a port of its own` });
    },
    async stop(service, replica = 0) {
      const key = keyOf(service, replica);
      children.get(key)?.kill("SIGTERM");
      await exited(key);
    },
    async kill(service, replica = 0) {
      const key = keyOf(service, replica);
      children.get(key)?.kill("SIGKILL");
      await exited(key);
    },
    async stopBroker() {
      if (!node) throw new Error("TEST_AMQP_URL is shared: the tests cannot stop that broker");
      if (cluster) await Promise.all(cluster.nodes.map((n) => n.stop()));
      else await node.stop();
    },
    async startBroker() {
      if (!node) throw new Error("TEST_AMQP_URL is shared: the tests cannot start that broker");
      if (cluster) await Promise.all(cluster.nodes.map((n) => n.start()));
      else await node.start();
    },
    stopBrokerNode: cluster ? (index) => cluster!.stopNode(index) : undefined,
    startBrokerNode: cluster ? (index) => cluster!.startNode(index) : undefined,
    logs: (service, replica = 0) =>
      Deno.readTextFile(logPath(keyOf(service, replica))).catch(() => ""),
    exitStatus: (service, replica = 0) => Promise.resolve(exits.get(keyOf(service, replica))),
    pid: async (target, replica = 0) =>
      target === "broker" ? await node?.pid() : children.get(keyOf(target, replica))?.pid,
    rabbitmqctl: node ? (args) => node!.ctl(...args) : undefined,
    databaseUrl: (service) => databaseUrls[service],
    dispose: cleanUp,
  };
  try {
    for (const service of SERVICE_NAMES) {
      if (options.without?.includes(service)) continue;
      for (let replica = 0; replica < replicas[service]; replica++) {
        await backend.start(service, replica);
      }
    }
  } catch (err) {
    await backend.dispose();
    throw err;
  }
  return backend;
}

async function tail(path: string): Promise<string> {
  return (await Deno.readTextFile(path).catch(() => "")).slice(-3000);
}

async function purgeAll(url: string, topology: TopologyOptions): Promise<void> {
  const broker = new QueueAdmin({ url, name: "purge", topology });
  await broker.connect().catch((err) => {
    throw new Error(`Cannot connect to TEST_AMQP_URL ${redactUrl(url)}: ${err.message}`);
  });
  for (const q of WORK_QUEUES) {
    for (const name of [q.name, dlqOf(q.name), retryQueueOf(q.name)]) await broker.take(name, 1e9);
  }
  await broker.close();
}

/** `deno run` arguments with a CPU profile written below `dir` at exit, when `dir` is given. */
function profiled(args: string[], dir: string | undefined, key: string): string[] {
  if (!dir) return args;
  const [run, ...rest] = args;
  return [run, "--cpu-prof", `--cpu-prof-dir=${join(dir, key)}`, ...rest];
}

/**
 * `url` through the server's Unix socket when `TEST_POSTGRES_SOCKET_DIR` names its directory
 * (`deno task bench --store postgres` compares the two that way); as it is otherwise.
 */
function overSocket(url: string): string {
  const directory = Deno.env.get("TEST_POSTGRES_SOCKET_DIR");
  if (!directory) return url;
  const { username, password, pathname } = new URL(url);
  const credentials = password ? `${username}:${password}` : username;
  return `postgresql://${credentials}@${pathname}?host=${encodeURIComponent(directory)}`;
}
