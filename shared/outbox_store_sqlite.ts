/**
 * The outbox in SQLite. One process owns the file, so one relay reads it: rows are read in
 * order, published, then deleted as a prefix. The rows this process committed are also kept in
 * memory, so the relay hands them over without reading them back.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { EventType, OutgoingEvent } from "@campus/shared/events";
import type { SqliteDatabase } from "@campus/shared/sqlite";
import { activeTraceparent } from "@campus/shared/tracing";

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

/** The outbox store in a SQLite database. */
export class SqliteOutboxStore {
  #insert: StatementSync;
  #pending: StatementSync;
  #delete: StatementSync;
  #count: StatementSync;
  #oldest: StatementSync;
  #listeners: (() => void)[] = [];
  /** The table's rows in memory, shared by every outbox store of this database. */
  #kept: KeptRows;

  private constructor(private readonly db: SqliteDatabase) {
    const sql = db.db;
    this.#kept = keptRowsOf(db);
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

  /** Adds events in a write of their own. */
  add(...events: OutgoingEvent[]): Promise<void> {
    return this.db.write(() => this.insert(...events));
  }

  /**
   * Adds events inside the synchronous work of a store's {@linkcode SqliteDatabase.write}: no
   * write of its own, and a failure throws (the store's write rolls back), never rejects. The
   * relay is handed these very objects: an event is not to be changed once added.
   */
  insert(...events: OutgoingEvent[]): void {
    const now = Date.now();
    const active = activeTraceparent();
    const rows: Row[] = [];
    const reads = this.#kept.reads;
    for (const event of events) {
      const traceparent = event.traceparent ?? active;
      const { lastInsertRowid } = this.#insert.run(
        event.messageId,
        event.type,
        event.routingKey,
        event.correlationId,
        JSON.stringify(event.body),
        now,
        traceparent ?? null,
      );
      rows.push([Number(lastInsertRowid), withTrace(event, traceparent)]);
    }
    this.db.afterCommit(() => {
      // Hooks run once the commit is on disk: the relay may announce these rows at once.
      this.#kept.committed(rows, reads);
      this.#listeners.forEach((listener) => listener());
    });
  }

  /** Calls `listener` after each commit that added events. */
  onAdded(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** Publishes up to `limit` of the oldest events, then deletes them; returns how many. */
  async publishOldest(
    limit: number,
    publish: (events: OutgoingEvent[]) => Promise<void>,
  ): Promise<number> {
    const rows = this.#kept.whole ? this.#kept.oldest(limit) : await this.#readOldest(limit);
    if (rows.length === 0) return 0;
    await publish(rows.map(([, event]) => event));
    const last = rows[rows.length - 1][0];
    // Lost to a power loss, the rows are only published again, and consumers take a message
    // twice as once: this commit need not wait for a flush.
    await this.db.write(() => {
      this.#delete.run(last);
      // At the commit, before any other transaction: a seq freed here may be reused at once.
      this.db.afterCommit(() => this.#kept.deleted(rows));
    }, { durable: false });
    return rows.length;
  }

  /** Up to `limit` of the oldest rows, from the table; when that is all of it, keeps it. */
  async #readOldest(limit: number): Promise<Row[]> {
    const rows = await this.db.read(() => {
      const rows = this.#pending.all(limit).map((row): Row => [Number(row.seq), toEvent(row)]);
      this.#kept.read(rows, rows.length < limit);
      return rows;
    });
    // A row read here may be committed and not yet on disk (its commit hooks have not run):
    // never announce what a power loss could still take back.
    if (rows.length > 0) await this.db.durable();
    return rows;
  }

  /** Number of unsent events. */
  size(): Promise<number> {
    return this.db.read(() => Number(this.#count.get()?.n ?? 0));
  }

  /** When the oldest unsent event was added (ms since the epoch). */
  oldestPendingSince(): Promise<number | undefined> {
    return this.db.read(() => {
      const at = this.#oldest.get()?.enqueued_at;
      return typeof at === "number" ? at : undefined;
    });
  }
}

/** An outbox row: its seq and its event. */
type Row = [seq: number, event: OutgoingEvent];

/**
 * Rows kept in memory at most: beyond, the broker has been away a while, and the relay reads
 * the table again rather than hold every row twice.
 */
const KEPT_LIMIT = 5_000;

/**
 * The outbox table's rows in memory, so that the relay hands over what this process committed
 * without reading it back and parsing it again. Not whole at first, since rows may be left from
 * before a restart; whole once a read of the table found all of it; no longer whole once more
 * than {@linkcode KEPT_LIMIT} rows wait, until a read finds the table small again.
 */
class KeptRows {
  /** Every row of the table, in seq order, while {@linkcode KeptRows.whole}. */
  #rows = new Map<number, OutgoingEvent>();
  whole = false;
  /** Reads of the table so far. */
  reads = 0;

  /**
   * Rows whose commit is on disk, inserted when {@linkcode KeptRows.reads} was `readsBefore`.
   * A read of the table since then came after their commit and saw them: it keeps them, or
   * leaves them to the next read.
   */
  committed(rows: readonly Row[], readsBefore: number): void {
    if (!this.whole || this.reads !== readsBefore) return;
    for (const [seq, event] of rows) this.#rows.set(seq, event);
    if (this.#rows.size > KEPT_LIMIT) {
      this.whole = false;
      this.#rows.clear();
    }
  }

  /** Rows read from the table, oldest first; `all` when they are the whole table. */
  read(rows: readonly Row[], all: boolean): void {
    this.reads++;
    if (!all) return;
    this.#rows = new Map(rows);
    this.whole = true;
  }

  /** Up to `limit` of the oldest rows. */
  oldest(limit: number): Row[] {
    const rows: Row[] = [];
    for (const row of this.#rows) {
      if (rows.length === limit) break;
      rows.push(row);
    }
    return rows;
  }

  /** Rows deleted from the table. */
  deleted(rows: readonly Row[]): void {
    for (const [seq] of rows) this.#rows.delete(seq);
  }
}

/** One {@linkcode KeptRows} per database, whichever outbox store of it commits or deletes. */
const keptRows = new WeakMap<SqliteDatabase, KeptRows>();

function keptRowsOf(db: SqliteDatabase): KeptRows {
  let kept = keptRows.get(db);
  if (!kept) keptRows.set(db, kept = new KeptRows());
  return kept;
}

function withTrace(event: OutgoingEvent, traceparent: string | undefined): OutgoingEvent {
  if (event.traceparent === traceparent) return event;
  const traced = { ...event };
  if (traceparent === undefined) delete traced.traceparent;
  else traced.traceparent = traceparent;
  return traced;
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
