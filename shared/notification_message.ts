/**
 * The words a student reads about an order's outcome: the notification service records them, and
 * the student page shows the same text as soon as the outcome is known.
 * @module
 */
import type { InventoryResult } from "./messaging/contract.ts";

/**
 * The message for an inventory result: a confirmation, or an apology that names the reason.
 * @example
 * ```ts
 * import { notificationMessage } from "./notification_message.ts";
 * notificationMessage({
 *   outcome: "RESERVED",
 *   event: { order_id: "o1", item: "Coffee", qty: 1, student_id: "S1" },
 * }); // "Hi S1, your order of 1 x Coffee is confirmed (order o1)."
 * ```
 */
export function notificationMessage(result: InventoryResult): string {
  const { student_id, qty, item, order_id } = result.event;
  return result.outcome === "RESERVED"
    ? `Hi ${student_id}, your order of ${qty} x ${item} is confirmed (order ${order_id}).`
    : `Sorry ${student_id}, your order of ${qty} x ${item} could not be completed: ${result.event.reason} (order ${order_id}).`;
}
