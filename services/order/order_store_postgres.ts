/**
 * Orders in PostgreSQL, shared by the order replicas: an order placed through one is read
 * through any. An idempotency key is claimed with a unique insert before its order is made, so
 * two replicas given the same key at once make one order between them.
 * @module
 */
import type { InventoryResult, OutgoingEvent } from "@campus/shared/events";
import type { PlaceOrderRequest } from "./place_order_request.ts";
import type { OutboxStore } from "@campus/shared/outbox_store";
import { pagesOf, type PostgresDatabase, type Row } from "@campus/shared/postgres";
import {
  canonical,
  IDEMPOTENCY_KEY_TTL_MS,
  PRUNE_BATCH,
  PRUNE_EVERY_MS,
} from "./idempotency_keys.ts";
import {
  isFinal,
  itemAfter,
  type NewOrder,
  newOrder,
  noOrders,
  type Order,
  orderPlaced,
  type OrderQuery,
  type OrderStatus,
  type Placement,
  type Reask,
  type ReaskRequest,
  sameRequest,
} from "./order.ts";

const SCHEMA = [
  `CREATE TABLE orders (
    -- The order of the listings: the order in which the rows were written.
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    order_id text PRIMARY KEY,
    item text NOT NULL,
    qty integer NOT NULL,
    student_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('PLACED', 'RESERVED', 'FAILED')),
    reason text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
  );
  CREATE INDEX orders_by_student ON orders (student_id, seq);`,
  `CREATE TABLE idempotency_keys (
    key text PRIMARY KEY,
    request text NOT NULL,
    order_id text NOT NULL,
    expires_at bigint NOT NULL
  );
  CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);`,
  // Only the orders still waiting: the age of the oldest is read at every metrics scrape, and
  // this keeps that read one index step however many orders the table holds.
  `CREATE INDEX orders_placed ON orders (created_at) WHERE status = 'PLACED'`,
  // How often an order was asked about again, and when it is overdue next (null: not yet
  // asked, overdue OUTCOME_TIMEOUT_MS after created_at).
  `ALTER TABLE orders ADD COLUMN asks integer NOT NULL DEFAULT 0,
    ADD COLUMN ask_at timestamptz`,
];

const COLUMNS = [
  "order_id",
  "item",
  "qty",
  "student_id",
  "status",
  "reason",
  "created_at",
  "updated_at",
] as const;

/** The order store in a PostgreSQL database. */
export class PostgresOrderStore {
  #prunedAt = -Infinity;

  private constructor(
    private readonly db: PostgresDatabase,
    private readonly outbox: OutboxStore,
    private readonly now: () => number,
  ) {}

  /**
   * The orders of `db`, its schema brought up to date.
   * @param now the clock of idempotency keys, in ms since the epoch (tests move it)
   */
  static async open(
    db: PostgresDatabase,
    outbox: OutboxStore,
    now: () => number = Date.now,
  ): Promise<PostgresOrderStore> {
    await db.migrate("orders", SCHEMA);
    return new PostgresOrderStore(db, outbox, now);
  }

  /** Stores new orders with their events and keys in one transaction. */
  placeAll(orders: readonly NewOrder[]): Promise<Placement[]> {
    return this.db.transaction(async () => {
      await this.#pruneExpired();
      const now = new Date().toISOString();
      const placed: Order[] = [];
      /** The outbox events of the placed orders, each with its own request's trace. */
      const events: OutgoingEvent[] = [];
      /** Keys used earlier in this group, with what they were used for. */
      const group = new Map<string, { request: PlaceOrderRequest; order: Order }>();
      const placements: Placement[] = [];
      for (const { request, idempotencyKey: key, traceparent } of orders) {
        const order = newOrder(request, now);
        if (key !== undefined) {
          const earlier = group.get(key);
          if (earlier) {
            placements.push(replay(key, earlier.request, earlier.order, request));
            continue;
          }
          const seen = await this.#claim(key, request, order.order_id);
          if (seen) {
            const made = sameRequest(seen.request, request)
              ? (await this.get(seen.orderId))!
              : undefined;
            placements.push(
              made
                ? { kind: "replayed", order: made }
                : { kind: "conflict", key, orderId: seen.orderId, previous: seen.request },
            );
            continue;
          }
          group.set(key, { request, order });
        }
        placed.push(order);
        events.push({ ...orderPlaced(order), traceparent });
        placements.push({ kind: "placed", order });
      }
      if (placed.length > 0) {
        const sql = this.db.sql;
        await sql`INSERT INTO orders ${sql(placed, ...COLUMNS.filter((c) => c !== "reason"))}`;
        await this.outbox.insert(...events);
      }
      return placements;
    });
  }

  /** When the oldest order still `PLACED` was placed (ms since the epoch). */
  async oldestPlacedAt(): Promise<number | undefined> {
    const [row] = await this.db.sql`SELECT min(created_at) AS at FROM orders
      WHERE status = 'PLACED'`;
    return row?.at ? (row.at as Date).getTime() : undefined;
  }

  /** The order with `orderId`, or undefined. */
  async get(orderId: string): Promise<Order | undefined> {
    const [row] = await this.db.sql`SELECT ${this.db.sql(COLUMNS)} FROM orders
      WHERE order_id = ${orderId}`;
    return row ? toOrder(row) : undefined;
  }

  /** The `limit` most recent orders, newest first. */
  async latest(limit: number, student_id?: string): Promise<Order[]> {
    const sql = this.db.sql;
    const rows = student_id === undefined
      ? await sql`SELECT ${sql(COLUMNS)} FROM orders ORDER BY seq DESC LIMIT ${limit}`
      : await sql`SELECT ${sql(COLUMNS)} FROM orders WHERE student_id = ${student_id}
          ORDER BY seq DESC LIMIT ${limit}`;
    return rows.map(toOrder);
  }

