/**
 * Orders in the order service's database. An order and its `OrderPlaced` event are committed
 * together (outbox), a status only ever moves forward from `PLACED`, and an idempotency key
 * makes one order however often, and through however many replicas, its request comes.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Database } from "@campus/shared/database";
import {
  envelopeFor,
  type InventoryResult,
  type OutgoingEvent,
  type PlaceOrderRequest,
} from "@campus/shared/events";
import { menuKey } from "@campus/shared/menu";
import type { Outbox } from "@campus/shared/outbox";
import type { OutboxStore } from "@campus/shared/outbox_store";
import type { SqliteOutboxStore } from "@campus/shared/outbox_store_sqlite";
import type { PostgresDatabase } from "@campus/shared/postgres";
import { pagesOf, type SqliteDatabase, transaction } from "@campus/shared/sqlite";
import { IdempotencyKeys } from "./idempotency_keys.ts";
import { SqliteOrderStore } from "./order_store_sqlite.ts";
import { PostgresOrderStore } from "./order_store_postgres.ts";

/** Where an order stands. `RESERVED` and `FAILED` are final. */
export type OrderStatus = "PLACED" | "RESERVED" | "FAILED";

/** An order as the API shows it. */
export interface Order {
  order_id: string;
  item: string;
  qty: number;
  student_id: string;
  status: OrderStatus;
  /** Why an order failed; absent otherwise. */
  reason?: string;
  created_at: string;
  /** When the status last changed. */
  updated_at: string;
}

/** Filters of {@linkcode OrderStore.pages}. */
export interface OrderQuery {
  student_id?: string;
  status?: OrderStatus;
  limit?: number;
}

/** A new order as `POST /order` hands it over. */
export interface NewOrder {
  request: PlaceOrderRequest;
  /** The client's `Idempotency-Key`, when it sent one. */
  idempotencyKey?: string;
}

/**
 * What placing an order did: stored a new one; found the order its idempotency key made before
 * from the same request (`replayed`); or found the key used for a different request.
 */
export type Placement =
  | { kind: "placed"; order: Order }
  | { kind: "replayed"; order: Order }
  | { kind: "conflict"; key: string; orderId: string; previous: PlaceOrderRequest };

/** The order service's store. */
export interface OrderStore {
  /**
   * Stores several new orders, each with its `OrderPlaced` event and its idempotency key, in one
   * transaction: one commit for all the orders that arrived together. A key seen before (in an
   * earlier commit, earlier in this group, or by another replica) places nothing: the same
   * request gets the order it made, a different request a conflict.
   */
  placeAll(orders: readonly NewOrder[]): Promise<Placement[]>;
  /** The order with `orderId`, or undefined. */
  get(orderId: string): Promise<Order | undefined>;
  /** Orders in the order they were recorded, optionally filtered, a page at a time. */
  pages(query?: OrderQuery): AsyncGenerator<Order[]>;
  /**
   * Records an inventory outcome. Returns false when it changes nothing: the order was already
   * final (a duplicate or late result never moves it back). The order takes the menu's spelling
   * of its item from the result ("coffee" becomes "Coffee"), but only a spelling of the same
   * item: a result never turns one item into another. An outcome for an order this service never
   * took (one published by hand) is recorded as a new order with that outcome.
   */
  applyResult(result: InventoryResult): Promise<boolean>;
}

/** Options of {@linkcode openOrderStore}. */
export interface OrderStoreOptions {
  /** The clock of idempotency keys, in ms since the epoch (tests move it). */
  now?: () => number;
}

/** The orders of `db`, its schema brought up to date. */
export async function openOrderStore(
  db: Database,
  outbox: OutboxStore,
  options: OrderStoreOptions = {},
): Promise<OrderStore> {
  return db.engine === "postgres"
    ? await PostgresOrderStore.open(db as PostgresDatabase, outbox, options)
    : await SqliteOrderStore.open(db as SqliteDatabase, outbox as SqliteOutboxStore, options);
}

/** A new order, `PLACED` at `now`. */
export function newOrder(request: PlaceOrderRequest, now: string): Order {
  return {
    order_id: crypto.randomUUID(),
    item: request.item,
    qty: request.qty,
    student_id: request.student_id,
    status: "PLACED",
    created_at: now,
    updated_at: now,
  };
}

/** The event that announces a new order. */
export function orderPlaced(order: Order): OutgoingEvent {
  const { order_id, item, qty, student_id } = order;
  return envelopeFor("OrderPlaced", { order_id, item, qty, student_id });
}

/** True when two requests ask for the same order. */
export function sameRequest(a: PlaceOrderRequest, b: PlaceOrderRequest): boolean {
  return a.item === b.item && a.qty === b.qty && a.student_id === b.student_id;
}

/** The item an order keeps once `result` is in: the result's spelling of the same item. */
export function itemAfter(stored: string, result: InventoryResult): string {
  return menuKey(stored) === menuKey(result.event.item) ? result.event.item : stored;
}

/** The order service's store on a SQLite connection, for synchronous handlers. */
export class SyncOrderStore {
  #insert: StatementSync;
  #byId: StatementSync;
  #finish: StatementSync;
  #insertFinished: StatementSync;
  #keys: IdempotencyKeys;

