/**
 * The order's rules and events, apart from where orders are kept: what a new order is, the
 * event that announces it, when two requests ask for the same order, and how its status moves
 * (the only moves there are, and the events that announce them).
 * @module
 */
import {
  type Actor,
  envelopeFor,
  type InventoryResult,
  type KitchenStatus,
  type OrderLine,
  type OutgoingEvent,
} from "@campus/shared/events";
import { menuKey } from "@campus/shared/menu";
import type { PlaceOrderRequest } from "./place_order_request.ts";
import { v7 as uuidv7 } from "uuid";

export type { Actor, OrderLine };

/**
 * Where an order stands. Inventory moves it from `PLACED` to `RESERVED` or `FAILED`; a cancel
 * to `CANCELLED`; the kitchen through `PREPARING`, `READY` and `COLLECTED`; the pickup window
 * to `EXPIRED`.
 */
export type OrderStatus =
  | "PLACED"
  | "RESERVED"
  | "FAILED"
  | "CANCELLED"
  | "PREPARING"
  | "READY"
  | "COLLECTED"
  | "EXPIRED";

/**
 * Every status, in the order an order goes through them.
 * @example
 * ```ts
 * import { ORDER_STATUSES } from "./order.ts";
 * ORDER_STATUSES.includes("READY"); // true
 * ```
 */
export const ORDER_STATUSES: readonly OrderStatus[] = [
  "PLACED",
  "RESERVED",
  "FAILED",
  "CANCELLED",
  "PREPARING",
  "READY",
  "COLLECTED",
  "EXPIRED",
];

/**
 * The only moves: from each status, the statuses it may move to. Inventory makes the first two
 * (`RESERVED`, `FAILED`), a cancel `CANCELLED`, staff the kitchen's (and the recall
 * `READY → PREPARING`), the pickup window `EXPIRED`.
 */
export const MOVES: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  PLACED: ["RESERVED", "FAILED", "CANCELLED"],
  RESERVED: ["CANCELLED", "PREPARING"],
  FAILED: [],
  CANCELLED: [],
  PREPARING: ["READY"],
  READY: ["COLLECTED", "PREPARING", "EXPIRED"],
  COLLECTED: [],
  EXPIRED: [],
};

/**
 * What asking an order at `from` to move to `to` does: `move` it; nothing, because it is
 * `already` there (a repeated cancel, a second `READY`); or nothing, because the move is a
 * `conflict` with where it stands.
 * @example
 * ```ts
 * import { decideMove } from "./order.ts";
 * decideMove("RESERVED", "PREPARING"); // "move"
 * decideMove("CANCELLED", "CANCELLED"); // "already"
 * decideMove("PREPARING", "CANCELLED"); // "conflict"
 * ```
 */
export function decideMove(from: OrderStatus, to: OrderStatus): "move" | "already" | "conflict" {
  if (from === to) return "already";
  return MOVES[from].includes(to) ? "move" : "conflict";
}

/**
 * True while an order waits for inventory: an inventory result moves an order only from
 * `PLACED`, so a duplicate or late result never moves it back (nor a cancelled order on).
 * @example
 * ```ts
 * import { awaitsInventory } from "./order.ts";
 * awaitsInventory("PLACED"); // true
 * awaitsInventory("CANCELLED"); // false
 * ```
 */
export function awaitsInventory(status: OrderStatus): boolean {
  return status === "PLACED";
}

/**
 * No orders at any status: the start of a count by status.
 * @example
 * ```ts
 * import { noOrders } from "./order.ts";
 * noOrders().READY; // 0
 * ```
 */
export function noOrders(): Record<OrderStatus, number> {
  return Object.fromEntries(ORDER_STATUSES.map((s) => [s, 0])) as Record<OrderStatus, number>;
}

