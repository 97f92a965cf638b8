/**
 * What an event tells a student, read from its routing key and body: the notice of an inventory
 * result, of a cancel, or of a kitchen status the student hears of (`READY`, `EXPIRED`). The
 * kitchen's own steps (`PREPARING`, `COLLECTED`) tell the student nothing.
 * @module
 */
import { decodeEvent, decodeInventoryResult, events, InvalidMessage } from "@campus/shared/events";
import { type Notice, noticeOfResult } from "@campus/shared/notification_message";

/** An event as the notification service reads it. */
export interface OrderUpdate {
  /** The order it is about. */
  order_id: string;
  /** The status the order reached. */
  status: string;
  /** What the student is told; absent when the status is news only to the kitchen. */
  notice?: Notice;
}

/**
 * Reads an `inventory.reserved` or `inventory.failed` message (the `inventory_reserved` and
 * `inventory_failed` queues). Throws {@linkcode InvalidMessage} for a body that fails its schema.
 */
export function readInventoryResult(routingKey: string, body: unknown): OrderUpdate {
  const notice = noticeOfResult(decodeInventoryResult(routingKey, body));
  return { order_id: notice.order_id, status: notice.status, notice };
}

/**
 * Reads an `order.cancelled` or `order.status_changed` message (the `order_updates` queue).
 * Throws {@linkcode InvalidMessage} for a body that fails its schema or another routing key.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readOrderUpdate } from "./order_update.ts";
 *
 * const order = { order_id: "o1", student_id: "S1", lines: [{ item: "Tea", qty: 1 }] };
 * const moved = { ...order, previous: "RESERVED", changed_at: "2026-01-01T12:00:00.000Z" };
 * const preparing = readOrderUpdate("order.status_changed", { ...moved, status: "PREPARING" });
 * assert.equal(preparing.notice, undefined);
 * const cancelled = readOrderUpdate("order.cancelled", {
 *   ...order,
 *   cancelled_by: "staff",
 *   reason: "out of milk",
 *   previous: "RESERVED",
 * });
 * assert.equal(cancelled.notice?.status, "CANCELLED");
 * ```
 */
export function readOrderUpdate(routingKey: string, body: unknown): OrderUpdate {
  if (routingKey === events.OrderCancelled.routingKey) {
    const { order_id, student_id, lines, cancelled_by, reason } = decodeEvent(
      "OrderCancelled",
      body,
    );
    const notice: Notice = { status: "CANCELLED", order_id, student_id, lines, cancelled_by };
    if (reason !== undefined) notice.reason = reason;
    return { order_id, status: notice.status, notice };
  }
  if (routingKey === events.OrderStatusChanged.routingKey) {
    const { order_id, student_id, lines, status } = decodeEvent("OrderStatusChanged", body);
    if (status === "READY" || status === "EXPIRED") {
      return { order_id, status, notice: { status, order_id, student_id, lines } };
    }
    return { order_id, status };
  }
  throw new InvalidMessage(`unexpected routing key "${routingKey}" for an order update`);
}
