/**
 * The order's rules and events, apart from where orders are kept: what a new order is, the
 * event that announces it, when two requests ask for the same order, and how its status moves.
 * @module
 */
import { envelopeFor, type InventoryResult, type OutgoingEvent } from "@campus/shared/events";
import { menuKey } from "@campus/shared/menu";
import type { PlaceOrderRequest } from "./place_order_request.ts";

/** Where an order stands. `RESERVED` and `FAILED` are final. */
export type OrderStatus = "PLACED" | "RESERVED" | "FAILED";

/**
 * Every status, in the order an order goes through them.
 * @example
 * ```ts
 * import { ORDER_STATUSES } from "./order.ts";
 * ORDER_STATUSES.includes("RESERVED"); // true
 * ```
 */
export const ORDER_STATUSES: readonly OrderStatus[] = ["PLACED", "RESERVED", "FAILED"];

/**
 * True for a status an order never leaves: an inventory result moves an order only from
 * `PLACED`, so a duplicate or late result never moves it back.
 * @example
 * ```ts
 * import { isFinal } from "./order.ts";
 * isFinal("PLACED"); // false
 * isFinal("FAILED"); // true
 * ```
 */
export function isFinal(status: OrderStatus): boolean {
  return status !== "PLACED";
}

/**
 * No orders at any status: the start of a count by status.
 * @example
 * ```ts
 * import { noOrders } from "./order.ts";
 * noOrders(); // { PLACED: 0, RESERVED: 0, FAILED: 0 }
 * ```
 */
export function noOrders(): Record<OrderStatus, number> {
  return { PLACED: 0, RESERVED: 0, FAILED: 0 };
}

/** An order as the API shows it. */
export interface Order {
  /** The order's id, a UUID. */
  order_id: string;
  /** The item ordered, in the menu's spelling once inventory answered. */
  item: string;
  /** How many of the item. */
  qty: number;
  /** The student who ordered. */
  student_id: string;
  /** Where the order stands. */
  status: OrderStatus;
  /** Why an order failed; absent otherwise. */
  reason?: string;
  /** When the order was placed, an ISO time. */
  created_at: string;
  /** When the status last changed. */
  updated_at: string;
}

/** Filters of a listing of orders. */
export interface OrderQuery {
  /** Only this student's orders. */
  student_id?: string;
  /** Only orders at this status. */
  status?: OrderStatus;
  /** At most this many orders. */
  limit?: number;
}

/** A new order as `POST /order` hands it over. */
export interface NewOrder {
  /** What the student asked for. */
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

/** Which overdue orders to ask about again, and when to ask next. */
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
  /** The order, still `PLACED`. */
  order: Order;
  /** How often it was asked about again, this time included. */
  asks: number;
}

/**
 * A new order, `PLACED` at `now`, with a new id.
 * @example
 * ```ts
 * import { newOrder } from "./order.ts";
 * const order = newOrder({ item: "Coffee", qty: 2, student_id: "S1" }, "2026-01-05T12:00:00.000Z");
 * order.status; // "PLACED"
 * ```
 */
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

/**
 * The event that announces a new order (and asks inventory again about a late one).
 * @example
 * ```ts
 * import { newOrder, orderPlaced } from "./order.ts";
 * const order = newOrder({ item: "Coffee", qty: 1, student_id: "S1" }, new Date().toISOString());
 * orderPlaced(order).type; // "OrderPlaced"
 * ```
 */
export function orderPlaced(order: Order): OutgoingEvent {
  const { order_id, item, qty, student_id } = order;
  return envelopeFor("OrderPlaced", { order_id, student_id, lines: [{ item, qty }], item, qty });
}

/**
 * True when two requests ask for the same order: what an idempotency key replays.
 * @example
 * ```ts
 * import { sameRequest } from "./order.ts";
 * const a = { item: "Tea", qty: 1, student_id: "S1" };
 * sameRequest(a, { ...a }); // true
 * sameRequest(a, { ...a, qty: 2 }); // false
 * ```
 */
export function sameRequest(a: PlaceOrderRequest, b: PlaceOrderRequest): boolean {
  return a.item === b.item && a.qty === b.qty && a.student_id === b.student_id;
}

/**
 * The item an order keeps once `result` is in: the result's spelling of the same item, never
 * another item.
 * @example
 * ```ts
 * import { itemAfter } from "./order.ts";
 * const event = { order_id: "o1", student_id: "S1", lines: [{ item: "Coffee", qty: 1 }] };
 * itemAfter("coffee", { outcome: "RESERVED", event }); // "Coffee"
 * itemAfter("tea", { outcome: "RESERVED", event }); // "tea"
 * ```
 */
export function itemAfter(stored: string, result: InventoryResult): string {
  const item = result.event.lines[0].item;
  return menuKey(stored) === menuKey(item) ? item : stored;
}
