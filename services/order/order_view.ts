/**
 * An order as the pages show it: the stored order, plus the message the student is sent once
 * it is final, in the notification service's own words.
 * @module
 */
import type { InventoryResult } from "@campus/shared/events";
import { notificationMessage } from "@campus/shared/notification_message";
import { type Order, withLines } from "./order.ts";

/** An order with its notification message, once final. */
export type OrderView = Omit<Order, "created_at" | "updated_at"> & {
  created_at?: string;
  updated_at?: string;
  message?: string;
};

/** A stored order with its message. */
export function viewOfOrder(order: Order): OrderView {
  const { order_id, student_id } = order;
  const event = { order_id, student_id, ...withLines(order.lines) };
  if (order.status === "RESERVED") {
    return { ...order, message: notificationMessage({ outcome: "RESERVED", event }) };
  }
  if (order.status === "FAILED") {
    const reason = order.reason ?? "unknown reason";
    return {
      ...order,
      message: notificationMessage({ outcome: "FAILED", event: { ...event, reason } }),
    };
  }
  return { ...order };
}

/** The order an inventory result makes final, with its message. */
export function viewOfResult(result: InventoryResult): OrderView {
  const { order_id, student_id } = result.event;
  const lines = result.event.lines.map(({ item, qty }) => ({ item, qty }));
  const view: OrderView = { order_id, ...withLines(lines), student_id, status: result.outcome };
  if (result.outcome === "FAILED") view.reason = result.event.reason;
  view.message = notificationMessage(result);
  return view;
}