/** An order as the API shows it. */
export interface Order {
  /** The order's id, a UUID. */
  order_id: string;
  /** What was ordered, in the menu's spelling once inventory answered. */
  lines: OrderLine[];
  /** The item of a one-line order. */
  item?: string;
  /** The quantity of a one-line order. */
  qty?: number;
  /** The student who ordered. */
  student_id: string;
  /** Where the order stands. */
  status: OrderStatus;
  /** Why an order failed, or why it was cancelled when staff said; absent otherwise. */
  reason?: string;
  /** When the order was placed, an ISO time. */
  created_at: string;
  /** When the status last changed. */
  updated_at: string;
  /** When inventory reserved its stock. */
  reserved_at?: string;
  /** When it was last made `READY`: its pickup window starts then. */
  ready_at?: string;
  /** Who cancelled it. */
  cancelled_by?: Actor;
  /** When inventory said what a cancelled order held is back in stock. */
  stock_released_at?: string;
}

/**
 * The lines of an order with `item` and `qty` beside them when there is one line, as every
 * order shows them.
 * @example
 * ```ts
 * import { withLines } from "./order.ts";
 * withLines([{ item: "Tea", qty: 1 }]); // { lines: [...], item: "Tea", qty: 1 }
 * ```
 */
export function withLines(lines: OrderLine[]): Pick<Order, "lines" | "item" | "qty"> {
  return lines.length === 1 ? { lines, item: lines[0].item, qty: lines[0].qty } : { lines };
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

/**
 * An order asked about again, and how often it has been so far (this time included): an order
 * still `PLACED` (a new `OrderPlaced`), or one `CANCELLED` whose stock inventory has not said is
 * back (a new `OrderCancelled`).
 */
export interface Reask {
  /** The order, still `PLACED`, or `CANCELLED` without `stock_released_at`. */
  order: Order;
  /** How often it was asked about again, this time included. */
  asks: number;
}

/**
 * What hearing `inventory.released` did: recorded the stock of a cancelled order back
 * (`released`); or nothing, because that was recorded before (`already`), the order is not
 * `CANCELLED` (`not_cancelled`: an `order.cancelled` published by hand), or it is unknown
 * (`missing`).
 */
export type ReleaseOutcome =
  | { kind: "released" }
  | { kind: "already" }
  | { kind: "not_cancelled"; status: OrderStatus }
  | { kind: "missing" };

/** A status a move asks for: a cancel, or one of the kitchen's steps. */
export type MoveTarget = "CANCELLED" | Exclude<KitchenStatus, "EXPIRED">;

/** A move asked of one order. */
export interface MoveRequest {
  /** The order. */
  orderId: string;
  /** Where it should go. */
  to: MoveTarget;
  /** Who asked: recorded as `cancelled_by` on a cancel. */
  by: Actor;
  /** Why, on a cancel (staff may say). */
  reason?: string;
  /** W3C trace context of the request, kept with the event. */
  traceparent?: string;
}

/**
 * What a move did: `moved` the order (its event is in the outbox, committed with it); left it
 * as it was because it was `already` there; refused it as a `conflict` with where it stands; or
 * found no such order (`missing`).
 */
export type MoveOutcome =
  | { kind: "moved"; order: Order; previous: Order }
  | { kind: "already"; order: Order }
  | { kind: "conflict"; order: Order }
  | { kind: "missing" };

/**
 * The order `order` becomes by the move `request` at `now`: its status, and what the move
 * records (`cancelled_by` and the reason of a cancel, `ready_at` of a `READY`).
 * @example
 * ```ts
 * import { moved, newOrder } from "./order.ts";
 * const order = newOrder({ student_id: "S1", lines: [{ item: "Tea", qty: 1 }] }, "2026-01-05T12:00:00.000Z");
 * moved(order, { to: "CANCELLED", by: "student" }, "2026-01-05T12:01:00.000Z").status; // "CANCELLED"
 * ```
 */
export function moved(
  order: Order,
  request: Pick<MoveRequest, "to" | "by" | "reason">,
  now: string,
): Order {
  const next: Order = { ...order, status: request.to, updated_at: now };
  if (request.to === "CANCELLED") {
    next.cancelled_by = request.by;
    if (request.reason !== undefined) next.reason = request.reason;
  }
  if (request.to === "READY") next.ready_at = now;
  return next;
}

/**
 * A new order id: a UUID whose first bits are the time it was made (version 7), so that ids made
 * together sort together. Every store indexes orders by id, in the order, inventory and
 * notification services alike: with random ids each order's entry lands on a page of its own,
 * and each commit writes as many index pages as it holds orders; with ids in time order the
 * entries of a batch share the last page or two.
 */
export function newOrderId(): string {
  return uuidv7();
}

/**
 * A new order, `PLACED` at `now`, with a new id.
 * @example
 * ```ts
 * import { newOrder } from "./order.ts";
 * const order = newOrder({ student_id: "S1", lines: [{ item: "Coffee", qty: 2 }] }, "2026-01-05T12:00:00.000Z");
 * order.status; // "PLACED"
 * order.item; // "Coffee" (a one-line order)
 * ```
 */
export function newOrder(request: PlaceOrderRequest, now: string): Order {
  return {
    order_id: newOrderId(),
    ...withLines(request.lines.map(({ item, qty }) => ({ item, qty }))),
    student_id: request.student_id,
    status: "PLACED",
    created_at: now,
    updated_at: now,
  };
}

/** The order as an event body carries it: id, student, lines (and a one-line order flat). */
function bodyOf(order: Order) {
  return { order_id: order.order_id, student_id: order.student_id, ...withLines(order.lines) };
}

/**
 * The event that announces a new order (and asks inventory again about a late one).
 * @example
 * ```ts
 * import { newOrder, orderPlaced } from "./order.ts";
 * const order = newOrder({ student_id: "S1", lines: [{ item: "Coffee", qty: 1 }] }, new Date().toISOString());
 * orderPlaced(order).type; // "OrderPlaced"
 * ```
 */
export function orderPlaced(order: Order): OutgoingEvent {
  return envelopeFor("OrderPlaced", bodyOf(order));
}

/**
 * The event of a cancel: inventory gives back what the order held, or makes its pending
 * decision take nothing. `previous` is where the order stood (`PLACED` or `RESERVED`).
 * @example
 * ```ts
 * import { newOrder, orderCancelled } from "./order.ts";
 * const order = newOrder({ student_id: "S1", lines: [{ item: "Tea", qty: 1 }] }, new Date().toISOString());
 * orderCancelled({ ...order, status: "CANCELLED", cancelled_by: "student" }, "PLACED").routingKey; // "order.cancelled"
 * ```
 */
export function orderCancelled(order: Order, previous: "PLACED" | "RESERVED"): OutgoingEvent {
  const body = { ...bodyOf(order), cancelled_by: order.cancelled_by ?? "student", previous };
  return envelopeFor(
    "OrderCancelled",
    order.reason === undefined ? body : { ...body, reason: order.reason },
  );
}

/**
 * Where a cancelled order stood before its cancel: `RESERVED` if inventory had reserved it (it
 * has `reserved_at`), else `PLACED`. What an `OrderCancelled` sent again says.
 * @example
 * ```ts
 * import { cancelledFrom, newOrder } from "./order.ts";
 * const order = newOrder({ student_id: "S1", lines: [{ item: "Tea", qty: 1 }] }, new Date().toISOString());
 * cancelledFrom({ ...order, status: "CANCELLED" }); // "PLACED"
 * cancelledFrom({ ...order, status: "CANCELLED", reserved_at: order.created_at }); // "RESERVED"
 * ```
 */
export function cancelledFrom(order: Order): "PLACED" | "RESERVED" {
  return order.reserved_at === undefined ? "PLACED" : "RESERVED";
}

/**
 * The event of a kitchen move or an expiry: the order now at `order.status`, moved from
 * `previous` at `order.updated_at`.
 * @example
 * ```ts
 * import { newOrder, orderStatusChanged } from "./order.ts";
 * const order = newOrder({ student_id: "S1", lines: [{ item: "Tea", qty: 1 }] }, new Date().toISOString());
 * orderStatusChanged({ ...order, status: "PREPARING" }, "RESERVED").body.status; // "PREPARING"
 * ```
 */
export function orderStatusChanged(order: Order, previous: OrderStatus): OutgoingEvent {
  return envelopeFor("OrderStatusChanged", {
    ...bodyOf(order),
    status: order.status as KitchenStatus,
    previous: previous as "RESERVED" | KitchenStatus,
    changed_at: order.updated_at,
  });
}

/**
 * The event a move publishes: `OrderCancelled` for a cancel, `OrderStatusChanged` otherwise.
 * @example
 * ```ts
 * import { moveEvent, newOrder } from "./order.ts";
 * const order = newOrder({ student_id: "S1", lines: [{ item: "Tea", qty: 1 }] }, new Date().toISOString());
 * moveEvent({ ...order, status: "CANCELLED", cancelled_by: "staff" }, order).type; // "OrderCancelled"
 * ```
 */
export function moveEvent(order: Order, previous: Order): OutgoingEvent {
  return order.status === "CANCELLED"
    ? orderCancelled(order, previous.status as "PLACED" | "RESERVED")
    : orderStatusChanged(order, previous.status);
}

/**
 * The lines of a request in a fixed order, so that equal requests compare (and print) equal
 * however their lines were listed.
 */
function sortedLines(lines: readonly OrderLine[]): OrderLine[] {
  return lines.map(({ item, qty }) => ({ item, qty }))
    .sort((a, b) => (a.item < b.item ? -1 : a.item > b.item ? 1 : a.qty - b.qty));
}

/**
 * True when two requests ask for the same order: what an idempotency key replays. Lines are
 * compared after merging, in any order.
 * @example
 * ```ts
 * import { sameRequest } from "./order.ts";
 * const a = { student_id: "S1", lines: [{ item: "Tea", qty: 1 }, { item: "Soup", qty: 2 }] };
 * sameRequest(a, { ...a, lines: [...a.lines].reverse() }); // true
 * sameRequest(a, { ...a, lines: [{ item: "Tea", qty: 1 }] }); // false
 * ```
 */
export function sameRequest(a: PlaceOrderRequest, b: PlaceOrderRequest): boolean {
  return a.student_id === b.student_id &&
    JSON.stringify(sortedLines(a.lines)) === JSON.stringify(sortedLines(b.lines));
}

/**
 * The lines an order keeps once `result` is in: each line takes the result's spelling of the
 * same item ("coffee" becomes "Coffee"), never another item.
 * @example
 * ```ts
 * import { linesAfter } from "./order.ts";
 * const event = { order_id: "o1", student_id: "S1", lines: [{ item: "Coffee", qty: 1 }] };
 * linesAfter([{ item: "coffee", qty: 1 }], { outcome: "RESERVED", event }); // [{ item: "Coffee", qty: 1 }]
 * linesAfter([{ item: "tea", qty: 1 }], { outcome: "RESERVED", event }); // [{ item: "tea", qty: 1 }]
 * ```
 */
export function linesAfter(stored: readonly OrderLine[], result: InventoryResult): OrderLine[] {
  const spelling = new Map(result.event.lines.map((line) => [menuKey(line.item), line.item]));
  return stored.map(({ item, qty }) => ({ item: spelling.get(menuKey(item)) ?? item, qty }));
}

/**
 * Why a release changed nothing, given the order as it stands (undefined when unknown).
 * @example
 * ```ts
 * import { newOrder, releaseRefused } from "./order.ts";
 * const order = newOrder({ student_id: "S1", lines: [{ item: "Tea", qty: 1 }] }, new Date().toISOString());
 * releaseRefused(order); // { kind: "not_cancelled", status: "PLACED" }
 * releaseRefused(undefined); // { kind: "missing" }
 * ```
 */
export function releaseRefused(
  order: Order | undefined,
): Exclude<ReleaseOutcome, { kind: "released" }> {
  if (!order) return { kind: "missing" };
  if (order.status !== "CANCELLED") return { kind: "not_cancelled", status: order.status };
  return { kind: "already" };
}
