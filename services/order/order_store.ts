/**
 * Orders in the order service's database. An order and its `OrderPlaced` event are committed
 * together (outbox), a status only ever moves forward from `PLACED`, and an idempotency key
 * makes one order however often, and through however many replicas, its request comes.
 * @module
 */
import type { Database } from "@campus/shared/database";
import { envelopeFor, type InventoryResult, type OutgoingEvent } from "@campus/shared/events";
import type { PlaceOrderRequest } from "./place_order_request.ts";
import { menuKey } from "@campus/shared/menu";
import type { OutboxStore } from "@campus/shared/outbox_store";
import type { SqliteOutboxStore } from "@campus/shared/outbox_store_sqlite";
import type { PostgresDatabase } from "@campus/shared/postgres";
import type { SqliteDatabase } from "@campus/shared/sqlite";
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
  /**
   * W3C trace context of the request (with tracing on): orders committed together each keep
   * their own request's trace in the outbox.
   */
  traceparent?: string;
}

/**
 * What placing an order did: stored a new one; found the order its idempotency key made before
 * from the same request (`replayed`); or found the key used for a different request.
 */
export type Placement =
  | { kind: "placed"; order: Order }
  | { kind: "replayed"; order: Order }
  | { kind: "conflict"; key: string; orderId: string; previous: PlaceOrderRequest };

/** What {@linkcode OrderStore.reaskOverdue} is to do. */
export interface ReaskRequest {
  /** The time of the sweep, in ms since the epoch. */
  now: number;
  /** An order not yet asked about again is overdue this long after it was placed. */
  timeoutMs: number;
  /** How long after its `asks`-th ask an order is overdue again, in ms. */
  nextAskAfter(asks: number): number;
  /** At most this many orders in one call. */
  limit: number;
}

/** An order asked about again, and how often it has been so far (this time included). */
export interface Reask {
  order: Order;
  asks: number;
}

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
  /** Orders in the order they were recorded, optionally filtered, a page at a time. */
  pages(query?: OrderQuery): AsyncGenerator<Order[]>;
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
