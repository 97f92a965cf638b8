import assert from "node:assert/strict";
import {
  decodeEvent,
  decodeInventoryResult,
  envelopeFor,
  InvalidMessage,
  PlaceOrderRequest,
} from "./events.ts";

Deno.test("PlaceOrderRequest accepts the documented example", () => {
  const order = PlaceOrderRequest.parse({ item: "Coffee", qty: 1, student_id: "S1" });
  assert.deepEqual(order, { item: "Coffee", qty: 1, student_id: "S1" });
});

Deno.test("PlaceOrderRequest refuses bad fields, naming each", async (t) => {
  const cases: [string, unknown, string][] = [
    ["missing item", { qty: 1, student_id: "S1" }, "item"],
    ["blank item", { item: "  ", qty: 1, student_id: "S1" }, "item"],
    ["qty zero", { item: "Coffee", qty: 0, student_id: "S1" }, "qty"],
    ["qty fraction", { item: "Coffee", qty: 0.5, student_id: "S1" }, "qty"],
    ["qty as text", { item: "Coffee", qty: "2", student_id: "S1" }, "qty"],
    ["qty over the cap", { item: "Coffee", qty: 1000, student_id: "S1" }, "qty"],
    ["student_id a number", { item: "Coffee", qty: 1, student_id: 7 }, "student_id"],
  ];
  for (const [name, body, field] of cases) {
    await t.step(name, () => {
      const parsed = PlaceOrderRequest.safeParse(body);
      assert.equal(parsed.success, false);
      assert.ok(parsed.error?.issues.some((i) => i.path[0] === field), `expected ${field}`);
    });
  }
  await t.step("unknown fields", () => {
    const parsed = PlaceOrderRequest.safeParse({ item: "Tea", qty: 1, student_id: "S", x: 1 });
    assert.equal(parsed.success, false);
  });
});

Deno.test("decodeEvent() accepts a flat OrderPlaced body published by hand, extras ignored", () => {
  const body = { order_id: "X", item: "Salad", qty: 5, student_id: "S3", note: "hi" };
  assert.deepEqual(decodeEvent("OrderPlaced", body), {
    order_id: "X",
    item: "Salad",
    qty: 5,
    student_id: "S3",
  });
});

Deno.test("decodeEvent() throws InvalidMessage naming the bad field", () => {
  assert.throws(
    () => decodeEvent("OrderPlaced", { order_id: "X", item: "Salad", qty: -1, student_id: "S" }),
    (err: unknown) => err instanceof InvalidMessage && /qty/.test(err.message),
  );
});

Deno.test("decodeInventoryResult() tells results apart by routing key", () => {
  const base = { order_id: "o", item: "Tea", qty: 1, student_id: "S" };
  assert.equal(decodeInventoryResult("inventory.reserved", base).outcome, "RESERVED");
  const failed = decodeInventoryResult("inventory.failed", { ...base, reason: "none left" });
  assert.equal(failed.outcome, "FAILED");
  assert.throws(() => decodeInventoryResult("inventory.failed", base), InvalidMessage);
  assert.throws(() => decodeInventoryResult("order.placed", base), InvalidMessage);
});

Deno.test("envelopeFor() keys the event by order id and leaves the body flat", () => {
  const body = { order_id: "o1", item: "Coffee", qty: 1, student_id: "S1" };
  const event = envelopeFor("OrderPlaced", body);
  assert.equal(event.routingKey, "order.placed");
  assert.equal(event.correlationId, "o1");
  assert.deepEqual(event.body, body);
  assert.notEqual(event.messageId, envelopeFor("OrderPlaced", body).messageId);
});

Deno.test("envelopeFor() refuses a body its consumers would refuse", () => {
  const body = { order_id: "o1", item: "Coffee", qty: 1, student_id: "S1", reason: "" };
  assert.throws(
    () => envelopeFor("InventoryFailed", body),
    /Cannot publish InventoryFailed: reason/,
  );
});
