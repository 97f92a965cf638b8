/**
 * The outbox in SQLite. One process owns the file, so one relay reads it: rows are read in
 * order, published, then deleted as a prefix.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { EventType, OutgoingEvent } from "./messaging/contract.ts";
import type { OutboxStore } from "./outbox_store.ts";
import type { SqliteDatabase } from "./storage/sqlite.ts";
import { activeTraceparent } from "./runtime/tracing.ts";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS outbox (
    -- A plain rowid key: AUTOINCREMENT would write a second table on every insert. Order
    -- is still kept, since a new row's rowid is above every row left in the table.
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    body TEXT NOT NULL
  )`,
  // When the row was added (ms since the epoch), to tell a stuck relay. Rows made before
  // have no time and never count as stuck. Files of earlier versions may have the column.
  (db: DatabaseSync) => {
    const columns = db.prepare(`SELECT name FROM pragma_table_info('outbox')`).all();
    if (!columns.some((c) => c.name === "enqueued_at")) {
      db.exec(`ALTER TABLE outbox ADD COLUMN enqueued_at INTEGER`);
    }
  },
  // W3C trace context of the change that made the row (null with tracing off): the relay,
  // publishing later, continues that trace. Rows made before start traces of their own.
  (db: DatabaseSync) => {
    const columns = db.prepare(`SELECT name FROM pragma_table_info('outbox')`).all();
    if (!columns.some((c) => c.name === "traceparent")) {
      db.exec(`ALTER TABLE outbox ADD COLUMN traceparent TEXT`);
    }
  },
];

/** {@linkcode OutboxStore} in a SQLite database. */
export class SqliteOutboxStore implements OutboxStore {
  #insert: StatementSync;
  #pending: StatementSync;
  #delete: StatementSync;
  #count: StatementSync;
  #oldest: StatementSync;
  #listeners: (() => void)[] = [];

  private constructor(private readonly db: SqliteDatabase) {
    const sql = db.db;
    this.#insert = sql.prepare(
      `INSERT INTO outbox
       (message_id, type, routing_key, correlation_id, body, enqueued_at, traceparent)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#pending = sql.prepare(`SELECT * FROM outbox ORDER BY seq LIMIT ?`);
    this.#delete = sql.prepare(`DELETE FROM outbox WHERE seq <= ?`);
    this.#count = sql.prepare(`SELECT count(*) AS n FROM outbox`);
    this.#oldest = sql.prepare(`SELECT enqueued_at FROM outbox ORDER BY seq LIMIT 1`);
  }

  /** The outbox of `db`, its schema brought up to date. */
  static async open(db: SqliteDatabase): Promise<SqliteOutboxStore> {
    await db.migrate("outbox", SCHEMA);
    return new SqliteOutboxStore(db);
  }

  add(...events: OutgoingEvent[]): Promise<void> {
    return this.db.write(() => this.insert(...events));
  }

  /**
   * {@linkcode SqliteOutboxStore.add} for the synchronous work of a SQLite store: call it inside
   * that store's {@linkcode SqliteDatabase.write}, where a failure must throw, not reject.
   */
  insert(...events: OutgoingEvent[]): void {
    const now = Date.now();
    const active = activeTraceparent();
    for (const event of events) {
      this.#insert.run(
        event.messageId,
        event.type,
        event.routingKey,
        event.correlationId,
        JSON.stringify(event.body),
        now,
        event.traceparent ?? active ?? null,
      );
    }
    this.db.afterCommit(() => this.#listeners.forEach((listener) => listener()));
  }

  onAdded(listener: () => void): void {
    this.#listeners.push(listener);
  }

  async publishOldest(
    limit: number,
    publish: (events: OutgoingEvent[]) => Promise<void>,
  ): Promise<number> {
    const rows = await this.db.read(() => this.#pending.all(limit));
    if (rows.length === 0) return 0;
    // Never announce what a power loss could still take back.
    await this.db.durable();
    await publish(rows.map(toEvent));
    const last = Number(rows[rows.length - 1].seq);
    // Lost to a power loss, the rows are only published again, and consumers take a message
    // twice as once: this commit need not wait for a flush.
    await this.db.write(() => this.#delete.run(last), { durable: false });
    return rows.length;
  }

  size(): Promise<number> {
    return this.db.read(() => Number(this.#count.get()?.n ?? 0));
  }

  oldestPendingSince(): Promise<number | undefined> {
    return this.db.read(() => {
      const at = this.#oldest.get()?.enqueued_at;
      return typeof at === "number" ? at : undefined;
    });
  }
}

function toEvent(row: Record<string, unknown>): OutgoingEvent {
  const event: OutgoingEvent = {
    messageId: String(row.message_id),
    type: String(row.type) as EventType,
    routingKey: String(row.routing_key),
    correlationId: String(row.correlation_id),
    body: JSON.parse(String(row.body)),
  };
  if (typeof row.traceparent === "string") event.traceparent = row.traceparent;
  return event;
}