  /** How many orders stand at each status. */
  async statusCounts(): Promise<Record<OrderStatus, number>> {
    const counts = noOrders();
    const rows = await this.db.sql`SELECT status, count(*)::int AS n FROM orders GROUP BY status`;
    for (const row of rows) counts[row.status as OrderStatus] = Number(row.n);
    return counts;
  }

  /** Records oldest first, a batch (one read) at a time. */
  async *batches(query: OrderQuery = {}): AsyncGenerator<Order[]> {
    const { student_id, status, limit } = query;
    for await (
      const rows of pagesOf(this.db, {
        table: "orders",
        columns: COLUMNS,
        key: "seq",
        where: { student_id, status },
        limit,
      })
    ) yield rows.map(toOrder);
  }

  /** Records an inventory outcome; false when the order was already final. */
  async applyResult(result: InventoryResult): Promise<boolean> {
    const { event, outcome } = result;
    const reason = result.outcome === "FAILED" ? result.event.reason : null;
    const now = new Date();
    const sql = this.db.sql;
    const [stored] = await sql`SELECT item, status FROM orders WHERE order_id = ${event.order_id}`;
    if (stored) {
      if (isFinal(stored.status as OrderStatus)) return false;
      // Only one of several replicas given the result can move the order on from PLACED.
      const moved = await sql`UPDATE orders
        SET status = ${outcome}, reason = ${reason}, item = ${itemAfter(stored.item, result)},
          updated_at = ${now}
        WHERE order_id = ${event.order_id} AND status = 'PLACED'`;
      return moved.count > 0;
    }
    const inserted = await sql`INSERT INTO orders
      (order_id, item, qty, student_id, status, reason, created_at, updated_at)
      VALUES (${event.order_id}, ${event.lines[0].item}, ${
      event.lines[0].qty
    }, ${event.student_id}, ${outcome},
        ${reason}, ${now}, ${now})
      ON CONFLICT (order_id) DO NOTHING`;
    return inserted.count > 0;
  }

  /** Asks again about overdue orders, oldest first. */
  reaskOverdue({ now, timeoutMs, nextAskAfter, limit }: ReaskRequest): Promise<Reask[]> {
    return this.db.transaction(async () => {
      const sql = this.db.sql;
      // Rows another replica is asking about (or an outcome is moving on) are skipped, not
      // waited for; once that commits they are no longer overdue, or no longer PLACED.
      const rows = await sql`SELECT ${sql(COLUMNS)}, asks FROM orders
        WHERE status = 'PLACED'
          AND ((ask_at IS NULL AND created_at <= ${new Date(now - timeoutMs)})
            OR ask_at <= ${new Date(now)})
        ORDER BY created_at LIMIT ${limit}
        FOR UPDATE SKIP LOCKED`;
      if (rows.length === 0) return [];
      const reasks = rows.map((row) => ({ order: toOrder(row), asks: Number(row.asks) + 1 }));
      // One statement for the whole batch, its rows as one JSON parameter (the pool does not
      // fetch array types: see shared/postgres.ts).
      const due = reasks.map(({ order, asks }) => ({
        id: order.order_id,
        at: new Date(now + nextAskAfter(asks)).toISOString(),
      }));
      await sql`UPDATE orders SET asks = asks + 1, ask_at = due.at
        FROM jsonb_to_recordset(${sql.json(due)}) AS due (id text, at timestamptz)
        WHERE orders.order_id = due.id`;
      await this.outbox.insert(...reasks.map(({ order }) => orderPlaced(order)));
      return reasks;
    });
  }

  /**
   * Claims `key` for a new order `orderId`. Resolves undefined when the claim is ours; else
   * what the key was used for before, once that use is committed (the insert waits for it).
   */
  async #claim(
    key: string,
    request: PlaceOrderRequest,
    orderId: string,
  ): Promise<{ request: PlaceOrderRequest; orderId: string } | undefined> {
    const sql = this.db.sql;
    const expires = this.now() + IDEMPOTENCY_KEY_TTL_MS;
    const claimed = await sql`INSERT INTO idempotency_keys (key, request, order_id, expires_at)
      VALUES (${key}, ${canonical(request)}, ${orderId}, ${expires})
      ON CONFLICT (key) DO NOTHING`;
    if (claimed.count > 0) return undefined;
    const [row] = await sql`SELECT request, order_id FROM idempotency_keys WHERE key = ${key}`;
    return { request: JSON.parse(row.request), orderId: row.order_id };
  }

  /** Deletes a batch of expired keys, at most once a minute per replica. */
  async #pruneExpired(): Promise<void> {
    const now = this.now();
    if (now - this.#prunedAt < PRUNE_EVERY_MS) return;
    this.#prunedAt = now;
    await this.db.sql`DELETE FROM idempotency_keys WHERE key IN (
      SELECT key FROM idempotency_keys WHERE expires_at < ${now} LIMIT ${PRUNE_BATCH})`;
  }
}

function replay(
  key: string,
  previous: PlaceOrderRequest,
  order: Order,
  request: PlaceOrderRequest,
): Placement {
  return sameRequest(previous, request)
    ? { kind: "replayed", order }
    : { kind: "conflict", key, orderId: order.order_id, previous };
}

function toOrder(row: Row): Order {
  const order: Order = {
    order_id: row.order_id,
    item: row.item,
    qty: row.qty,
    student_id: row.student_id,
    status: row.status,
    created_at: (row.created_at as Date).toISOString(),
    updated_at: (row.updated_at as Date).toISOString(),
  };
  if (row.reason != null) order.reason = row.reason;
  return order;
}
