/**
 * The stack controller: runs the broker and the three services for the failure suites, and can
 * stop, start and kill any of them. Backend `local` (default) runs real processes, with a
 * private RabbitMQ node (or a private cluster of several) unless `TEST_AMQP_URL` names a broker
 * to share, and with SQLite files or PostgreSQL databases of its own; it can run several
 * replicas of a service. Backend `compose` (`STACK=compose`, tests/compose_backend.ts) drives
 * the containers of compose.yaml.
 * @module
 */
import { join } from "node:path";
import { QueueAdmin } from "@campus/shared/amqp_admin";
import { UNCAUGHT_ERROR, UNHANDLED_REJECTION } from "@campus/shared/log";
import { redactUrl } from "@campus/shared/redact";
import { topologyOptions } from "@campus/shared/config";
import { createPostgresDatabase } from "@campus/shared/store_testing";
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
} from "../tools/broker_node.ts";
import { waitFor } from "./poll.ts";
import { answers, menuEnv } from "./client.ts";
import { appendTo } from "../tools/process_log.ts";
import { serviceRunArgs } from "../tools/service_runtime.ts";
import { startComposeBackend } from "./compose_backend.ts";

export type { ServiceName };

/** How a service's process ended. */
export interface ServiceExit {
  /** Exit code; 128 + n for a process ended by signal n. */
  code: number;
  /** The signal that ended it, e.g. `"SIGKILL"`. */
  signal?: string;
}

/**
 * Options of a `Deno.test` that runs a stack: its processes and broker connections outlive the
 * single steps, so the op and resource sanitizers are off.
 */
export const INTEGRATION = { sanitizeOps: false, sanitizeResources: false } as const;

/** Settings of a stack. */
export interface StackOptions {
  /** Menu and starting stock of inventory (sets `MENU`). */
  menu?: Readonly<Record<string, number>>;
  /** Extra environment for every service (e.g. `TEST_FAULTS`). */
  env?: Record<string, string>;
  /** Services not to start at first. */
  without?: ServiceName[];
  /** The backend; `STACK` (default `local`) chooses when unset. */
  backend?: "local" | "compose";
  /** Processes of each service, each on its own port (local backend; default 1 each). */
  replicas?: Partial<Record<ServiceName, number>>;
  /**
   * Where the services keep their state: SQLite files (default), or a PostgreSQL database per
   * service, made for the stack on `TEST_POSTGRES_URL`'s server and dropped with it.
   */
  store?: "sqlite" | "postgres";
  /** RabbitMQ nodes: 1 (default), or a private cluster of that many (local backend). */
  brokerNodes?: number;
  /**
   * Passwords the services connect with (local backend), for suites that check they never
   * show: `broker` makes a user `campus` with it on the stack's own node, `database` goes into
   * each service's `DATABASE_URL` (store `postgres`; the test server trusts any password).
   */
  passwords?: { broker?: string; database?: string };
}

/**
 * What a backend must do; the local one runs processes, the Compose one runs containers. A
 * `replica` (from 0, the default) picks one of several processes of a service.
 */
