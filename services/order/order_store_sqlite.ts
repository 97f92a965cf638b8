/**
 * Orders in SQLite. One process owns the file, so a group of orders, their events and their
 * idempotency keys are written by a few synchronous statements in one transaction.
 * @module
 */
import type { StatementSync } from "node:sqlite";
import type { InventoryResult } from "@campus/shared/events";
import type { PlaceOrderRequest } from "./place_order_request.ts";
import type { OutboxStore } from "@campus/shared/outbox_store";
import { pagesOf, type SqliteDatabase } from "@campus/shared/sqlite";
import { IdempotencyKeys } from "./idempotency_keys.ts";
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
  `CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    item TEXT NOT NULL,
    qty INTEGER NOT NULL,
    student_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PLACED', 'RESERVED', 'FAILED')),
    reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS orders_by_student ON orders (student_id);`,
  `CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    order_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS idempotency_keys_by_expiry ON idempotency_keys (expires_at);`,
  // Only the orders still waiting: the age of the oldest is read at every metrics scrape, and
  // this keeps that read one index step however many orders the table holds.
  `CREATE INDEX IF NOT EXISTS orders_placed ON orders (created_at) WHERE status = 'PLACED'`,
  // How often an order was asked about again, and when it is overdue next (null: not yet
  // asked, overdue OUTCOME_TIMEOUT_MS after created_at).
  `ALTER TABLE orders ADD COLUMN asks INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE orders ADD COLUMN ask_at TEXT;`,
];

/** The order store in a SQLite database. */
export class SqliteOrderStore {
  #insert: StatementSync;
  #byId: StatementSync;
  #finish: StatementSync;
  #insertFinished: StatementSync;
  #oldestPlaced: StatementSync;
  #overdue: StatementSync;
  #asked: StatementSync;
  #keys: IdempotencyKeys;

