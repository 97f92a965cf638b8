/**
 * The runtime every service shares: database (SQLite or PostgreSQL), broker connection, outbox
 * relay, consumers, HTTP server with `/health`, `/ready` and `/metrics`, tracing when
 * `OTEL_DENO=true`, and graceful shutdown on SIGTERM and SIGINT. A service supplies only its
 * routes and message handlers.
 * @module
 */
import { BrokerSession } from "../messaging/amqp.ts";
import { Authenticator } from "../http/auth.ts";
import type { Config } from "./config.ts";
import { createConsumer, type Subscription } from "../messaging/consumer.ts";
import type { Database } from "../storage/database.ts";
import { DatabaseWaits } from "../storage/database_waits.ts";
import { type DeliveryCounter, openDeliveryCounter } from "../messaging/delivery_counter.ts";
import { createRouter, type Route } from "../http/http.ts";
import { healthRoutes, metricsRoutes } from "./health.ts";
import type { QueueOf, ServiceName } from "../messaging/topology.ts";
import { createLogger, errorText, type Logger, surviveUncaught } from "./log.ts";
import { redactSecrets } from "./redact.ts";
import { ServiceMetrics } from "./metrics.ts";
import { OutboxRelay } from "../messaging/outbox.ts";
import { openOutboxStore, type OutboxStore } from "../outbox_store.ts";
import { enableTracing } from "./tracing.ts";
import { beforeDeadline } from "./deadline.ts";

export { type BrokerState, healthRoutes, type StallBounds } from "./health.ts";

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
 * Its transactions under way are noted in `waits`. Only the chosen engine's module is loaded:
 * a service on SQLite never holds the PostgreSQL driver in memory.
 */
export async function openServiceDatabase(
  config: Readonly<Config>,
  waits?: DatabaseWaits,
): Promise<Database> {
  if (config.databaseUrl) {
    const { PostgresDatabase } = await import("../storage/postgres.ts");
    return PostgresDatabase.connect(config.databaseUrl, {
      name: `${config.service}-${Deno.pid}`,
      timeouts: config.databaseTimeouts,
      waits,
    });
  }
  const { SqliteDatabase } = await import("../storage/sqlite.ts");
  return SqliteDatabase.open(config.dataDir, config.service);
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
  await enableTracing(config.tracing);
  const log = createLogger(config.service, config.logLevel, undefined, config.secrets);
  const waits = new DatabaseWaits();
  const db = await openServiceDatabase(config, waits);
  const metrics = new ServiceMetrics();
  const auth = config.authSecret ? new Authenticator(config.authSecret) : undefined;
  const { maxRetries, retryDelayMs, maxDeliveries, queueType } = config;
  const broker = new BrokerSession({
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

/** Waits for `work`, or `ms`, whichever ends first. */
async function within(work: Promise<void>, ms: number): Promise<void> {
  await beforeDeadline(work, ms);
}
