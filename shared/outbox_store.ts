/**
 * Where the transactional outbox keeps its rows: the events a service committed and has not
 * yet seen confirmed by the broker, in the service's own database whichever its engine.
 * @module
 */
import type { Database } from "@campus/shared/database";
import type { OutgoingEvent } from "@campus/shared/events";
import type { PostgresDatabase } from "@campus/shared/postgres";
import type { SqliteDatabase } from "@campus/shared/sqlite";

/** The pending outgoing events of a service. */
export interface OutboxStore {
  /**
   * Adds events in a write of their own, or inside a PostgreSQL transaction already open. The
   * {@linkcode OutboxStore.onAdded} listeners hear of them once that write committed.
   */
  add(...events: OutgoingEvent[]): Promise<void>;
  /**
   * Adds events inside the write of the store whose change they announce, the way its engine
   * writes. SQLite: call it in the synchronous work of `SqliteDatabase.write`; the rows are in
   * when it returns, and a failure throws, so the write rolls back. PostgreSQL: await it inside
   * `db.transaction`. The {@linkcode OutboxStore.onAdded} listeners hear of them after commit.
   */
  insert(...events: OutgoingEvent[]): void | Promise<void>;
  /** Calls `listener` after each commit that added events (a relay wakes up). */
  onAdded(listener: () => void): void;
  /**
   * Hands up to `limit` of the oldest unsent events to `publish`, and forgets them once it
   * resolved; returns how many it handed over. When `publish` throws they stay. Relays that
   * share the outbox (replicas of a service) each take rows no other relay is publishing; a
   * relay that dies or stalls lets go of its rows, which another then sends: each row goes out
   * at least once.
   */
  publishOldest(
    limit: number,
    publish: (events: OutgoingEvent[]) => Promise<void>,
  ): Promise<number>;
  /** Number of unsent events. */
  size(): Promise<number>;
  /** When the oldest unsent event was added (ms since the epoch); undefined when none waits. */
  oldestPendingSince(): Promise<number | undefined>;
}

/** Options of {@linkcode openOutboxStore}. */
export interface OutboxStoreOptions {
  /**
   * PostgreSQL: how long a relay may hold claimed rows without a word to the server before
   * the server ends its session and the rows go to another relay. Default 30 s.
   */
  claimTimeoutMs?: number;
}

/** The outbox of `db`, its schema brought up to date. */
export async function openOutboxStore(
  db: Database,
  options: OutboxStoreOptions = {},
): Promise<OutboxStore> {
  // Only the engine in use is loaded: the PostgreSQL driver stays out of a SQLite service.
  if (db.engine === "postgres") {
    const { PostgresOutboxStore } = await import("./outbox_store_postgres.ts");
    return await PostgresOutboxStore.open(db as PostgresDatabase, options.claimTimeoutMs);
  }
  const { SqliteOutboxStore } = await import("./outbox_store_sqlite.ts");
  return await SqliteOutboxStore.open(db as SqliteDatabase);
}
