/**
 * Where the transactional outbox keeps its rows: the events a service committed and has not
 * yet seen confirmed by the broker, in the service's own database whichever its engine.
 * @module
 */
import type { Database } from "./storage/database.ts";
import type { OutgoingEvent } from "./messaging/contract.ts";
import type { PostgresDatabase } from "./storage/postgres.ts";
import type { SqliteDatabase } from "./storage/sqlite.ts";
import { SqliteOutboxStore } from "./outbox_store_sqlite.ts";
import { PostgresOutboxStore } from "./outbox_store_postgres.ts";

/** The pending outgoing events of a service. */
export interface OutboxStore {
  /**
   * Adds events; call it inside the transaction that makes the change they announce. The
   * {@linkcode OutboxStore.onAdded} listeners hear of them once that transaction committed.
   */
  add(...events: OutgoingEvent[]): Promise<void>;
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
  return db.engine === "postgres"
    ? await PostgresOutboxStore.open(db as PostgresDatabase, options)
    : await SqliteOutboxStore.open(db as SqliteDatabase);
}
