import assert from "node:assert/strict";
import {
  decodeEvent,
  decodeInventoryResult,
  describeIssues,
  envelopeFor,
  fitReason,
  InvalidMessage,
  MAX_REASON_LENGTH,
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

Deno.test("PlaceOrderRequest says a missing field is required and a wrong type what it got", () => {
  const messages = (body: unknown) => {
    const parsed = PlaceOrderRequest.safeParse(body);
    assert.equal(parsed.success, false);
    return describeIssues(parsed.error!).map((d) => `${d.field}: ${d.message}`);
  };
  assert.deepEqual(messages({ item: "Coffee", qty: 1 }), ["student_id: student_id is required"]);
  assert.deepEqual(messages({ item: "Coffee", qty: "2", student_id: 7 }), [
    "qty: qty must be a number, got string",
    "student_id: student_id must be a string, got number",
  ]);
  assert.deepEqual(messages({ item: null, qty: [1], student_id: "S1" }), [
    "item: item must be a string, got null",
    "qty: qty must be a number, got array",
  ]);
  assert.deepEqual(messages([1, 2]), ["(body): expected a JSON object, got array"]);
  assert.deepEqual(messages({ item: "Tea", qty: 1, student_id: "S", price: 3 }), [
    'price: unknown field "price"; an order has item, qty and student_id',
  ]);
});

Deno.test("fitReason() cuts long foreign text to fit InventoryFailed, with an ellipsis", () => {
  assert.equal(fitReason("  none left "), "none left", "short reasons stay as they are");
  const huge = fitReason("x".repeat(100_000));
  assert.equal(huge.length, MAX_REASON_LENGTH);
  assert.ok(huge.endsWith("…"));
  assert.equal(fitReason("abcdef", 4), "abc…");
  // A surrogate pair straddling the cut is dropped whole, never halved.
  const emoji = fitReason("ab😀cd", 4);
  assert.equal(emoji, "ab…");
  assert.ok(emoji.isWellFormed());
  const event = envelopeFor("InventoryFailed", {
    order_id: "o1",
    item: "Coffee",
    qty: 1,
    student_id: "S1",
    reason: fitReason("failed: " + "y".repeat(5000)),
  });
  assert.equal(event.type, "InventoryFailed");
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
