/**
 * Configuration, read from the environment once at start-up, validated, frozen and passed down.
 * Every default lives here; nothing else reads `Deno.env`.
 * @module
 */
import { z } from "zod";
import { summarizeIssues } from "../messaging/contract.ts";
import {
  type QueueType,
  type ServiceName,
  SERVICES,
  type TopologyOptions,
} from "../messaging/topology.ts";
import { menuKey } from "../menu.ts";
import { secretsOf } from "./redact.ts";
import type { DatabaseTimeouts } from "../storage/postgres.ts";

export type { QueueType, ServiceName };

/** Default HTTP port of each service (the compatibility contract), from the services' table. */
export const DEFAULT_PORTS: Readonly<Record<ServiceName, number>> = Object.freeze(
  Object.fromEntries(SERVICES.map((s) => [s.name, s.port])) as Record<ServiceName, number>,
);

/** Default menu and starting stock. */
export const DEFAULT_MENU: Readonly<Record<string, number>> = {
  Pizza: 50,
  Burger: 50,
  Sushi: 50,
  Salad: 50,
  Taco: 50,
  Sandwich: 50,
  Pasta: 50,
  Coffee: 100,
};

/** Every environment variable a service reads, with its default. */
export const ENV_DEFAULTS = {
  AMQP_URL: "amqp://guest:guest@127.0.0.1:5672",
  HOST: "0.0.0.0",
  PORT: "(5001, 5002 or 5003 by service)",
  DATA_DIR: "./data",
  MENU: "Pizza=50,Burger=50,Sushi=50,Salad=50,Taco=50,Sandwich=50,Pasta=50,Coffee=100",
  PREFETCH: "100",
  MAX_RETRIES: "3",
  RETRY_DELAY_MS: "1000",
  MAX_DELIVERIES: "5",
  SHUTDOWN_TIMEOUT_MS: "10000",
  QUEUE_TYPE: "classic",
  // Empty: SQLite in DATA_DIR. Each service needs a database of its own.
  DATABASE_URL: "",
  REQUEST_TIMEOUT_MS: "10000",
  OUTBOX_STALL_MS: "30000",
  OUTCOME_TIMEOUT_MS: "30000",
  PICKUP_WINDOW_MS: "1800000",
  DB_LOCK_TIMEOUT_MS: "2000",
  DB_STATEMENT_TIMEOUT_MS: "10000",
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: "30000",
  DB_STALL_MS: "5000",
  LOG_LEVEL: "info",
  TEST_FAULTS: "off",
  OTEL_DENO: "false",
  INVENTORY_URL: "http://127.0.0.1:5002",
  // Empty: authentication off, every route open (the classic lab). See shared/auth.ts.
  AUTH_SECRET: "",
  ORDER_RATE_LIMIT: "60",
  STREAMS_PER_STUDENT: "5",
  MAX_STREAMS: "1000",
} as const;

/** Shortest `AUTH_SECRET` accepted: an HS256 key needs 256 bits to resist guessing. */
export const MIN_AUTH_SECRET_LENGTH = 32;

// The message never repeats the value: it is a secret.
const authSecret = z.string().min(
  MIN_AUTH_SECRET_LENGTH,
  `must be at least ${MIN_AUTH_SECRET_LENGTH} characters (e.g. openssl rand -base64 32)`,
);

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const menu = z.string().transform((text, ctx) => {
  const entries: [string, number][] = [];
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const match = /^(.+?)\s*=\s*(\d+)$/.exec(part);
    if (!match) {
      ctx.addIssue({ code: "custom", message: `"${part}" is not Item=stock` });
      return z.NEVER;
    }
    // Orders match items without regard to case, so two such spellings would be one item.
    const twin = entries.find(([item]) => menuKey(item) === menuKey(match[1]));
    if (twin) {
      ctx.addIssue({
        code: "custom",
        message: `"${match[1]}" and "${twin[0]}" are the same item (names ignore case)`,
      });
      return z.NEVER;
    }
    entries.push([match[1], Number(match[2])]);
  }
  return Object.freeze(Object.fromEntries(entries));
});