  private constructor(
    private readonly db: SqliteDatabase,
    private readonly outbox: OutboxStore,
    now: () => number,
  ) {
    const sql = db.db;
    this.#keys = new IdempotencyKeys(sql, now);
    this.#insert = sql.prepare(`INSERT INTO orders
      (order_id, item, qty, student_id, status, created_at, updated_at)
      VALUES (?, ?, ?, ?, 'PLACED', ?, ?)`);
    this.#byId = sql.prepare(`SELECT * FROM orders WHERE order_id = ?`);
    this.#finish = sql.prepare(`UPDATE orders SET status = ?, reason = ?, item = ?, updated_at = ?
      WHERE order_id = ? AND status = 'PLACED'`);
    this.#insertFinished = sql.prepare(`INSERT INTO orders
      (order_id, item, qty, student_id, status, reason, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`);
    this.#oldestPlaced = sql.prepare(
      `SELECT min(created_at) AS at FROM orders WHERE status = 'PLACED'`,
    );
    // Walks the waiting orders oldest first (the orders_placed index), only those.
    this.#overdue = sql.prepare(`SELECT * FROM orders WHERE status = 'PLACED'
      AND ((ask_at IS NULL AND created_at <= ?) OR ask_at <= ?)
      ORDER BY created_at LIMIT ?`);
    this.#asked = sql.prepare(`UPDATE orders SET asks = ?, ask_at = ? WHERE order_id = ?`);
  }

  /**
   * The orders of `db`, its schema brought up to date.
   * @param now the clock of idempotency keys, in ms since the epoch (tests move it)
   */
  static async open(
    db: SqliteDatabase,
    outbox: OutboxStore,
    now: () => number = Date.now,
  ): Promise<SqliteOrderStore> {
    await db.migrate("orders", SCHEMA);
    return new SqliteOrderStore(db, outbox, now);
  }

  /** Stores new orders with their events and keys in one transaction. */
  placeAll(orders: readonly NewOrder[]): Promise<Placement[]> {
    const now = new Date().toISOString();
    return this.db.write(() => {
      this.#keys.pruneExpired();
      return orders.map(({ request, idempotencyKey, traceparent }): Placement => {
        if (idempotencyKey !== undefined) {
          const seen = this.#keys.find(idempotencyKey);
          if (seen) return this.#replay(idempotencyKey, seen.orderId, seen.request, request);
        }
        const order = newOrder(request, now);
        this.#insert.run(order.order_id, order.item, order.qty, order.student_id, now, now);
        this.outbox.insert({ ...orderPlaced(order), traceparent });
        if (idempotencyKey !== undefined) {
          this.#keys.remember(idempotencyKey, request, order.order_id);
        }
        return { kind: "placed", order };
      });
    });
  }

  #replay(
    key: string,
    orderId: string,
    previous: PlaceOrderRequest,
    request: PlaceOrderRequest,
  ): Placement {
    if (!sameRequest(previous, request)) return { kind: "conflict", key, orderId, previous };
    // Orders are never deleted, so the order a key made is always there.
    return { kind: "replayed", order: toOrder(this.#byId.get(orderId)!) };
  }

  /** When the oldest order still `PLACED` was placed (ms since the epoch). */
  oldestPlacedAt(): Promise<number | undefined> {
    return this.db.read(() => {
      const at = this.#oldestPlaced.get()?.at;
      return typeof at === "string" ? Date.parse(at) : undefined;
    });
  }

  /** The order with `orderId`, or undefined. */
  get(orderId: string): Promise<Order | undefined> {
    return this.db.read(() => {
      const row = this.#byId.get(orderId);
      return row ? toOrder(row) : undefined;
    });
  }

  /** The `limit` most recent orders, newest first. */
  latest(limit: number, student_id?: string): Promise<Order[]> {
    return this.db.read(() => {
      const rows = student_id === undefined
        ? this.db.db.prepare(`SELECT * FROM orders ORDER BY rowid DESC LIMIT ?`).all(limit)
        : this.db.db.prepare(
          `SELECT * FROM orders WHERE student_id = ? ORDER BY rowid DESC LIMIT ?`,
        ).all(student_id, limit);
      return rows.map(toOrder);
    });
  }

  /** How many orders stand at each status. */
  statusCounts(): Promise<Record<OrderStatus, number>> {
    return this.db.read(() => {
      const counts = noOrders();
      const rows = this.db.db.prepare(`SELECT status, COUNT(*) AS n FROM orders GROUP BY status`)
        .all();
      for (const row of rows) counts[row.status as OrderStatus] = Number(row.n);
      return counts;
    });
  }

  /** Records oldest first, a batch (one read) at a time. */
  async *batches(query: OrderQuery = {}): AsyncGenerator<Order[]> {
    const { student_id, status, limit } = query;
    const pages = pagesOf(this.db.db, {
      table: "orders",
      columns: "*",
      where: { student_id, status },
      limit,
    });
    try {
      while (true) {
        // Each page is read on its own, between the transactions of the consumers.
        const page = await this.db.read(() => pages.next());
        if (page.done) return;
        yield page.value.map(toOrder);
      }
    } finally {
      pages.return(undefined);
    }
  }

  /** Records an inventory outcome; false when the order was already final. */
  applyResult(result: InventoryResult): Promise<boolean> {
    const { event, outcome } = result;
    const reason = result.outcome === "FAILED" ? result.event.reason : null;
    const now = new Date().toISOString();
    return this.db.write(() => {
      const stored = this.#byId.get(event.order_id);
      if (stored) {
        if (isFinal(stored.status as OrderStatus)) return false;
        const item = itemAfter(String(stored.item), result);
        return this.#finish.run(outcome, reason, item, now, event.order_id).changes > 0;
      }
      return this.#insertFinished.run(
        event.order_id,
        event.lines[0].item,
        event.lines[0].qty,
        event.student_id,
        outcome,
        reason,
        now,
        now,
      ).changes > 0;
    });
  }

  /** Asks again about overdue orders, oldest first. */
  reaskOverdue({ now, timeoutMs, nextAskAfter, limit }: ReaskRequest): Promise<Reask[]> {
    const cutoff = new Date(now - timeoutMs).toISOString();
    return this.db.write(() =>
      this.#overdue.all(cutoff, new Date(now).toISOString(), limit).map((row) => {
        const order = toOrder(row);
        const asks = Number(row.asks) + 1;
        const next = new Date(now + nextAskAfter(asks)).toISOString();
        this.#asked.run(asks, next, order.order_id);
        this.outbox.insert(orderPlaced(order));
        return { order, asks };
      })
    );
  }
}

function toOrder(row: Record<string, unknown>): Order {
  const order: Order = {
    order_id: String(row.order_id),
    item: String(row.item),
    qty: Number(row.qty),
    student_id: String(row.student_id),
    status: row.status as OrderStatus,
    created_at: String(row.created_at),
    updated_at: String(row.updated_at),
  };
  if (row.reason != null) order.reason = String(row.reason);
  return order;
}
