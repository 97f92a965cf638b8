/**
 * The outbox in PostgreSQL, shared by the replicas of a service. A relay claims the oldest
 * rows no other relay holds (`FOR UPDATE SKIP LOCKED`) in a transaction that stays open while
 * it publishes them, and deletes them in it once the broker confirmed. A relay that dies ends
 * its transaction with its connection; one that stalls is cut off by the server after the claim
 * timeout. Either way its rows are free again for the others, which never waited for them.
 * @module
 */
import type { EventType, OutgoingEvent } from "@campus/shared/events";
import { arrayText, type PostgresDatabase, type Row, type Sql } from "@campus/shared/postgres";
import { activeTraceparent } from "@campus/shared/tracing";

const SCHEMA = [
  `CREATE TABLE outbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL,
    type text NOT NULL,
    routing_key text NOT NULL,
    correlation_id text NOT NULL,
    -- The body as published, byte for byte (jsonb would reorder its keys).
    body text NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now()
  )`,
  // W3C trace context of the change that made the row (null with tracing off): the relay,
  // publishing later, continues that trace.
  `ALTER TABLE outbox ADD COLUMN traceparent text`,
];

/** A row of the outbox as written. */
interface OutboxRow {
  message_id: string;
  type: string;
  routing_key: string;
  correlation_id: string;
  body: string;
  traceparent: string | null;
}

/** The outbox store in a PostgreSQL database. */
export class PostgresOutboxStore {
  #listeners: (() => void)[] = [];

  private constructor(
    private readonly db: PostgresDatabase,
    private readonly claimTimeoutMs: number,
  ) {}

  /**
   * The outbox of `db`, its schema brought up to date.
   * @param claimTimeoutMs how long a relay may hold claimed rows without a word to the server
   */
  static async open(
    db: PostgresDatabase,
    claimTimeoutMs = 30_000,
  ): Promise<PostgresOutboxStore> {
    await db.migrate("outbox", SCHEMA);
    return new PostgresOutboxStore(db, claimTimeoutMs);
  }

  /**
   * Adds events, inside the transaction open in this context if there is one: there they are
   * written with all the others of the transaction, in one statement just before it commits
   * (a batch of messages then costs one insert, not one per message).
   */
  async add(...events: OutgoingEvent[]): Promise<void> {
    if (events.length === 0) return;
    const active = activeTraceparent() ?? null;
    const rows = events.map((event): OutboxRow => ({
      message_id: event.messageId,
      type: event.type,
      routing_key: event.routingKey,
      correlation_id: event.correlationId,
      body: JSON.stringify(event.body),
      traceparent: event.traceparent ?? active,
    }));
    if (!this.db.defer(this.#writer, ...rows)) await this.#writer.write(rows, this.db.sql);
    this.db.afterCommit(() => this.#listeners.forEach((listener) => listener()));
  }

  /**
   * Writes rows of the outbox in one statement, in the order given (their `seq`). The same
   * statement text for any number of rows, prepared once per connection, where a `VALUES` list
   * of each length was a statement of its own, prepared and planned afresh.
   */
  #writer = {
    async write(rows: OutboxRow[], sql: Sql): Promise<void> {
      const column = (key: keyof OutboxRow) => arrayText(rows.map((row) => row[key]));
      await sql`INSERT INTO outbox
          (message_id, type, routing_key, correlation_id, body, traceparent)
        SELECT message_id, type, routing_key, correlation_id, body, traceparent
        FROM unnest(
            ${column("message_id")}::text[],
            ${column("type")}::text[],
            ${column("routing_key")}::text[],
            ${column("correlation_id")}::text[],
            ${column("body")}::text[],
            ${column("traceparent")}::text[]
          )
          WITH ORDINALITY
          AS given (message_id, type, routing_key, correlation_id, body, traceparent, n)
        ORDER BY n`;
    },
  };

  /**
   * {@linkcode PostgresOutboxStore.add} inside a store's transaction: a transaction needs no
   * other way of writing.
   */
  insert(...events: OutgoingEvent[]): Promise<void> {
    return this.add(...events);
  }

  /** Calls `listener` after each commit that added events. */
  onAdded(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** Publishes up to `limit` of the oldest unclaimed events, then deletes them; how many. */
  async publishOldest(
    limit: number,
    publish: (events: OutgoingEvent[]) => Promise<void>,
  ): Promise<number> {
    // Not db.transaction: a relay's claim is its own, never part of a caller's transaction,
    // and a collision must not publish the batch twice in a row.
    return await this.db.pool.begin(async (tx) => {
      if (this.db.timeouts?.idleInTransactionMs !== this.claimTimeoutMs) {
        await tx.unsafe(`SET LOCAL idle_in_transaction_session_timeout = ${this.claimTimeoutMs}`);
      }
      // Claimed by deleting them: the delete holds the rows, other relays skip them, and they
      // come back if publishing fails (the transaction rolls back) or the relay goes silent for
      // the claim's timeout (the server ends the session).
      const rows = await tx`DELETE FROM outbox WHERE seq IN (
          SELECT seq FROM outbox ORDER BY seq LIMIT ${limit} FOR UPDATE SKIP LOCKED
        )
        RETURNING seq, message_id, type, routing_key, correlation_id, body, traceparent`;
      if (rows.length === 0) return 0;
      // RETURNING keeps no order.
      const claimed = [...rows].sort((a, b) => Number(a.seq) - Number(b.seq));
      await publish(claimed.map(toEvent));
      return claimed.length;
    });
  }

  /** Number of unsent events. */
  async size(): Promise<number> {
    const [{ n }] = await this.db.sql`SELECT count(*)::int AS n FROM outbox`;
    return Number(n);
  }

  /** When the oldest unsent event was added (ms since the epoch). */
  async oldestPendingSince(): Promise<number | undefined> {
    const [row] = await this.db.sql`SELECT enqueued_at FROM outbox ORDER BY seq LIMIT 1`;
    return row ? (row.enqueued_at as Date).getTime() : undefined;
  }
}

function toEvent(row: Row): OutgoingEvent {
  const event: OutgoingEvent = {
    messageId: row.message_id,
    type: row.type as EventType,
    routingKey: row.routing_key,
    correlationId: row.correlation_id,
    body: JSON.parse(row.body),
  };
  if (typeof row.traceparent === "string") event.traceparent = row.traceparent;
  return event;
}
