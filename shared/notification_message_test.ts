import assert from "node:assert/strict";
import {
  isNotifiedStatus,
  noticeOfResult,
  notificationMessage,
  NOTIFIED_STATUSES,
} from "./notification_message.ts";

const order = { order_id: "o1", student_id: "S1", lines: [{ item: "Coffee", qty: 1 }] };
const cart = { ...order, lines: [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }] };

Deno.test("a one-line order keeps the classic words", () => {
  assert.equal(
    notificationMessage({ status: "RESERVED", ...order }),
    "Hi S1, your order of 1 x Coffee is confirmed (order o1).",
  );
  assert.equal(
    notificationMessage({
      status: "FAILED",
      ...order,
      reason: 'Cannot reserve "Coffee": 3 requested, 1 in stock',
    }),
    'Sorry S1, your order of 1 x Coffee could not be completed: Cannot reserve "Coffee": 3 requested, 1 in stock (order o1).',
  );
});

Deno.test("every status a student hears of names every line of the order", () => {
  const messages = {
    RESERVED: "Hi S1, your order of 2 x Burger, 1 x Coffee is confirmed (order o1).",
    FAILED:
      "Sorry S1, your order of 2 x Burger, 1 x Coffee could not be completed: Burger: 2 requested, 1 left (order o1).",
    CANCELLED: "Hi S1, your order of 2 x Burger, 1 x Coffee is cancelled (order o1).",
    READY: "Hi S1, your order of 2 x Burger, 1 x Coffee is ready to collect (order o1).",
    EXPIRED:
      "Sorry S1, your order of 2 x Burger, 1 x Coffee was not collected in time and has expired (order o1).",
  };
  assert.deepEqual(Object.keys(messages), [...NOTIFIED_STATUSES]);
  for (const status of NOTIFIED_STATUSES) {
    const reason = status === "FAILED" ? { reason: "Burger: 2 requested, 1 left" } : {};
    assert.equal(notificationMessage({ status, ...cart, ...reason }), messages[status]);
  }
});

Deno.test("a cancel says who cancelled, and staff's reason", async (t) => {
  await t.step("the student", () => {
    assert.equal(
      notificationMessage({ status: "CANCELLED", ...order, cancelled_by: "student" }),
      "Hi S1, your order of 1 x Coffee is cancelled, as you asked (order o1).",
    );
  });
  await t.step("staff, with and without a reason", () => {
    assert.equal(
      notificationMessage({
        status: "CANCELLED",
        ...order,
        cancelled_by: "staff",
        reason: "no milk",
      }),
      "Sorry S1, the kitchen cancelled your order of 1 x Coffee: no milk (order o1).",
    );
    assert.equal(
      notificationMessage({ status: "CANCELLED", ...order, cancelled_by: "staff" }),
      "Sorry S1, the kitchen cancelled your order of 1 x Coffee (order o1).",
    );
  });
});

Deno.test("a failure without a known reason still reads as a sentence", () => {
  assert.equal(
    notificationMessage({ status: "FAILED", ...order }),
    "Sorry S1, your order of 1 x Coffee could not be completed (order o1).",
  );
});

Deno.test("noticeOfResult() reads a cart's lines, not a one-line order's item", () => {
  const notice = noticeOfResult({
    outcome: "RESERVED",
    event: { ...cart, lines: cart.lines.map((l) => ({ ...l, remaining: 3 })) },
  });
  assert.equal(
    notificationMessage(notice),
    "Hi S1, your order of 2 x Burger, 1 x Coffee is confirmed (order o1).",
  );
});

Deno.test("isNotifiedStatus() leaves out what only the kitchen hears of", () => {
  for (const status of ["PLACED", "PREPARING", "COLLECTED", "reserved"]) {
    assert.equal(isNotifiedStatus(status), false, status);
  }
  for (const status of NOTIFIED_STATUSES) assert.equal(isNotifiedStatus(status), true, status);
});
