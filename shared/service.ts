/**
 * The runtime every service shares: database (SQLite or PostgreSQL), broker connection, outbox
 * relay, consumers, HTTP server with `/health`, `/ready` and `/metrics`, tracing when
 * `OTEL_DENO=true`, and graceful shutdown on SIGTERM and SIGINT. A service supplies only its
 * routes and message handlers.
 * @module
 */
import { Broker } from "./amqp.ts";
import { Authenticator } from "./auth.ts";
import type { Config } from "./config.ts";
import { createConsumer, type Subscription } from "./consumer.ts";
import type { Database } from "./database.ts";
import { DatabaseWaits } from "./database_waits.ts";
import { type DeliveryCounter, openDeliveryCounter } from "./delivery_counter.ts";
import { createRouter, json, type Route } from "./http.ts";
import { dlqOf, type QueueOf, retryQueueOf, type ServiceName } from "./topology.ts";
import { createLogger, errorText, type Logger, surviveUncaught } from "./log.ts";
import { redactSecrets } from "./redact.ts";
import { ServiceMetrics } from "./metrics.ts";
import { OutboxRelay } from "./outbox.ts";
import { openOutboxStore, type OutboxStore } from "./outbox_store.ts";
import { PostgresDatabase } from "./postgres.ts";
import { SqliteDatabase } from "./sqlite.ts";
import { enableTracing } from "./tracing.ts";

/** What a service's factory gets to build its routes and handlers from. */
export interface ServiceDeps {
  /** The service's validated configuration. */
  config: Readonly<Config>;
  /** The service's database, whichever the engine; its stores open on it. */
  db: Database;
  /** Rows added to it are published by the service's relay, which they wake once committed. */
  outbox: OutboxStore;
  /** The service's logger. */
  log: Logger;
  /** The service's metrics; a service adds its own to `metrics.registry`. */
  metrics: ServiceMetrics;
  /** Verifies callers while authentication is on (`AUTH_SECRET` set); undefined when off. */
  auth?: Authenticator;
  /**
   * Ready messages in each of `queues`, read through the service's broker session with passive
   * declares, which never create or change a queue; a queue it could not read is left out.
   */
  queueDepths: (queues: readonly string[]) => Promise<Map<string, number>>;
}

/** Service `S`: its HTTP routes and the handler of each queue it consumes. */
export interface ServiceDefinition<S extends ServiceName> {
  /** HTTP routes, besides `/health` and `/ready`. */
  routes: Route[];
  /**
   * Queue name to its handler (and optional dead-letter follow-up). The keys are exactly the
   * queues the topology table gives `S`: a misspelt or missing queue does not compile.
   */
  subscriptions: Record<QueueOf<S>, Subscription>;
  /** Starts background work (e.g. a live feed) once the server listens. */
  start?(): void;
  /**
   * Called first on shutdown: ends long-lived responses (event streams), which would otherwise
   * hold the server's graceful shutdown open, and stops what `start` began.
   */
  stop?(): Promise<void>;
}

/** Builds service `S` from its dependencies (opening its stores). */
export type ServiceFactory<S extends ServiceName> = (
  deps: ServiceDeps,
) => ServiceDefinition<S> | Promise<ServiceDefinition<S>>;

/**
 * The database of a service: its own PostgreSQL database at `DATABASE_URL`, shared by its
 * replicas, with the configured bounds on waiting, or else its SQLite file in `DATA_DIR`.
 * Its transactions under way are noted in `waits`.
 */
export function openServiceDatabase(config: Readonly<Config>, waits?: DatabaseWaits): Database {
  return config.databaseUrl
    ? PostgresDatabase.connect(config.databaseUrl, {
      name: `${config.service}-${Deno.pid}`,
      timeouts: config.databaseTimeouts,
      waits,
    })
    : SqliteDatabase.open(config.dataDir, config.service);
}

