/**
 * What a service says about itself over HTTP: `/health` (alive), `/ready` (able to work: the
 * database answers, the broker is connected and not blocking, nothing stalled) and `/metrics`
 * (Prometheus, with the runtime's own gauges). `startService` mounts them on every service.
 * @module
 */
import type { DatabaseWaits } from "../storage/database_waits.ts";
import { json, type Route } from "../http/http.ts";
import { errorText } from "./log.ts";
import { beforeDeadline, EXPIRED } from "./deadline.ts";
import type { ServiceMetrics } from "./metrics.ts";
import type { OutboxStore } from "../outbox_store.ts";
import { redactSecrets } from "./redact.ts";
import { dlqOf, retryQueueOf } from "../messaging/topology.ts";

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
export function metricsRoutes(
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

/** The answer of `work`, or a rejection once `ms` passed without one. */
async function answerWithin<T>(work: Promise<T>, ms: number): Promise<T> {
  const answer = await beforeDeadline(work, ms);
  if (answer === EXPIRED) throw new Error(`no answer within ${ms} ms`);
  return answer;
}
