/**
 * The stack controller: runs the broker and the three services for the failure suites, and can
 * stop, start and kill any of them. Backend `local` (default) runs real processes, with a
 * private RabbitMQ node unless `TEST_AMQP_URL` names a broker to share. Backend `compose`
 * (`STACK=compose`, tests/compose_backend.ts) drives the containers of compose.yaml.
 * @module
 */
import { join } from "node:path";
import { QueueAdmin } from "@campus/shared/amqp_admin";
import {
  dlqOf,
  retryQueueOf,
  SERVICE_NAMES,
  type ServiceName,
  WORK_QUEUES,
} from "@campus/shared/topology";
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
}

/** What a backend must do; the local one runs processes, the Compose one runs containers. */
export interface StackBackend {
  /** AMQP URL reachable from the tests. */
  readonly amqpUrl: string;
  /** HTTP base URL of a service, e.g. `http://127.0.0.1:5001`. */
  baseUrl(service: ServiceName): string;
  start(service: ServiceName): Promise<void>;
  /** SIGTERM: a graceful stop. */
  stop(service: ServiceName): Promise<void>;
  /** SIGKILL: no chance to clean up. */
  kill(service: ServiceName): Promise<void>;
  /** True when the broker itself can be stopped and started. */
  readonly controlsBroker: boolean;
  stopBroker(): Promise<void>;
  startBroker(): Promise<void>;
  /** What a service printed, for failure messages. */
  logs(service: ServiceName): Promise<string>;
  /** How the service's last process ended; undefined while it runs or before it ever ran. */
  exitStatus(service: ServiceName): Promise<ServiceExit | undefined>;
  /** Operating-system pid of a running service or of the broker; undefined when not known. */
  pid(target: ServiceName | "broker"): Promise<number | undefined>;
  /** Runs `rabbitmqctl` against the stack's own broker node; absent when it has none to drive. */
  rabbitmqctl?(args: string[]): Promise<string>;
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
    const backend = kind === "compose"
      ? await startComposeBackend(options)
      : await startLocalBackend(options);
    const stack = new Stack(backend, new QueueAdmin({ url: backend.amqpUrl, name: "tests" }));
    await stack.waitForBroker();
    return stack;
  }

  url(service: ServiceName, path = ""): string {
    return this.backend.baseUrl(service) + path;
  }

  start(service: ServiceName): Promise<void> {
    return this.backend.start(service);
  }

  stop(service: ServiceName): Promise<void> {
    return this.backend.stop(service);
  }

  kill(service: ServiceName): Promise<void> {
    return this.backend.kill(service);
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

  async logs(service: ServiceName): Promise<string> {
    return await this.backend.logs(service);
  }

  /** How the service's last process ended (after `stop`, `kill` or a crash); undefined while it runs. */
  exitStatus(service: ServiceName): Promise<ServiceExit | undefined> {
    return this.backend.exitStatus(service);
  }

  /** Waits until a service ends on its own (a crash, an injected fault) and says how it ended. */
  async waitForExit(service: ServiceName, timeoutMs = 30_000): Promise<ServiceExit> {
    return await waitFor(() => this.backend.exitStatus(service), {
      timeoutMs,
      what: `${service} to exit`,
    });
  }

  async dispose(): Promise<void> {
    await this.broker.close();
    await this.backend.dispose();
  }
}

const ROOT = new URL("..", import.meta.url).pathname;