/** What `/ready` needs to know about the broker connection. */
export interface BrokerState {
  /** True while a connection with declared topology is open. */
  readonly connected: boolean;
  /** Why the connection is down, when it is. */
  readonly lastError?: string;
  /** Why the broker blocks the publishing connection (a resource alarm), while it does. */
  readonly blocked?: string;
  /** Name of the publishing connection, as the broker lists it. */
  readonly publisherName?: string;
  /** When the current connection became ready (ms since the epoch). */
  readonly connectedSince?: number;
}

/**
 * `/health` answers 200 while the process runs (liveness, nothing else). `/ready` answers 200
 * when the broker is connected, every consumer runs and publishing flows; its body says how
 * many outbox rows wait. It answers 503 when:
 * - the database fails or takes longer than 2 s to answer: `"database":"unavailable"`;
 * - the broker is not connected: `"broker":"disconnected"`;
 * - the broker blocks the publishing connection (a memory or disk alarm): `"broker":"blocked"`;
 * - the oldest outbox row has waited longer than `stallMs` while connected: `"outbox":"stalled"`;
 * - database work has waited longer than `databaseStallMs` (a row another transaction holds,
 *   a database that does not answer): `"database":"stalled"`;
 *
 * and `error` says why, e.g.
 * `{"status":"not ready","broker":"disconnected","outbox_pending":20,"error":"connect ECONNREFUSED"}`.
 * The error never shows a password, token, or one of `secrets` (see {@linkcode redactSecrets}).
 */
export function healthRoutes(
  bus: BrokerState,
  outbox: OutboxStore,
  { secrets = [], ...bounds }: StallBounds & { secrets?: readonly string[] },
): Route[] {
  return [
    // Open even with authentication on: orchestrators call them without credentials. They say
    // nothing personal, and are meant for the internal network.
    { method: "GET", path: "/health", access: "public", handler: () => json({ status: "ok" }) },
    {
      method: "GET",
      path: "/ready",
      access: "public",
      handler: async () => {
        const { ready, body } = await readiness(bus, outbox, bounds);
        if (typeof body.error === "string") body.error = redactSecrets(body.error, secrets);
        return json(body, ready ? 200 : 503);
      },
    },
  ];
}

/** What `/ready` counts as stalled work. */
export interface StallBounds {
  /** Longest wait of the oldest outbox row while connected. */
  stallMs: number;
  /** Where the service's database work that waits is noted; nothing is when absent. */
  waits?: DatabaseWaits;
  /** Longest wait of database work (`DB_STALL_MS`). */
  databaseStallMs?: number;
}

/**
 * How long `/ready` waits for the database. A probe must answer, and a query can hang for as
 * long as the database refuses connections: postgres.js 3.4.9 leaves a connection whose query
 * was cut off retrying its next query until the database accepts it again (porsager/postgres
 * #1130, #1193).
 */
const READY_DATABASE_TIMEOUT_MS = 2_000;