export interface StackBackend {
  /** AMQP URL reachable from the tests (the nodes of a cluster, comma-separated). */
  readonly amqpUrl: string;
  /** Replicas of each service the backend runs; one each when absent. */
  readonly replicas?: Readonly<Record<ServiceName, number>>;
  /** HTTP base URL of a service, e.g. `http://127.0.0.1:5001`. */
  baseUrl(service: ServiceName, replica?: number): string;
  start(service: ServiceName, replica?: number): Promise<void>;
  /** SIGTERM: a graceful stop. */
  stop(service: ServiceName, replica?: number): Promise<void>;
  /** SIGKILL: no chance to clean up. */
  kill(service: ServiceName, replica?: number): Promise<void>;
  /** True when the broker itself can be stopped and started. */
  readonly controlsBroker: boolean;
  stopBroker(): Promise<void>;
  startBroker(): Promise<void>;
  /** Stops one node of a cluster cleanly (the others keep serving); absent without a cluster. */
  stopBrokerNode?(index: number): Promise<void>;
  startBrokerNode?(index: number): Promise<void>;
  /** What a service printed, for failure messages. */
  logs(service: ServiceName, replica?: number): Promise<string>;
  /** How the service's last process ended; undefined while it runs or before it ever ran. */
  exitStatus(service: ServiceName, replica?: number): Promise<ServiceExit | undefined>;
  /** Operating-system pid of a running service or of the broker; undefined when not known. */
  pid(target: ServiceName | "broker", replica?: number): Promise<number | undefined>;
  /** Runs `rabbitmqctl` against the stack's own broker node; absent when it has none to drive. */
  rabbitmqctl?(args: string[]): Promise<string>;
  /** The PostgreSQL database of a service (store `postgres`); undefined otherwise. */
  databaseUrl?(service: ServiceName): string | undefined;
  dispose(): Promise<void>;
}

/** A running stack: a backend plus a broker client for queue depths and hand-published messages. */
export class Stack {
  private constructor(readonly backend: StackBackend, readonly broker: QueueAdmin) {}

  /** Starts a stack with the backend `options.backend` or `STACK` selects (default `local`). */
  static async start({ menu, ...options }: StackOptions = {}): Promise<Stack> {
    if (menu) options.env = { MENU: menuEnv(menu), ...options.env };
    const kind = options.backend ?? (Deno.env.get("STACK") || "local");
    if (kind !== "local" && kind !== "compose") {
      throw new TypeError(`STACK must be "local" or "compose", got "${kind}"`);
    }
    if (kind === "compose" && (options.replicas || options.store || options.brokerNodes)) {
      throw new TypeError("Replicas, PostgreSQL and clusters run on the local backend only");
    }
    const backend = kind === "compose"
      ? await startComposeBackend(options)
      : await startLocalBackend(options);
    const admin = new QueueAdmin({
      url: backend.amqpUrl,
      name: "tests",
      topology: topologyOptions(options.env),
    });
    const stack = new Stack(backend, admin);
    await stack.waitForBroker();
    return stack;
  }

  /** Replicas of `service` the stack runs. */
  replicasOf(service: ServiceName): number {
    return this.backend.replicas?.[service] ?? 1;
  }