const EnvSchema = z.object({
  AMQP_URL: z.string().default(ENV_DEFAULTS.AMQP_URL).transform((text, ctx) => {
    const urls = text.split(",").map((url) => url.trim()).filter(Boolean);
    if (urls.length === 0 || !urls.every((url) => /^amqps?:\/\//.test(url))) {
      ctx.addIssue({
        code: "custom",
        message: "must be amqp:// or amqps:// URLs, separated by commas",
      });
      return z.NEVER;
    }
    return Object.freeze(urls);
  }),
  HOST: z.string().min(1).default(ENV_DEFAULTS.HOST),
  PORT: int(0, 65535).optional(),
  DATA_DIR: z.string().min(1).default(ENV_DEFAULTS.DATA_DIR),
  MENU: menu.optional(),
  PREFETCH: int(1, 10_000).default(100),
  MAX_RETRIES: int(0, 100).default(3),
  RETRY_DELAY_MS: int(0, 3_600_000).default(1000),
  MAX_DELIVERIES: int(1, 1000).default(5),
  SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default(10_000),
  QUEUE_TYPE: z.enum(["classic", "quorum"]).default("classic"),
  // The message never repeats the value: it may hold a password.
  DATABASE_URL: z.string().regex(
    /^postgres(ql)?:\/\//,
    "must start with postgres:// or postgresql://",
  ).optional(),
  REQUEST_TIMEOUT_MS: int(100, 600_000).default(10_000),
  OUTBOX_STALL_MS: int(100, 86_400_000).default(30_000),
  OUTCOME_TIMEOUT_MS: int(100, 86_400_000).default(30_000),
  PICKUP_WINDOW_MS: int(100, 604_800_000).default(1_800_000),
  // A batch holds its rows for milliseconds; 2 s is far above that, and all one held row may
  // cost the orders beside it. 0 turns a bound off, as in PostgreSQL.
  DB_LOCK_TIMEOUT_MS: int(0, 86_400_000).default(2_000),
  // Our statements take milliseconds; one running 10 s is stuck, not slow.
  DB_STATEMENT_TIMEOUT_MS: int(0, 86_400_000).default(10_000),
  // Our transactions never pause between statements but for the outbox relay's publish, which
  // sets its own claim timeout; 30 s frees the rows of a replica stopped mid-transaction.
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: int(0, 86_400_000).default(30_000),
  // Above the lock timeout, so one wait does not make a service unready; a held row does.
  DB_STALL_MS: int(100, 86_400_000).default(5_000),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  TEST_FAULTS: z.enum(["on", "off"]).default("off"),
  // Read by Deno itself at start-up, which then provides the OpenTelemetry SDK; the service
  // reads it only to make spans when they go somewhere.
  OTEL_DENO: z.string().default(ENV_DEFAULTS.OTEL_DENO),
  INVENTORY_URL: z.string().regex(/^https?:\/\/[^/]+\/?$/, "must be http(s)://host:port")
    .default(ENV_DEFAULTS.INVENTORY_URL),
  AUTH_SECRET: authSecret.optional(),
  ORDER_RATE_LIMIT: int(1, 1_000_000).default(60),
  STREAMS_PER_STUDENT: int(1, 10_000).default(5),
  MAX_STREAMS: int(1, 1_000_000).default(1000),
});

/** Validated configuration of one service, `S`. */
export interface Config<S extends ServiceName = ServiceName> {
  /** The service this configuration is for. */
  service: S;
  /** The first of {@linkcode Config.amqpUrls}. */
  amqpUrl: string;
  /** The broker nodes to connect to (the nodes of one cluster), tried in turn. */
  amqpUrls: readonly string[];
  /** `classic` queues, or replicated `quorum` queues on a cluster. */
  queueType: QueueType;
  /** PostgreSQL database of this service; undefined means SQLite in `dataDir`. */
  databaseUrl?: string;
  /** Address the HTTP server listens on (`HOST`). */
  host: string;
  /** HTTP port (`PORT`), 5001 to 5003 by default. */
  port: number;
  /** Folder holding the service's SQLite file (when `databaseUrl` is unset). */
  dataDir: string;
  /** Item name to starting stock; used by inventory to seed a new database. */
  menu: Readonly<Record<string, number>>;
  /** Unacknowledged deliveries a consumer may hold. */
  prefetch: number;
  /** How often a failing handler is retried before its message is dead-lettered. */
  maxRetries: number;
  /** Delay before each retry. */
  retryDelayMs: number;
  /** Deliveries of one message (crashes included) before it is dead-lettered unseen. */
  maxDeliveries: number;
  /** Bound on a graceful shutdown before the process exits anyway. */
  shutdownTimeoutMs: number;
  /** Time a client has to send a request body before it gets 408. */
  requestTimeoutMs: number;
  /** How long the oldest outbox row may wait while connected before `/ready` answers 503. */
  outboxStallMs: number;
  /**
   * How long an order may wait for its outcome before the order service asks inventory again
   * (`OUTCOME_TIMEOUT_MS`); later asks come further apart.
   */
  outcomeTimeoutMs: number;
  /**
   * How long a `READY` order waits to be collected before it is `EXPIRED`
   * (`PICKUP_WINDOW_MS`).
   */
  pickupWindowMs: number;
  /** Bounds on the PostgreSQL sessions' waits, in ms (0: none). */
  databaseTimeouts: Readonly<DatabaseTimeouts>;
  /** How long database work may wait before `/ready` answers 503 (`"database":"stalled"`). */
  databaseStallMs: number;
  /** Lowest level that is logged. */
  logLevel: "debug" | "info" | "warn" | "error";
  /** Test-only switch that lets marked orders fail on purpose. */
  testFaults: boolean;
  /**
   * Traces are made and exported (`OTEL_DENO=true`; Deno reads the standard
   * `OTEL_EXPORTER_OTLP_*` and `OTEL_SERVICE_NAME` variables itself).
   */
  tracing: boolean;
  /** Base URL of the inventory service, where the order service reads stock for its pages. */
  inventoryUrl: string;
  /**
   * Key of the HS256 tokens every service verifies (`AUTH_SECRET`); undefined means
   * authentication is off and every route is open, as in the classic lab.
   */
  authSecret?: string;
  /** Orders one student may place per minute while authentication is on (`ORDER_RATE_LIMIT`). */
  orderRateLimit: number;
  /** Event streams one student may hold open on the order service (`STREAMS_PER_STUDENT`). */
  streamsPerStudent: number;
  /** Event streams the order service holds open at most (`MAX_STREAMS`). */
  maxStreams: number;
  /**
   * Values never to be shown (the passwords in `AMQP_URL` and `DATABASE_URL`, `AUTH_SECRET`), in
   * the shapes a text may hold them; the logger and `/ready` mask them.
   */
  secrets: readonly string[];
}

/**
 * The environment variables `names` (every configuration variable by default), read one by one:
 * a process allowed only those (`--allow-env=AMQP_URL,HOST,...`) can read them, where
 * `Deno.env.toObject()` would need them all.
 */
export function readEnv(
  names: readonly string[] = Object.keys(ENV_DEFAULTS),
): Record<string, string | undefined> {
  return Object.fromEntries(names.map((name) => [name, Deno.env.get(name)]));
}

/**
 * Reads and validates the configuration of `service`; throws `TypeError` naming each bad
 * variable.
 */
export function loadConfig<S extends ServiceName>(
  service: S,
  env: Record<string, string | undefined> = readEnv(),
): Readonly<Config<S>> {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    throw new TypeError(`Invalid configuration: ${summarizeIssues(parsed.error)}`);
  }
  const e = parsed.data;
  return Object.freeze({
    service,
    amqpUrl: e.AMQP_URL[0],
    amqpUrls: e.AMQP_URL,
    queueType: e.QUEUE_TYPE,
    databaseUrl: e.DATABASE_URL,
    host: e.HOST,
    port: e.PORT ?? DEFAULT_PORTS[service],
    dataDir: e.DATA_DIR,
    menu: e.MENU ?? DEFAULT_MENU,
    prefetch: e.PREFETCH,
    maxRetries: e.MAX_RETRIES,
    retryDelayMs: e.RETRY_DELAY_MS,
    maxDeliveries: e.MAX_DELIVERIES,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    outboxStallMs: e.OUTBOX_STALL_MS,
    outcomeTimeoutMs: e.OUTCOME_TIMEOUT_MS,
    pickupWindowMs: e.PICKUP_WINDOW_MS,
    databaseTimeouts: Object.freeze({
      lockMs: e.DB_LOCK_TIMEOUT_MS,
      statementMs: e.DB_STATEMENT_TIMEOUT_MS,
      idleInTransactionMs: e.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    }),
    databaseStallMs: e.DB_STALL_MS,
    logLevel: e.LOG_LEVEL,
    testFaults: e.TEST_FAULTS === "on",
    tracing: ["true", "1"].includes(e.OTEL_DENO.toLowerCase()),
    inventoryUrl: e.INVENTORY_URL.replace(/\/$/, ""),
    authSecret: e.AUTH_SECRET,
    orderRateLimit: e.ORDER_RATE_LIMIT,
    streamsPerStudent: e.STREAMS_PER_STUDENT,
    maxStreams: e.MAX_STREAMS,
    secrets: Object.freeze(secretsOf([...e.AMQP_URL, e.DATABASE_URL], [present.AUTH_SECRET])),
  });
}

/**
 * How the services declare their queues (`QUEUE_TYPE`, `MAX_DELIVERIES`), for tools and tests
 * that declare them too: the broker refuses a declaration that differs.
 */
export function topologyOptions(
  env: Record<string, string | undefined> = readEnv(["QUEUE_TYPE", "MAX_DELIVERIES"]),
): TopologyOptions {
  const { queueType, maxDeliveries } = loadConfig("order", {
    QUEUE_TYPE: env.QUEUE_TYPE,
    MAX_DELIVERIES: env.MAX_DELIVERIES,
  });
  return { queueType, maxDeliveries };
}

/**
 * `AUTH_SECRET` alone, validated as the services validate it, for `deno task token`, which may
 * read no other variable; undefined when it is unset or empty.
 */
export function loadAuthSecret(
  env: Record<string, string | undefined> = { AUTH_SECRET: Deno.env.get("AUTH_SECRET") },
): string | undefined {
  const text = env.AUTH_SECRET;
  if (text === undefined || text === "") return undefined;
  const parsed = authSecret.safeParse(text);
  if (!parsed.success) {
    throw new TypeError(`Invalid configuration: AUTH_SECRET ${parsed.error.issues[0].message}`);
  }
  return parsed.data;
}