  /** @param now the clock of idempotency keys, in ms since the epoch (tests move it) */
  constructor(
    private readonly db: DatabaseSync,
    private readonly outbox: Outbox,
    now: () => number = Date.now,
  ) {
    this.#keys = new IdempotencyKeys(db, now);
    db.exec(`CREATE TABLE IF NOT EXISTS orders (
      order_id TEXT PRIMARY KEY,
      item TEXT NOT NULL,
      qty INTEGER NOT NULL,
      student_id TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('PLACED', 'RESERVED', 'FAILED')),
      reason TEXT,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS orders_by_student ON orders (student_id);`);
    this.#insert = db.prepare(`INSERT INTO orders
      (order_id, item, qty, student_id, status, created_at, updated_at)
      VALUES (?, ?, ?, ?, 'PLACED', ?, ?)`);
    this.#byId = db.prepare(`SELECT * FROM orders WHERE order_id = ?`);
    this.#finish = db.prepare(`UPDATE orders SET status = ?, reason = ?, item = ?, updated_at = ?
      WHERE order_id = ? AND status = 'PLACED'`);
    this.#insertFinished = db.prepare(`INSERT OR IGNORE INTO orders
      (order_id, item, qty, student_id, status, reason, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  }

  /** Stores a new order and its `OrderPlaced` event in one transaction. */
  place(request: PlaceOrderRequest): Order {
    return (this.placeAll([{ request }])[0] as { order: Order }).order;
  }

  /**
   * Stores several new orders, each with its `OrderPlaced` event and its idempotency key, in one
   * transaction: one commit for all the orders that arrived together. A key seen before (in an
   * earlier commit or earlier in this group) places nothing: the same request gets the order it
   * made, a different request a conflict.
   */
  placeAll(orders: readonly NewOrder[]): Placement[] {
    const now = new Date().toISOString();
    return transaction(this.db, () => {
      this.#keys.pruneExpired();
      return orders.map(({ request, idempotencyKey }): Placement => {
        if (idempotencyKey !== undefined) {
          const seen = this.#keys.find(idempotencyKey);
          if (seen) return this.#replay(idempotencyKey, seen.orderId, seen.request, request);
        }
        const order = this.#insertOrder(request, now);
        if (idempotencyKey !== undefined) {
          this.#keys.remember(idempotencyKey, request, order.order_id);
        }
        return { kind: "placed", order };
      });
    });
  }

  #insertOrder(request: PlaceOrderRequest, now: string): Order {
    const order: Order = {
      order_id: crypto.randomUUID(),
      item: request.item,
      qty: request.qty,
      student_id: request.student_id,
      status: "PLACED",
      created_at: now,
      updated_at: now,
    };
    this.#insert.run(order.order_id, order.item, order.qty, order.student_id, now, now);
    this.outbox.add(envelopeFor("OrderPlaced", {
      order_id: order.order_id,
      item: order.item,
      qty: order.qty,
      student_id: order.student_id,
    }));
    return order;
  }

  #replay(
    key: string,
    orderId: string,
    previous: PlaceOrderRequest,
    request: PlaceOrderRequest,
  ): Placement {
    const same = previous.item === request.item && previous.qty === request.qty &&
      previous.student_id === request.student_id;
    if (!same) return { kind: "conflict", key, orderId, previous };
    // Orders are never deleted, so the order a key made is always there.
    return { kind: "replayed", order: this.get(orderId)! };
  }

  /** The order with `orderId`, or undefined. */
  get(orderId: string): Order | undefined {
    const row = this.#byId.get(orderId);
    return row ? toOrder(row) : undefined;
  }

  /** Orders in the order they were recorded, optionally filtered. */
  list(query: OrderQuery = {}): Order[] {
    return [...this.pages(query)].flat();
  }

  /** Like {@linkcode SyncOrderStore.list}, a page at a time, for listings of any size. */
  *pages(query: OrderQuery = {}): Generator<Order[]> {
    const { student_id, status, limit } = query;
    for (
      const rows of pagesOf(this.db, {
        table: "orders",
        columns: "*",
        where: { student_id, status },
        limit,
      })
    ) yield rows.map(toOrder);
  }

  /**
   * Records an inventory outcome. Returns false when it changes nothing: the order was already
   * final (a duplicate or late result never moves it back). The order takes the menu's spelling
   * of its item from the result ("coffee" becomes "Coffee"), but only a spelling of the same
   * item: a result never turns one item into another. An outcome for an order this service never
   * took (one published by hand) is recorded as a new order with that outcome.
   */
  applyResult(result: InventoryResult): boolean {
    const { event, outcome } = result;
    const reason = result.outcome === "FAILED" ? result.event.reason : null;
    const now = new Date().toISOString();
    return transaction(this.db, () => {
      const stored = this.#byId.get(event.order_id);
      if (stored) {
        if (stored.status !== "PLACED") return false;
        const item = menuKey(String(stored.item)) === menuKey(event.item)
          ? event.item
          : String(stored.item);
        return this.#finish.run(outcome, reason, item, now, event.order_id).changes > 0;
      }
      return this.#insertFinished.run(
        event.order_id,
        event.item,
        event.qty,
        event.student_id,
        outcome,
        reason,
        now,
        now,
      ).changes > 0;
    });
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
