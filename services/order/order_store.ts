/**
 * Orders in the order service's database: the store's interface, and the engine that keeps
 * them. An order and its `OrderPlaced` event are committed together (outbox), a status only
 * ever moves forward from `PLACED`, and an idempotency key makes one order however often, and
 * through however many replicas, its request comes. The rules themselves are in `order.ts`.
 * @module
 */
import type { Database } from "@campus/shared/database";
import type { InventoryResult } from "@campus/shared/events";
import type { OutboxStore } from "@campus/shared/outbox_store";
import type { PostgresDatabase } from "@campus/shared/postgres";
import type { SqliteDatabase } from "@campus/shared/sqlite";
import type {
  NewOrder,
  Order,
  OrderQuery,
  OrderStatus,
  Placement,
  Reask,
  ReaskRequest,
} from "./order.ts";
import { SqliteOrderStore } from "./order_store_sqlite.ts";
import { PostgresOrderStore } from "./order_store_postgres.ts";

/** The order service's store. */
export interface OrderStore {
  /**
   * Stores several new orders, each with its `OrderPlaced` event and its idempotency key, in one
   * transaction: one commit for all the orders that arrived together. A key seen before (in an
   * earlier commit, earlier in this group, or by another replica) places nothing: the same
   * request gets the order it made, a different request a conflict.
   */
  placeAll(orders: readonly NewOrder[]): Promise<Placement[]>;
  /** When the oldest order still `PLACED` was placed (ms since the epoch); undefined if none. */
  oldestPlacedAt(): Promise<number | undefined>;
  /** The order with `orderId`, or undefined. */
  get(orderId: string): Promise<Order | undefined>;
  /**
   * Orders in the order they were recorded, optionally filtered, a batch (one read) at a time:
   * pagination, so that any number of orders streams in bounded memory.
   */
  batches(query?: OrderQuery): AsyncGenerator<Order[]>;
  /** The `limit` most recent orders, newest first, optionally of one student. */
  latest(limit: number, student_id?: string): Promise<Order[]>;
  /** How many orders stand at each status. */
  statusCounts(): Promise<Record<OrderStatus, number>>;
  /**
   * Records an inventory outcome. Returns false when it changes nothing: the order was already
   * final (a duplicate or late result never moves it back). The order takes the menu's spelling
   * of its item from the result ("coffee" becomes "Coffee"), but only a spelling of the same
   * item: a result never turns one item into another. An outcome for an order this service never
   * took (one published by hand) is recorded as a new order with that outcome.
   */
  applyResult(result: InventoryResult): Promise<boolean>;
  /**
   * Asks again about orders still `PLACED` whose outcome is overdue at `now`, oldest first: a
   * new `OrderPlaced` of each goes into the outbox, and the order's next ask is set
   * `nextAskAfter(asks)` later, in one transaction. Inventory answers a repeated `OrderPlaced`
   * with the decision it recorded, so asking twice costs only a message. Replicas sharing the
   * database, sweeping at once, each take other orders.
   */
  reaskOverdue(request: ReaskRequest): Promise<Reask[]>;
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
    ? await PostgresOrderStore.open(db as PostgresDatabase, outbox, options.now)
    : await SqliteOrderStore.open(db as SqliteDatabase, outbox, options.now);
}
