/**
 * An order as the pages show it: the stored order, plus the message its student is sent about
 * its current status, in the notification service's own words.
 * @module
 */
import type { InventoryResult } from "@campus/shared/events";
import {
  isNotifiedStatus,
  type Notice,
  noticeOfResult,
  notificationMessage,
} from "@campus/shared/notification_message";
import { type Order, withLines } from "./order.ts";

/** An order with the message of its status, when its student is told of that status. */
export type OrderView = Omit<Order, "created_at" | "updated_at"> & {
  created_at?: string;
  updated_at?: string;
  message?: string;
};

/** A stored order with the message of its current status. */
export function viewOfOrder(order: Order): OrderView {
  if (!isNotifiedStatus(order.status)) return { ...order };
  const { order_id, student_id, lines, reason, cancelled_by } = order;
  const notice: Notice = { status: order.status, order_id, student_id, lines, reason };
  // Who cancelled is part of a cancel's words, as the notification service records them.
  if (order.status === "CANCELLED") notice.cancelled_by = cancelled_by;
  return { ...order, message: notificationMessage(notice) };
}

/** The order an inventory result makes final, with its message. */
export function viewOfResult(result: InventoryResult): OrderView {
  const { order_id, student_id } = result.event;
  const lines = result.event.lines.map(({ item, qty }) => ({ item, qty }));
  const view: OrderView = { order_id, ...withLines(lines), student_id, status: result.outcome };
  if (result.outcome === "FAILED") view.reason = result.event.reason;
  view.message = notificationMessage(noticeOfResult(result));
  return view;
}