  url(service: ServiceName, path = "", replica = 0): string {
    return this.backend.baseUrl(service, this.#replica(service, replica)) + path;
  }

  start(service: ServiceName, replica = 0): Promise<void> {
    return this.backend.start(service, this.#replica(service, replica));
  }

  stop(service: ServiceName, replica = 0): Promise<void> {
    return this.backend.stop(service, this.#replica(service, replica));
  }

  kill(service: ServiceName, replica = 0): Promise<void> {
    return this.backend.kill(service, this.#replica(service, replica));
  }

  /** Stops node `index` of the stack's cluster cleanly. */
  stopBrokerNode(index: number): Promise<void> {
    if (!this.backend.stopBrokerNode) throw new Error("This stack runs no broker cluster");
    return this.backend.stopBrokerNode(index);
  }

  /** Starts node `index` of the stack's cluster again. */
  startBrokerNode(index: number): Promise<void> {
    if (!this.backend.startBrokerNode) throw new Error("This stack runs no broker cluster");
    return this.backend.startBrokerNode(index);
  }

  #replica(service: ServiceName, replica: number): number {
    if (!Number.isInteger(replica) || replica < 0 || replica >= this.replicasOf(service)) {
      throw new RangeError(
        `${service} has ${this.replicasOf(service)} replicas here; there is no replica ${replica}`,
      );
    }
    return replica;
  }

  stopBroker(): Promise<void> {
    return this.backend.stopBroker();
  }

  async startBroker(): Promise<void> {
    await this.backend.startBroker();
    await this.waitForBroker();
  }

  /** Waits until the test's own broker client is connected again. */
  async waitForBroker(): Promise<void> {
    await waitFor(() => this.broker.connect().then(() => true, () => false), {
      timeoutMs: 30_000,
      what: "the test client to connect to the broker",
    });
  }

  /** Ready messages in a queue. */
  queueDepth(queue: string): Promise<number> {
    return this.broker.queueDepth(queue);
  }

  /** Publishes a body by hand on `orders_exchange`, as an operator's script would. */
  publish(routingKey: string, body: string | Uint8Array, properties = {}): Promise<void> {
    const content = typeof body === "string" ? new TextEncoder().encode(body) : body;
    return this.broker.publish("orders_exchange", routingKey, content, properties);
  }

  /**
   * Runs `rabbitmqctl` on the stack's broker node (policies, memory alarms, queue listings that
   * count unacknowledged messages); throws when the backend has no node of its own to drive.
   */
  rabbitmqctl(...args: string[]): Promise<string> {
    if (!this.backend.rabbitmqctl) {
      throw new Error("This stack's broker cannot be driven with rabbitmqctl");
    }
    return this.backend.rabbitmqctl(args);
  }

  async logs(service: ServiceName, replica = 0): Promise<string> {
    return await this.backend.logs(service, this.#replica(service, replica));
  }

  /**
   * The URL of a service's PostgreSQL database, for suites that act on it as an operator's
   * `psql` would; throws unless the stack runs with store `postgres`.
   */
  databaseUrl(service: ServiceName): string {
    const url = this.backend.databaseUrl?.(service);
    if (!url) throw new Error(`${service} keeps no PostgreSQL database in this stack`);
    return url;
  }

  /** How the service's last process ended (after `stop`, `kill` or a crash); undefined while it runs. */
  exitStatus(service: ServiceName, replica = 0): Promise<ServiceExit | undefined> {
    return this.backend.exitStatus(service, this.#replica(service, replica));
  }

  /** Waits until a service ends on its own (a crash, an injected fault) and says how it ended. */
  async waitForExit(service: ServiceName, timeoutMs = 30_000): Promise<ServiceExit> {
    return await waitFor(() => this.backend.exitStatus(service), {
      timeoutMs,
      what: `${service} to exit`,
    });
  }

  /**
   * Each unhandled rejection or uncaught error any service's process met (Deno's
   * `error: Uncaught`, or the line `surviveUncaught` logs), with the lines after it.
   */
  async unhandledErrors(): Promise<string[]> {
    const found: string[] = [];
    for (const service of SERVICE_NAMES) {
      for (let replica = 0; replica < this.replicasOf(service); replica++) {
        const lines = (await this.logs(service, replica).catch(() => "")).split("\n");
        lines.forEach((line, i) => {
          if (UNHANDLED.test(line)) {
            found.push(`${service}[${replica}]: ${lines.slice(i, i + 8).join("\n")}`);
          }
        });
      }
    }
    return found;
  }

  /**
   * Stops everything. Fails, after the stack is gone, when any service met an unhandled
   * rejection or uncaught error: no background task may leave one, whatever a suite checks.
   */
  async dispose(): Promise<void> {
    const unhandled = await this.unhandledErrors();
    await this.broker.close();
    await this.backend.dispose();
    if (unhandled.length > 0) {
      throw new Error(
        `${unhandled.length} unhandled rejection(s) or uncaught error(s) in the services' logs:\n` +
          unhandled.join("\n---\n").slice(0, 6000),
      );
    }
  }
}

/** What a service's log holds where a rejection or an error went unhandled in it. */
const UNHANDLED = new RegExp(
  `error: Uncaught|"msg":"(?:${UNHANDLED_REJECTION}|${UNCAUGHT_ERROR})"`,
);

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
        databaseUrls[service] = url.toString();
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
        args: serviceRunArgs(ROOT, service, env),
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
        return await answers(`${backend.baseUrl(service, replica)}/health`);
      }, { timeoutMs: 30_000, what: `${key} to answer /health` });
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