/** Local processes: `deno run services/<name>/main.ts`, each on a free port with its own data. */
export async function startLocalBackend(options: StackOptions = {}): Promise<StackBackend> {
  const shared = Deno.env.get("TEST_AMQP_URL");
  if (!shared && !canStartBrokerNode()) {
    throw new Error(
      "The tests need RabbitMQ: install rabbitmq-server (a private node is started per suite) " +
        "or set TEST_AMQP_URL to a broker they may purge.",
    );
  }
  const node: BrokerNode | undefined = shared ? undefined : await createBrokerNode();
  await node?.start();
  const amqpUrl = shared ?? node!.url;
  if (shared) await purgeAll(amqpUrl);

  const dir = await Deno.makeTempDir({ prefix: "campus-stack-" });
  const ports = Object.fromEntries(SERVICE_NAMES.map((s) => [s, freePort()])) as Record<
    ServiceName,
    number
  >;
  const children = new Map<ServiceName, Deno.ChildProcess>();
  const exits = new Map<ServiceName, ServiceExit>();
  const logPath = (service: ServiceName) => join(dir, `${service}.log`);

  const exited = async (service: ServiceName) => {
    const child = children.get(service);
    if (!child) return;
    await child.status;
    children.delete(service);
  };

  const backend: StackBackend = {
    amqpUrl,
    controlsBroker: node !== undefined,
    baseUrl: (service) => `http://127.0.0.1:${ports[service]}`,
    async start(service) {
      if (children.has(service)) return;
      const child = new Deno.Command(Deno.execPath(), {
        args: serviceRunArgs(ROOT, service),
        cwd: ROOT,
        env: {
          AMQP_URL: amqpUrl,
          HOST: "127.0.0.1",
          PORT: String(ports[service]),
          DATA_DIR: join(dir, service),
          RETRY_DELAY_MS: "200",
          SHUTDOWN_TIMEOUT_MS: "10000",
          ...options.env,
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Both streams are read to the end: a stderr nobody reads fills its pipe and blocks the
      // service on its next log line.
      appendTo(logPath(service), child.stdout).catch(() => {});
      appendTo(logPath(service), child.stderr).catch(() => {});
      children.set(service, child);
      exits.delete(service);
      // A child that exits on its own is forgotten, so start() can bring it back.
      child.status.then((status) => {
        if (children.get(service) !== child) return;
        exits.set(service, { code: status.code, signal: status.signal ?? undefined });
        children.delete(service);
      });
      await waitFor(async () => {
        if (!children.has(service)) {
          throw new Error(`${service} exited while starting:\n${await tail(logPath(service))}`);
        }
        return await answers(`${backend.baseUrl(service)}/health`);
      }, { timeoutMs: 30_000, what: `${service} to answer /health` });
    },
    async stop(service) {
      children.get(service)?.kill("SIGTERM");
      await exited(service);
    },
    async kill(service) {
      children.get(service)?.kill("SIGKILL");
      await exited(service);
    },
    async stopBroker() {
      if (!node) throw new Error("TEST_AMQP_URL is shared: the tests cannot stop that broker");
      await node.stop();
    },
    async startBroker() {
      if (!node) throw new Error("TEST_AMQP_URL is shared: the tests cannot start that broker");
      await node.start();
    },
    logs: (service) => Deno.readTextFile(logPath(service)).catch(() => ""),
    exitStatus: (service) => Promise.resolve(exits.get(service)),
    pid: async (target) => target === "broker" ? await node?.pid() : children.get(target)?.pid,
    rabbitmqctl: node ? (args) => node.ctl(...args) : undefined,
    async dispose() {
      for (const service of SERVICE_NAMES) {
        children.get(service)?.kill("SIGKILL");
        await exited(service);
      }
      await node?.dispose();
      if (!Deno.env.get("KEEP_STACK")) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    for (const service of SERVICE_NAMES) {
      if (!options.without?.includes(service)) await backend.start(service);
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

async function purgeAll(url: string): Promise<void> {
  const broker = new QueueAdmin({ url, name: "purge" });
  await broker.connect().catch((err) => {
    throw new Error(`Cannot connect to TEST_AMQP_URL ${url}: ${err.message}`);
  });
  for (const q of WORK_QUEUES) {
    for (const name of [q.name, dlqOf(q.name), retryQueueOf(q.name)]) await broker.take(name, 1e9);
  }
  await broker.close();
}
