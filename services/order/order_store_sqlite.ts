/**
 * Orders in SQLite. One process owns the file, so a group of orders, their events and their
 * idempotency keys are written by a few synchronous statements in one transaction.
 * @module
 */
import type { StatementSync } from "node:sqlite";
import type { InventoryReleased, InventoryResult } from "@campus/shared/events";
import type { PlaceOrderRequest } from "./place_order_request.ts";
import type { OutboxStore } from "@campus/shared/outbox_store";
import { pagesOf, type SqliteDatabase } from "@campus/shared/sqlite";
import { IdempotencyKeys } from "./idempotency_keys.ts";
import {
  awaitsInventory,
  cancelledFrom,
  decideMove,
  linesAfter,
  moved,
  moveEvent,
  type MoveOutcome,
  type MoveRequest,
  type NewOrder,
  newOrder,
  noOrders,
  type Order,
  orderCancelled,
  type OrderLine,
  orderPlaced,
  type OrderQuery,
  type OrderStatus,
  orderStatusChanged,
  type Placement,
  type Reask,
  type ReaskRequest,
  type ReleaseOutcome,
  releaseRefused,
  sameRequest,
  withLines,
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
  // The kitchen: every status, the lines of a cart (JSON; null in rows from before carts, whose
  // one line is item and qty) and when each step happened. SQLite cannot change a CHECK, so the
  // table is made again, keeping each row's rowid (the order of the listings). item and qty
  // keep the first line, so a row always reads as an order of at least one line.
  `CREATE TABLE orders_kitchen (
    order_id TEXT PRIMARY KEY,
    item TEXT NOT NULL,
    qty INTEGER NOT NULL,
    student_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PLACED', 'RESERVED', 'FAILED', 'CANCELLED',
      'PREPARING', 'READY', 'COLLECTED', 'EXPIRED')),
    reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    asks INTEGER NOT NULL DEFAULT 0,
    ask_at TEXT,
    lines TEXT,
    reserved_at TEXT,
    ready_at TEXT,
    cancelled_by TEXT CHECK (cancelled_by IN ('student', 'staff')),
    stock_released_at TEXT
  );
  INSERT INTO orders_kitchen (rowid, order_id, item, qty, student_id, status, reason, created_at,
      updated_at, asks, ask_at)
    SELECT rowid, order_id, item, qty, student_id, status, reason, created_at, updated_at, asks,
      ask_at FROM orders ORDER BY rowid;
  DROP TABLE orders;
  ALTER TABLE orders_kitchen RENAME TO orders;
  CREATE INDEX orders_by_student ON orders (student_id);
  CREATE INDEX orders_placed ON orders (created_at) WHERE status = 'PLACED';
  -- Only the orders waiting to be collected: the expiry sweep walks these, oldest first.
  CREATE INDEX orders_ready ON orders (ready_at) WHERE status = 'READY';`,
  // How often inventory was asked again to give back a cancelled order's stock, and when next
  // (null: not yet, overdue OUTCOME_TIMEOUT_MS after the cancel, its updated_at). The index
  // holds only the cancelled orders still waiting for their release.
  `ALTER TABLE orders ADD COLUMN release_asks INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE orders ADD COLUMN release_ask_at TEXT;
  CREATE INDEX orders_unreleased ON orders (updated_at)
    WHERE status = 'CANCELLED' AND stock_released_at IS NULL;`,
];

/** The order store in a SQLite database. */
export class SqliteOrderStore {
  #insert: StatementSync;
  #byId: StatementSync;
  #awaiting: StatementSync;
  #finish: StatementSync;
  #insertFinished: StatementSync;
  #oldestPlaced: StatementSync;
  #overdue: StatementSync;
  #asked: StatementSync;
  #unreleased: StatementSync;
  #releaseAsked: StatementSync;
  #move: StatementSync;
  #released: StatementSync;
  #ready: StatementSync;
  #expire: StatementSync;
  #keys: IdempotencyKeys;

