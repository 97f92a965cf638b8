/**
 * What an event heard on the replica's feed says about an order, as the pages show it: an
 * inventory result, a kitchen move or expiry (`order.status_changed`), or a cancel
 * (`order.cancelled`), whichever replica made it.
 * @module
 */
import {
  decodeEvent,
  decodeInventoryResult,
  events,
  type OrderPlaced,
} from "@campus/shared/events";
import type { FeedEvent } from "@campus/shared/amqp_feed";
import { isNotifiedStatus, notificationMessage } from "@campus/shared/notification_message";
import { type OrderView, viewOfResult } from "../order_view.ts";

/**
 * The order view an event of the feed carries. A bad body throws `InvalidMessage`: its work
 * queue dead-letters it with the reason, and the pages just do not show it.
 * @example
 * ```ts
 * import { viewOfFeedEvent } from "./feed_view.ts";
 * const view = viewOfFeedEvent({
 *   routingKey: "order.status_changed",
 *   body: {
 *     order_id: "o1",
 *     student_id: "S1",
 *     lines: [{ item: "Tea", qty: 1 }],
 *     status: "READY",
 *     previous: "PREPARING",
 *     changed_at: "2026-01-05T12:00:00.000Z",
 *   },
 * });
 * view.status; // "READY"
 * ```
 */
export function viewOfFeedEvent({ routingKey, body }: FeedEvent): OrderView {
  if (routingKey === events.OrderStatusChanged.routingKey) {
    const event = decodeEvent("OrderStatusChanged", body);
    const view: OrderView = {
      ...orderOf(event),
      status: event.status,
      // The time of the move orders it among others, so a recall (READY back to PREPARING)
      // is told from a late copy of the earlier move.
      updated_at: event.changed_at,
    };
    if (event.status === "READY") view.ready_at = event.changed_at;
    return withMessage(view);
  }
  if (routingKey === events.OrderCancelled.routingKey) {
    const event = decodeEvent("OrderCancelled", body);
    const view: OrderView = {
      ...orderOf(event),
      status: "CANCELLED",
      cancelled_by: event.cancelled_by,
    };
    if (event.reason !== undefined) view.reason = event.reason;
    return withMessage(view);
  }
  return viewOfResult(decodeInventoryResult(routingKey, body));
}

/**
 * The view with the message its student is sent about its status, when they are told of it: the
 * page shows the very words the notification service records.
 */
function withMessage(view: OrderView): OrderView {
  if (!isNotifiedStatus(view.status)) return view;
  const { status, order_id, student_id, lines, reason, cancelled_by } = view;
  const message = notificationMessage({
    status,
    order_id,
    student_id,
    lines,
    reason,
    cancelled_by,
  });
  return { ...view, message };
}

/** The order an event is about: its id, student and lines (and the one line flat). */
function orderOf(event: OrderPlaced): Pick<OrderView, "order_id" | "student_id" | "lines"> {
  const { order_id, student_id, lines, item, qty } = event;
  return item !== undefined && qty !== undefined
    ? { order_id, student_id, lines, item, qty } as Pick<
      OrderView,
      "order_id" | "student_id" | "lines"
    >
    : { order_id, student_id, lines };
}
