/**
 * The stack controller: runs the broker and the three services for the failure suites, and can
 * stop, start and kill any of them. Backend `local` (default, tests/local_backend.ts) runs real
 * processes, with a private RabbitMQ node (or a private cluster of several) unless
 * `TEST_AMQP_URL` names a broker to share, and with SQLite files or PostgreSQL databases of its
 * own; it can run several replicas of a service. Backend `compose` (`STACK=compose`,
 * tests/compose_backend.ts) drives the containers of compose.yaml.
 * @module
 */
import { QueueAdmin } from "@campus/testing/amqp_admin";
import { UNCAUGHT_ERROR, UNHANDLED_REJECTION } from "@campus/shared/log";
import { topologyOptions } from "@campus/shared/config";
import { SERVICE_NAMES } from "@campus/shared/topology";
import { waitFor } from "./poll.ts";
import { startComposeBackend } from "./compose_backend.ts";
import { startLocalBackend } from "./local_backend.ts";
import type { ServiceExit, ServiceName, StackBackend, StackOptions } from "./stack_backend.ts";

export type { ServiceExit, ServiceName, StackBackend, StackOptions };

/**
 * Options of a `Deno.test` that runs a stack: its processes and broker connections outlive the
 * single steps, so the op and resource sanitizers are off.
 */
export const INTEGRATION = { sanitizeOps: false, sanitizeResources: false } as const;

/**
 * {@linkcode INTEGRATION} for a suite that drives a broker node of its own with `rabbitmqctl`
 * (alarms, policies, deleted queues): ignored, and so reported, under Compose or a shared
 * `TEST_AMQP_URL`, where it has no such node.
 */
export const OWN_BROKER_NODE = {
  ...INTEGRATION,
  ignore: Deno.env.get("STACK") === "compose" || Boolean(Deno.env.get("TEST_AMQP_URL")),
} as const;

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

  /** The URL of `path` on a service replica, e.g. `http://127.0.0.1:5001/order`. */
  url(service: ServiceName, path = "", replica = 0): string {
    return this.backend.baseUrl(service, this.#replica(service, replica)) + path;
  }

  /** Starts a service replica and waits until it answers `/health`. */
  start(service: ServiceName, replica = 0): Promise<void> {
    return this.backend.start(service, this.#replica(service, replica));
  }

  /** SIGTERM: a graceful stop of a service replica. */
  stop(service: ServiceName, replica = 0): Promise<void> {
    return this.backend.stop(service, this.#replica(service, replica));
  }

  /** SIGKILL: no chance for the service replica to clean up. */
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

  /** Stops the broker (every node of a cluster). */
  stopBroker(): Promise<void> {
    return this.backend.stopBroker();
  }

  /** Starts the broker again and waits until the test's own client is connected. */
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

  /** What a service replica printed, for failure messages. */
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

/** The menu as the `MENU` variable spells it: `Coffee=100,Pizza=50`. */
export function menuEnv(menu: Readonly<Record<string, number>>): string {
  return Object.entries(menu).map(([item, n]) => `${item}=${n}`).join(",");
}
