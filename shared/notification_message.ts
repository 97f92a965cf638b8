/**
 * The words a student reads about an order, written once for every status they are told of: the
 * notification service records them with each notification, and the order service's pages show
 * the same text beside an order at that status.
 * @module
 */
import type { Actor, InventoryResult, OrderLine } from "@campus/shared/events";

/** A status a student is told of, once per order: the `outcome` of a notification. */
export type NotifiedStatus = "RESERVED" | "FAILED" | "CANCELLED" | "READY" | "EXPIRED";

/**
 * Every status a student is told of. `PLACED` is the answer to the request itself, and
 * `PREPARING` and `COLLECTED` are news only to the kitchen.
 */
export const NOTIFIED_STATUSES: readonly NotifiedStatus[] = [
  "RESERVED",
  "FAILED",
  "CANCELLED",
  "READY",
  "EXPIRED",
];

/**
 * True for a status a student is told of.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNotifiedStatus } from "./notification_message.ts";
 *
 * assert.equal(isNotifiedStatus("READY"), true);
 * assert.equal(isNotifiedStatus("PREPARING"), false);
 * ```
 */
export function isNotifiedStatus(status: string): status is NotifiedStatus {
  return (NOTIFIED_STATUSES as readonly string[]).includes(status);
}

/** What a message is about: an order, the status it reached, and why when there is a why. */
export interface Notice {
  /** The status the student is told of. */
  status: NotifiedStatus;
  /** The order's id. */
  order_id: string;
  /** Who ordered. */
  student_id: string;
  /** What was ordered. */
  lines: readonly OrderLine[];
  /** Why the order failed, or why staff cancelled it. */
  reason?: string;
  /** Who cancelled a `CANCELLED` order, when known. */
  cancelled_by?: Actor;
}

/**
 * An order's lines as a student reads them.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linesText } from "./notification_message.ts";
 *
 * const lines = [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }];
 * assert.equal(linesText(lines), "2 x Burger, 1 x Coffee");
 * ```
 */
export function linesText(lines: readonly OrderLine[]): string {
  return lines.map(({ item, qty }) => `${qty} x ${item}`).join(", ");
}

/**
 * The message for a notice. A confirmation or an apology for an inventory result, as before
 * carts; word of a cancel (with staff's reason), of food ready to collect, or of food that was
 * never collected.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notificationMessage } from "./notification_message.ts";
 *
 * const order = { order_id: "o1", student_id: "S1", lines: [{ item: "Coffee", qty: 1 }] };
 * assert.equal(
 *   notificationMessage({ status: "RESERVED", ...order }),
 *   "Hi S1, your order of 1 x Coffee is confirmed (order o1).",
 * );
 * assert.equal(
 *   notificationMessage({
 *     status: "READY",
 *     ...order,
 *     lines: [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }],
 *   }),
 *   "Hi S1, your order of 2 x Burger, 1 x Coffee is ready to collect (order o1).",
 * );
 * ```
 */
export function notificationMessage(notice: Notice): string {
  const { student_id, order_id, reason } = notice;
  const order = `your order of ${linesText(notice.lines)}`;
  const because = reason === undefined ? "" : `: ${reason}`;
  const id = `(order ${order_id})`;
  switch (notice.status) {
    case "RESERVED":
      return `Hi ${student_id}, ${order} is confirmed ${id}.`;
    case "FAILED":
      return `Sorry ${student_id}, ${order} could not be completed${because} ${id}.`;
    case "CANCELLED":
      return notice.cancelled_by === "staff"
        ? `Sorry ${student_id}, the kitchen cancelled ${order}${because} ${id}.`
        : `Hi ${student_id}, ${order} is cancelled${
          notice.cancelled_by === "student" ? ", as you asked" : ""
        } ${id}.`;
    case "READY":
      return `Hi ${student_id}, ${order} is ready to collect ${id}.`;
    case "EXPIRED":
      return `Sorry ${student_id}, ${order} was not collected in time and has expired ${id}.`;
  }
}

/**
 * The notice of an inventory result: `RESERVED`, or `FAILED` with inventory's reason.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notificationMessage, noticeOfResult } from "./notification_message.ts";
 *
 * const event = {
 *   order_id: "o2",
 *   student_id: "S2",
 *   lines: [{ item: "Soup", qty: 5 }],
 *   reason: "Soup: 5 requested, 3 left",
 * };
 * assert.equal(
 *   notificationMessage(noticeOfResult({ outcome: "FAILED", event })),
 *   "Sorry S2, your order of 5 x Soup could not be completed: Soup: 5 requested, 3 left (order o2).",
 * );
 * ```
 */
export function noticeOfResult(result: InventoryResult): Notice {
  const { order_id, student_id, lines } = result.event;
  const notice: Notice = { status: result.outcome, order_id, student_id, lines };
  if (result.outcome === "FAILED") notice.reason = result.event.reason;
  return notice;
}