/** Whether the service is ready, and the body `/ready` answers with. */
async function readiness(
  bus: BrokerState,
  outbox: OutboxStore,
  { stallMs, waits, databaseStallMs = Infinity }: StallBounds,
): Promise<{ ready: boolean; body: Record<string, unknown> }> {
  let outbox_pending: number;
  let oldest: number | undefined;
  try {
    [outbox_pending, oldest] = await answerWithin(
      Promise.all([outbox.size(), outbox.oldestPendingSince()]),
      READY_DATABASE_TIMEOUT_MS,
    );
  } catch (err) {
    return {
      ready: false,
      body: {
        status: "not ready",
        database: "unavailable",
        error: `the database does not answer: ${errorText(err)}`,
      },
    };
  }
  if (!bus.connected) {
    return {
      ready: false,
      body: {
        status: "not ready",
        broker: "disconnected",
        outbox_pending,
        error: bus.lastError || "not connected to the broker yet",
      },
    };
  }
  const body: Record<string, unknown> = {
    status: "ready",
    broker: "connected",
    outbox_pending,
  };
  const problems: string[] = [];
  if (bus.blocked !== undefined) {
    body.broker = "blocked";
    problems.push(
      `publishing connection ${bus.publisherName} is blocked by the broker: ${bus.blocked}`,
    );
  }
  if (oldest !== undefined) {
    // Time spent disconnected is not a stall: the relay could not have sent the row.
    const waited = Date.now() - Math.max(oldest, bus.connectedSince ?? 0);
    if (waited > stallMs) {
      body.outbox = "stalled";
      problems.push(
        `the oldest outbox row has waited ${waited} ms while connected, longer than ${stallMs} ms`,
      );
    }
  }
  const waitedForDatabase = waits?.longestWaitMs() ?? 0;
  if (waitedForDatabase > databaseStallMs) {
    body.database = "stalled";
    problems.push(
      `database work has waited ${waitedForDatabase} ms, longer than ${databaseStallMs} ms ` +
        "(a row locked by another transaction, or a database that does not answer)",
    );
  }
  if (problems.length === 0) return { ready: true, body };
  return { ready: false, body: { ...body, status: "not ready", error: problems.join("; ") } };
}

/**
 * `GET /metrics` and the metrics of the runtime itself: `campus_ready` (1 when `/ready` would
 * answer 200), `campus_outbox_pending`, and `campus_queue_messages{queue}`, the ready messages
 * in each queue the service consumes and in their retry and dead-letter queues, read from the
 * broker at each scrape.
 */
function metricsRoutes(
  metrics: ServiceMetrics,
  bus: BrokerState & { queueDepths(queues: readonly string[]): Promise<Map<string, number>> },
  outbox: OutboxStore,
  { queues, ...bounds }: StallBounds & { queues: readonly string[] },
): Route[] {
  metrics.gauge(
    "campus_ready",
    "1 while the service is ready (GET /ready answers 200), 0 otherwise.",
    async () => (await readiness(bus, outbox, bounds)).ready ? 1 : 0,
  );
  metrics.gauge(
    "campus_outbox_pending",
    "Events stored in the outbox and not yet confirmed by the broker.",
    // A database that does not answer must not fail the whole scrape: campus_ready says 0.
    () => outbox.size().catch(() => NaN),
  );
  const watched = queues.flatMap((q) => [q, retryQueueOf(q), dlqOf(q)]);
  metrics.labelledGauge(
    "campus_queue_messages",
    "Ready messages in each queue the service consumes, and in its retry and dead-letter queues.",
    "queue",
    () => bus.queueDepths(watched),
  );
  return [{
    method: "GET",
    path: "/metrics",
    // Prometheus scrapes without credentials; counts and queue depths only, no student ids.
    access: "public",
    handler: async () => {
      const { text, contentType } = await metrics.render();
      return new Response(text, { headers: { "content-type": contentType } });
    },
  }];
}

/** A running service, for tests and the shutdown path. */
export interface RunningService {
  /** Where the HTTP server listens. */
  port: number;
  /** Stops gracefully; resolves when everything is closed. */
  shutdown(): Promise<void>;
}

/**
 * Starts a service described by `factory` with `config`. With `signals` (the default: the
 * service owns its process) it stops on SIGTERM or SIGINT, and once it has started, a rejection
 * or error that no code handled is logged instead of ending the process
 * ({@linkcode surviveUncaught}); a start-up that fails still ends it.
 */
