/**
 * Orders in the order service's database: the store's interface, and the engine that keeps
 * them. An order and its `OrderPlaced` event are committed together (outbox), as is each move
 * with its event; a status moves only by the moves of `order.ts`, each a conditional update, so
 * replicas sharing the database never both make one; and an idempotency key makes one order however often, and
 * through however many replicas, its request comes. The rules themselves are in `order.ts`.
 * @module
 */
import type { Database } from "@campus/shared/database";
import type { InventoryReleased, InventoryResult } from "@campus/shared/events";
import type { OutboxStore } from "@campus/shared/outbox_store";
import type { PostgresDatabase } from "@campus/shared/postgres";
import type { SqliteDatabase } from "@campus/shared/sqlite";
import type {
  MoveOutcome,
  MoveRequest,
  NewOrder,
  Order,
  OrderQuery,
  OrderStatus,
  Placement,
  Reask,
  ReaskRequest,
  ReleaseOutcome,
} from "./order.ts";

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
   * Records an inventory outcome. Returns false when it changes nothing: the order no longer
   * waited for one (`PLACED`): a duplicate or late result never moves it back, nor a cancelled
   * order on. A `RESERVED` order gets its `reserved_at`. The order takes the menu's spelling
   * of its item from the result ("coffee" becomes "Coffee"), but only a spelling of the same
   * item: a result never turns one item into another. An outcome for an order this service never
   * took (one published by hand) is recorded as a new order with that outcome.
   */
  applyResult(result: InventoryResult): Promise<boolean>;
  /**
   * Readies the current transaction for {@linkcode OrderStore.applyResult} of results about
   * `orderIds` (a batch): where a round trip per result would cost most (PostgreSQL, in a
   * transaction without savepoints), takes and reads their rows at once, in one order for every
   * replica, so that each `applyResult` decides in memory and the batch's moves are written
   * together just before the commit.
   */
  prepareResults(orderIds: readonly string[]): Promise<void>;
  /**
   * Asks again about orders still `PLACED` whose outcome is overdue at `now`, oldest first: a
   * new `OrderPlaced` of each goes into the outbox, and the order's next ask is set
   * `nextAskAfter(asks)` later, in one transaction. Inventory answers a repeated `OrderPlaced`
   * with the decision it recorded, so asking twice costs only a message. Replicas sharing the
   * database, sweeping at once, each take other orders.
   */
  reaskOverdue(request: ReaskRequest): Promise<Reask[]>;
  /**
   * Asks inventory again to give back what cancelled orders hold: each order `CANCELLED` whose
   * stock inventory has not said is back (`stock_released_at`), `timeoutMs` after its cancel and
   * then `nextAskAfter(asks)` after each ask, oldest first, gets a new `OrderCancelled` in the
   * outbox, in one transaction. The first may have been dead-lettered (a database outage past
   * its retries); inventory's cancel is idempotent, so asking twice costs only a message.
   * Replicas sharing the database, sweeping at once, each take other orders.
   */
  reaskUnreleased(request: ReaskRequest): Promise<Reask[]>;
  /**
   * Makes a move (a cancel, a kitchen step) if the rules of `order.ts` allow it from where the
   * order stands, with its event (`OrderCancelled`, `OrderStatusChanged`) in the outbox, in one
   * transaction. The update is conditional on the status it read, and the row is held (on
   * PostgreSQL) to the commit, so two replicas asked at once never both move one order: the
   * second sees the first's move (`already`, or a `conflict`).
   */
  move(request: MoveRequest): Promise<MoveOutcome>;
  /**
   * Records that inventory gave back what a cancelled order held (`stock_released_at`), only on
   * a `CANCELLED` order: a replayed release, one for an order not cancelled (its
   * `order.cancelled` published by hand) or for an unknown order changes nothing.
   */
  released(event: InventoryReleased): Promise<ReleaseOutcome>;
  /**
   * Moves orders `READY` for `windowMs` or longer at `now` (ms since the epoch) to `EXPIRED`,
   * oldest first, at most `limit`, each with its `OrderStatusChanged`, in one transaction; the
   * expired orders. Replicas sweeping at once each take other orders (on PostgreSQL the rows are
   * claimed `FOR UPDATE SKIP LOCKED`), and a move under way (a collect) is never undone.
   */
  expireOverdue(now: number, windowMs: number, limit: number): Promise<Order[]>;
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
  // Only the engine in use is loaded: the PostgreSQL driver stays out of a SQLite service.
  if (db.engine === "postgres") {
    const { PostgresOrderStore } = await import("./order_store_postgres.ts");
    return await PostgresOrderStore.open(db as PostgresDatabase, outbox, options.now);
  }
  const { SqliteOrderStore } = await import("./order_store_sqlite.ts");
  return await SqliteOrderStore.open(db as SqliteDatabase, outbox, options.now);
}
