/**
 * Transactional outbox: events are written in the same SQLite transaction as the business
 * change, and a relay publishes them in order over confirms, deleting each only after the
 * broker confirmed it. A crash anywhere leaves either nothing or a row that will be sent. Adding
 * a row wakes the relay, so no writer can forget to.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { EventType, OutgoingEvent } from "./events.ts";
import type { MessageBus } from "./message_bus.ts";
import { errorText, type Logger } from "./log.ts";

/** Pending outgoing events stored in the service's database. */
export class Outbox {
  #insert: StatementSync;
  #pending: StatementSync;
  #delete: StatementSync;
  #count: StatementSync;
  #oldest: StatementSync;
  #addedListeners: (() => void)[] = [];

  constructor(db: DatabaseSync) {
    db.exec(`CREATE TABLE IF NOT EXISTS outbox (
      -- A plain rowid key: AUTOINCREMENT would write a second table on every insert. Order
      -- is still kept, since a new row's rowid is above every row left in the table.
      seq INTEGER PRIMARY KEY,
      message_id TEXT NOT NULL,
      type TEXT NOT NULL,
      routing_key TEXT NOT NULL,
      correlation_id TEXT NOT NULL,
      body TEXT NOT NULL,
      -- When the row was added (ms since the epoch): how long the oldest row waits says
      -- whether the relay is stuck.
      enqueued_at INTEGER
    )`);
    const columns = db.prepare(`SELECT name FROM pragma_table_info('outbox')`).all();
    if (!columns.some((c) => c.name === "enqueued_at")) {
      // Made before rows carried their time: their age is unknown, so they never count as stuck.
      db.exec(`ALTER TABLE outbox ADD COLUMN enqueued_at INTEGER`);
    }
    this.#insert = db.prepare(
      `INSERT INTO outbox (message_id, type, routing_key, correlation_id, body, enqueued_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    this.#pending = db.prepare(`SELECT * FROM outbox ORDER BY seq LIMIT ?`);
    this.#delete = db.prepare(`DELETE FROM outbox WHERE seq <= ?`);
    this.#count = db.prepare(`SELECT count(*) AS n FROM outbox`);
    this.#oldest = db.prepare(`SELECT enqueued_at FROM outbox ORDER BY seq LIMIT 1`);
  }

  /**
   * Adds an event; call it inside the transaction that makes the change it announces. The
   * listeners hear of it at once, but a relay they wake reads only after the synchronous
   * transaction ended: a rolled-back row is never seen.
   */
  add(event: OutgoingEvent): void {
    this.#insert.run(
      event.messageId,
      event.type,
      event.routingKey,
      event.correlationId,
      JSON.stringify(event.body),
      Date.now(),
    );
    for (const listener of this.#addedListeners) listener();
  }

  /** Calls `listener` after every {@linkcode Outbox.add}. */
  onAdded(listener: () => void): void {
    this.#addedListeners.push(listener);
  }

  /** The oldest `limit` unsent events, with their sequence numbers. */
  pending(limit: number): { seq: number; event: OutgoingEvent }[] {
    return this.#pending.all(limit).map((row) => ({
      seq: Number(row.seq),
      event: {
        messageId: String(row.message_id),
        type: String(row.type) as EventType,
        routingKey: String(row.routing_key),
        correlationId: String(row.correlation_id),
        body: JSON.parse(String(row.body)),
      },
    }));
  }

  /** Forgets every event up to and including `seq` (sent in order, so a prefix). */
  markSentThrough(seq: number): void {
    this.#delete.run(seq);
  }

  /** Number of unsent events. */
  size(): number {
    return Number(this.#count.get()?.n ?? 0);
  }

  /** When the oldest unsent event was added (ms since the epoch); undefined when none waits. */
  oldestPendingSince(): number | undefined {
    const at = this.#oldest.get()?.enqueued_at;
    return typeof at === "number" ? at : undefined;
  }
}

/**
 * Publishes outbox rows in order, in batches, whenever a row is added or publishing may work
 * again (a reconnect, the broker unblocking it).
 */
export class OutboxRelay {
  #wake: (() => void) | undefined;
  #woken = false;
  #running: Promise<void> | undefined;
  #stopped = false;
  #lastFailure = "";

  constructor(
    private readonly outbox: Outbox,
    private readonly bus: MessageBus,
    private readonly log: Logger,
    private readonly batchSize = 500,
  ) {
    outbox.onAdded(() => this.wake());
    bus.onWritable(() => this.wake());
  }

  /** Starts the relay loop; it drains what earlier runs left behind first. */
  start(): void {
    this.#running ??= this.#loop();
  }

  /** Tells the relay there may be something to send. */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /** Stops after one last attempt to send what is pending; resolves when the loop ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.wake();
    await this.#running;
    if (this.bus.connected) await this.#sendBatch().catch(() => {});
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      this.#woken = false;
      let sent = 0;
      if (this.bus.connected) {
        try {
          sent = await this.#sendBatch();
          this.#lastFailure = "";
        } catch (err) {
          // Said once per cause, not on every retry while it lasts.
          const failure = errorText(err);
          if (failure !== this.#lastFailure) {
            this.log.warn("outbox relay could not publish", { error: failure });
          }
          this.#lastFailure = failure;
        }
      }
      // A full batch means more may be waiting; otherwise sleep until woken. The timeout is a
      // safety net so that a missed wake-up delays a row, never strands it.
      if (sent < this.batchSize && !this.#woken) await this.#sleep(1000);
    }
  }

  async #sendBatch(): Promise<number> {
    const rows = this.outbox.pending(this.batchSize);
    if (rows.length === 0) return 0;
    await this.bus.publishEvents(rows.map((r) => r.event));
    this.outbox.markSentThrough(rows[rows.length - 1].seq);
    return rows.length;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}
