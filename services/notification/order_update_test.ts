import assert from "node:assert/strict";
import { InvalidMessage } from "@campus/shared/events";
import { readInventoryResult, readOrderUpdate } from "./order_update.ts";

const order = {
  order_id: "o1",
  student_id: "S1",
  lines: [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }],
};
const moved = (status: string, previous: string) => ({
  ...order,
  status,
  previous,
  changed_at: "2026-01-01T12:00:00.000Z",
});

Deno.test("readOrderUpdate() gives READY and EXPIRED a notice, not PREPARING or COLLECTED", () => {
  for (const [status, previous] of [["READY", "PREPARING"], ["EXPIRED", "READY"]]) {
    const update = readOrderUpdate("order.status_changed", moved(status, previous));
    assert.deepEqual(update, { order_id: "o1", status, notice: { status, ...order } });
  }
  for (const [status, previous] of [["PREPARING", "RESERVED"], ["PREPARING", "READY"]]) {
    assert.deepEqual(readOrderUpdate("order.status_changed", moved(status, previous)), {
      order_id: "o1",
      status,
    });
  }
  assert.deepEqual(readOrderUpdate("order.status_changed", moved("COLLECTED", "READY")), {
    order_id: "o1",
    status: "COLLECTED",
  });
});

Deno.test("readOrderUpdate() gives a cancel its notice, with who cancelled and why", async (t) => {
  await t.step("by staff, with a reason", () => {
    const body = { ...order, cancelled_by: "staff", reason: "no buns", previous: "RESERVED" };
    assert.deepEqual(readOrderUpdate("order.cancelled", body).notice, {
      status: "CANCELLED",
      ...order,
      cancelled_by: "staff",
      reason: "no buns",
    });
  });
  await t.step("by the student, a classic one-line order", () => {
    const body = {
      order_id: "o2",
      item: "Tea",
      qty: 1,
      student_id: "S1",
      cancelled_by: "student",
      previous: "PLACED",
    };
    assert.deepEqual(readOrderUpdate("order.cancelled", body).notice, {
      status: "CANCELLED",
      order_id: "o2",
      student_id: "S1",
      lines: [{ item: "Tea", qty: 1 }],
      cancelled_by: "student",
    });
  });
});

Deno.test("readOrderUpdate() refuses a bad body or a foreign routing key as InvalidMessage", () => {
  assert.throws(
    () => readOrderUpdate("order.status_changed", moved("PLACED", "RESERVED")),
    (err) => err instanceof InvalidMessage && /status: status must be one of/.test(err.message),
  );
  assert.throws(
    () => readOrderUpdate("order.cancelled", { ...order, previous: "RESERVED" }),
    (err) => err instanceof InvalidMessage && /cancelled_by/.test(err.message),
  );
  assert.throws(
    () => readOrderUpdate("order.placed", order),
    (err) =>
      err instanceof InvalidMessage && /unexpected routing key "order.placed"/.test(err.message),
  );
});

Deno.test("readInventoryResult() gives a result its notice, the reason of a failure in it", () => {
  const failed = readInventoryResult("inventory.failed", {
    ...order,
    reason: "Burger: 2 requested, 1 left",
  });
  assert.deepEqual(failed, {
    order_id: "o1",
    status: "FAILED",
    notice: { status: "FAILED", ...order, reason: "Burger: 2 requested, 1 left" },
  });
  assert.equal(readInventoryResult("inventory.reserved", order).notice?.status, "RESERVED");
});
