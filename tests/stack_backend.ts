/**
 * What the stack controller (tests/stack.ts) asks of a backend, and the settings it passes one:
 * the local backend (tests/local_backend.ts) runs processes, the Compose one
 * (tests/compose_backend.ts) runs containers. A module of its own so that the controller and its
 * backends all depend on it, and never on each other in a circle.
 * @module
 */
import type { ServiceName } from "@campus/shared/topology";

export type { ServiceName };

/** How a service's process ended. */
export interface ServiceExit {
  /** Exit code; 128 + n for a process ended by signal n. */
  code: number;
  /** The signal that ended it, e.g. `"SIGKILL"`. */
  signal?: string;
}

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
  /**
   * Where each service process writes a V8 CPU profile when it exits (local backend): one
   * folder per process below it, `<service>` or `<service>-<replica>`.
   */
  cpuProfileDir?: string;
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
  /** Starts a service and waits until it answers `/health`. */
  start(service: ServiceName, replica?: number): Promise<void>;
  /** SIGTERM: a graceful stop. */
  stop(service: ServiceName, replica?: number): Promise<void>;
  /** SIGKILL: no chance to clean up. */
  kill(service: ServiceName, replica?: number): Promise<void>;
  /** True when the broker itself can be stopped and started. */
  readonly controlsBroker: boolean;
  /** Stops the broker (every node of a cluster); throws when `controlsBroker` is false. */
  stopBroker(): Promise<void>;
  /** Starts the broker again; throws when `controlsBroker` is false. */
  startBroker(): Promise<void>;
  /** Stops one node of a cluster cleanly (the others keep serving); absent without a cluster. */
  stopBrokerNode?(index: number): Promise<void>;
  /** Starts one node of a cluster again; absent without a cluster. */
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
  /** Ends every process or container and removes what the stack made. */
  dispose(): Promise<void>;
}
