import assert from "node:assert/strict";
import { InvalidMessage } from "@campus/shared/events";
import { viewOfFeedEvent } from "./feed_view.ts";

const cart = {
  order_id: "o1",
  student_id: "S1",
  lines: [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }],
};

Deno.test("a kitchen move heard on the feed shows its status, lines and time", () => {
  const view = viewOfFeedEvent({
    routingKey: "order.status_changed",
    body: { ...cart, status: "READY", previous: "PREPARING", changed_at: "2026-01-05T12:00:00Z" },
  });
  assert.deepEqual(view, {
    ...cart,
    status: "READY",
    updated_at: "2026-01-05T12:00:00Z",
    ready_at: "2026-01-05T12:00:00Z",
    message: "Hi S1, your order of 2 x Burger, 1 x Coffee is ready to collect (order o1).",
  });
});

Deno.test("a recall heard on the feed shows PREPARING at the time of the recall", () => {
  const view = viewOfFeedEvent({
    routingKey: "order.status_changed",
    body: {
      order_id: "o2",
      student_id: "S1",
      item: "Tea",
      qty: 1,
      status: "PREPARING",
      previous: "READY",
      changed_at: "2026-01-05T12:05:00Z",
    },
  });
  assert.deepEqual(view, {
    order_id: "o2",
    student_id: "S1",
    lines: [{ item: "Tea", qty: 1 }],
    item: "Tea",
    qty: 1,
    status: "PREPARING",
    updated_at: "2026-01-05T12:05:00Z",
  });
});

Deno.test("a cancel heard on the feed shows CANCELLED, by whom and why", () => {
  const view = viewOfFeedEvent({
    routingKey: "order.cancelled",
    body: { ...cart, cancelled_by: "staff", reason: "out of buns", previous: "RESERVED" },
  });
  const { message, ...rest } = view;
  assert.deepEqual(rest, {
    ...cart,
    status: "CANCELLED",
    cancelled_by: "staff",
    reason: "out of buns",
  });
  // The notification service's words for a cancel by the kitchen, with its reason.
  assert.match(
    message ?? "",
    /the kitchen cancelled your order of 2 x Burger, 1 x Coffee: out of buns/,
  );
});

Deno.test("an inventory result heard on the feed shows its outcome", () => {
  const view = viewOfFeedEvent({
    routingKey: "inventory.failed",
    body: { order_id: "o3", student_id: "S1", item: "Soup", qty: 5, reason: "sold out" },
  });
  assert.equal(view.status, "FAILED");
  assert.equal(view.reason, "sold out");
});

Deno.test("a bad body on the feed is refused naming the field, not shown", () => {
  assert.throws(
    () =>
      viewOfFeedEvent({
        routingKey: "order.status_changed",
        body: { ...cart, status: "COOKED", previous: "RESERVED", changed_at: "now" },
      }),
    (err) => err instanceof InvalidMessage && /status/.test(err.message),
  );
  assert.throws(
    () => viewOfFeedEvent({ routingKey: "order.placed", body: cart }),
    InvalidMessage,
  );
});