  private constructor(
    private readonly db: SqliteDatabase,
    private readonly outbox: OutboxStore,
    now: () => number,
  ) {
    const sql = db.db;
    this.#keys = new IdempotencyKeys(sql, now);
    this.#insert = sql.prepare(`INSERT INTO orders
      (order_id, item, qty, lines, student_id, status, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, 'PLACED', ?, ?)`);
    this.#byId = sql.prepare(`SELECT * FROM orders WHERE order_id = ?`);
    // What a result needs of its order, no more: read for every order, it is the hot path.
    this.#awaiting = sql.prepare(`SELECT status, item, qty, lines FROM orders WHERE order_id = ?`);
    this.#finish = sql.prepare(`UPDATE orders SET status = ?, reason = ?, item = ?, lines = ?,
        reserved_at = ?, updated_at = ?
      WHERE order_id = ? AND status = 'PLACED'`);
    this.#insertFinished = sql.prepare(`INSERT INTO orders
      (order_id, item, qty, lines, student_id, status, reason, created_at, updated_at, reserved_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`);
    this.#oldestPlaced = sql.prepare(
      `SELECT min(created_at) AS at FROM orders WHERE status = 'PLACED'`,
    );
    // Walks the waiting orders oldest first (the orders_placed index), only those.
    this.#overdue = sql.prepare(`SELECT * FROM orders WHERE status = 'PLACED'
      AND ((ask_at IS NULL AND created_at <= ?) OR ask_at <= ?)
      ORDER BY created_at LIMIT ?`);
    this.#asked = sql.prepare(`UPDATE orders SET asks = ?, ask_at = ? WHERE order_id = ?`);
    // Walks the cancelled orders still waiting for their release oldest first (orders_unreleased).
    this.#unreleased = sql.prepare(`SELECT * FROM orders
      WHERE status = 'CANCELLED' AND stock_released_at IS NULL
        AND ((release_ask_at IS NULL AND updated_at <= ?) OR release_ask_at <= ?)
      ORDER BY updated_at LIMIT ?`);
    this.#releaseAsked = sql.prepare(
      `UPDATE orders SET release_asks = ?, release_ask_at = ? WHERE order_id = ?`,
    );
    this.#move = sql.prepare(`UPDATE orders SET status = ?, reason = ?, cancelled_by = ?,
        ready_at = ?, updated_at = ?
      WHERE order_id = ? AND status = ?`);
    this.#released = sql.prepare(`UPDATE orders SET stock_released_at = ?
      WHERE order_id = ? AND status = 'CANCELLED' AND stock_released_at IS NULL`);
    // Walks the orders waiting to be collected oldest first (the orders_ready index), only those.
    this.#ready = sql.prepare(`SELECT * FROM orders WHERE status = 'READY' AND ready_at <= ?
      ORDER BY ready_at LIMIT ?`);
    this.#expire = sql.prepare(`UPDATE orders SET status = 'EXPIRED', updated_at = ?
      WHERE order_id = ? AND status = 'READY'`);
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
        const [first] = order.lines;
        this.#insert.run(
          order.order_id,
          first.item,
          first.qty,
          JSON.stringify(order.lines),
          order.student_id,
          now,
          now,
        );
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

  /** Records an inventory outcome; false when the order no longer waited for one. */
  applyResult(result: InventoryResult): Promise<boolean> {
    const { event, outcome } = result;
    const reason = result.outcome === "FAILED" ? result.event.reason : null;
    const now = new Date().toISOString();
    const reservedAt = outcome === "RESERVED" ? now : null;
    return this.db.write(() => {
      const stored = this.#awaiting.get(event.order_id);
      if (stored) {
        if (!awaitsInventory(stored.status as OrderStatus)) return false;
        const lines = linesAfter(storedLines(stored), result);
        return this.#finish.run(
          outcome,
          reason,
          lines[0].item,
          JSON.stringify(lines),
          reservedAt,
          now,
          event.order_id,
        ).changes > 0;
      }
      const lines = event.lines.map(({ item, qty }) => ({ item, qty }));
      return this.#insertFinished.run(
        event.order_id,
        lines[0].item,
        lines[0].qty,
        JSON.stringify(lines),
        event.student_id,
        outcome,
        reason,
        now,
        now,
        reservedAt,
      ).changes > 0;
    });
  }

  /** Readies a batch of results: nothing to do, each is applied in memory already. */
  prepareResults(): Promise<void> {
    return Promise.resolve();
  }

  /** Makes a move with its event, in one transaction; see {@linkcode MoveOutcome}. */
  move(request: MoveRequest): Promise<MoveOutcome> {
    const now = new Date().toISOString();
    return this.db.write((): MoveOutcome => {
      const row = this.#byId.get(request.orderId);
      if (!row) return { kind: "missing" };
      const order = toOrder(row);
      const decision = decideMove(order.status, request.to);
      if (decision !== "move") return { kind: decision, order };
      const next = moved(order, request, now);
      // One process writes the file, and the read above is in this transaction: the condition
      // holds; it is kept so that the statement alone says which move it makes.
      this.#move.run(
        next.status,
        next.reason ?? null,
        next.cancelled_by ?? null,
        next.ready_at ?? null,
        now,
        order.order_id,
        order.status,
      );
      this.outbox.insert({ ...moveEvent(next, order), traceparent: request.traceparent });
      return { kind: "moved", order: next, previous: order };
    });
  }

  /** Records that a cancelled order's stock is back; see {@linkcode ReleaseOutcome}. */
  released(event: InventoryReleased): Promise<ReleaseOutcome> {
    const now = new Date().toISOString();
    return this.db.write(() => {
      if (this.#released.run(now, event.order_id).changes > 0) return { kind: "released" };
      const row = this.#byId.get(event.order_id);
      return releaseRefused(row && toOrder(row));
    });
  }

  /** Expires orders `READY` for longer than `windowMs` at `now`, oldest first, with events. */
  expireOverdue(now: number, windowMs: number, limit: number): Promise<Order[]> {
    const at = new Date(now).toISOString();
    const cutoff = new Date(now - windowMs).toISOString();
    return this.db.write(() =>
      this.#ready.all(cutoff, limit).map((row) => {
        const order = toOrder(row);
        this.#expire.run(at, order.order_id);
        const expired: Order = { ...order, status: "EXPIRED", updated_at: at };
        this.outbox.insert(orderStatusChanged(expired, "READY"));
        return expired;
      })
    );
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

  /** Asks inventory again to release cancelled orders still holding stock, oldest first. */
  reaskUnreleased({ now, timeoutMs, nextAskAfter, limit }: ReaskRequest): Promise<Reask[]> {
    const cutoff = new Date(now - timeoutMs).toISOString();
    return this.db.write(() =>
      this.#unreleased.all(cutoff, new Date(now).toISOString(), limit).map((row) => {
        const order = toOrder(row);
        const asks = Number(row.release_asks) + 1;
        const next = new Date(now + nextAskAfter(asks)).toISOString();
        this.#releaseAsked.run(asks, next, order.order_id);
        this.outbox.insert(orderCancelled(order, cancelledFrom(order)));
        return { order, asks };
      })
    );
  }
}

function toOrder(row: Record<string, unknown>): Order {
  const order: Order = {
    order_id: String(row.order_id),
    ...withLines(storedLines(row)),
    student_id: String(row.student_id),
    status: row.status as OrderStatus,
    created_at: String(row.created_at),
    updated_at: String(row.updated_at),
  };
  if (row.reason != null) order.reason = String(row.reason);
  if (row.reserved_at != null) order.reserved_at = String(row.reserved_at);
  if (row.ready_at != null) order.ready_at = String(row.ready_at);
  if (row.cancelled_by != null) order.cancelled_by = row.cancelled_by as Order["cancelled_by"];
  if (row.stock_released_at != null) order.stock_released_at = String(row.stock_released_at);
  return order;
}

/** The lines of an order's row; rows from before carts hold their one line flat. */
function storedLines(row: Record<string, unknown>): OrderLine[] {
  return row.lines == null
    ? [{ item: String(row.item), qty: Number(row.qty) }]
    : JSON.parse(String(row.lines));
}