export async function startService<S extends ServiceName>(
  config: Readonly<Config<S>>,
  factory: ServiceFactory<S>,
  { signals = true } = {},
): Promise<RunningService> {
  enableTracing(config.tracing);
  const log = createLogger(config.service, config.logLevel, undefined, config.secrets);
  const waits = new DatabaseWaits();
  const db = openServiceDatabase(config, waits);
  const metrics = new ServiceMetrics();
  const auth = config.authSecret ? new Authenticator(config.authSecret) : undefined;
  const { maxRetries, retryDelayMs, maxDeliveries, queueType } = config;
  const broker = new Broker({
    url: config.amqpUrls,
    topology: { queueType, maxDeliveries },
    log,
    prefetch: config.prefetch,
    name: `${config.service}-${Deno.pid}`,
    onPublished: (routingKey) => metrics.published(routingKey),
  });
  const queueDepths = (queues: readonly string[]) => broker.queueDepths(queues);
  let outbox: OutboxStore;
  let service: ServiceDefinition<S>;
  let counter: DeliveryCounter;
  try {
    // Opening a store brings its schema up to date: a database that does not answer stops here.
    outbox = await openOutboxStore(db);
    service = await factory({ config, db, outbox, log, metrics, auth, queueDepths });
    counter = await openDeliveryCounter(db);
  } catch (err) {
    await db.close().catch(() => {});
    // No `cause`: the driver's error would be printed whole, past the logger's masking.
    throw new Error(
      redactSecrets(
        `Cannot open the database at ${db.location}: ${errorText(err)}`,
        config.secrets,
      ),
    );
  }
  const relay = new OutboxRelay(outbox, broker, log);
  for (const [queue, subscription] of Object.entries<Subscription>(service.subscriptions)) {
    const consumer = createConsumer({
      ...subscription,
      bus: broker,
      log,
      db,
      counter,
      maxRetries,
      retryDelayMs,
      maxDeliveries,
      waits,
      metrics: metrics.forQueue(queue),
    });
    await broker.subscribe(queue, consumer);
  }
  const bounds = { stallMs: config.outboxStallMs, waits, databaseStallMs: config.databaseStallMs };
  const health = healthRoutes(broker, outbox, { ...bounds, secrets: config.secrets });
  const queues = Object.keys(service.subscriptions);
  const exposition = metricsRoutes(metrics, broker, outbox, { ...bounds, queues });
  const router = createRouter(
    [...health, ...exposition, ...service.routes],
    log,
    metrics,
    auth && ((req, access) => auth.admit(req, access)),
  );
  const server = Deno.serve(
    { hostname: config.host, port: config.port, onListen: () => {} },
    router,
  );
  const port = server.addr.port;
  log.info("listening", {
    port,
    database: db.location,
    authentication: auth ? "on" : "off (AUTH_SECRET unset: every route is open)",
  });
  // Only once started: a start-up that fails must still end the process, with its error.
  if (signals) surviveUncaught(log);
  relay.start();
  broker.start();
  service.start?.();

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    stopping ??= (async () => {
      log.info("shutting down");
      const deadline = setTimeout(() => {
        log.error("shutdown took too long, exiting");
        Deno.exit(1);
      }, config.shutdownTimeoutMs);
      await within(service.stop?.() ?? Promise.resolve(), config.shutdownTimeoutMs / 4);
      // Requests in flight are answered at once (a body cut off mid-way gets 503), but a client
      // that keeps such a connection open would hold the server until the forced exit: the
      // server gets half the budget, the consumers and the outbox the rest.
      await within(server.shutdown(), config.shutdownTimeoutMs / 2);
      await broker.stopConsuming(config.shutdownTimeoutMs);
      await relay.stop();
      await broker.close();
      await db.close();
      clearTimeout(deadline);
      log.info("stopped");
    })();
  if (signals) {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(signal, () =>
        shutdown().then(
          () => Deno.exit(0),
          (err) => {
            log.error("shutdown failed", { error: errorText(err) });
            Deno.exit(1);
          },
        ));
    }
  }
  return { port, shutdown };
}

/** The answer of `work`, or a rejection once `ms` passed without one. */
async function answerWithin<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    // A late failure of `work` is handled here too: race() listens to both.
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for `work`, or `ms`, whichever ends first. */
async function within(work: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([work, new Promise<void>((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}
