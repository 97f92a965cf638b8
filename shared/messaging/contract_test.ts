import assert from "node:assert/strict";
import {
  decodeEvent,
  decodeInventoryResult,
  envelopeFor,
  fitReason,
  InvalidMessage,
  MAX_REASON_LENGTH,
} from "./contract.ts";

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
    student_id: "S1",
    lines: [{ item: "Coffee", qty: 1 }],
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
    lines: [{ item: "Salad", qty: 5 }],
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
  const body = { order_id: "o1", student_id: "S1", lines: [{ item: "Coffee", qty: 1 }] };
  const event = envelopeFor("OrderPlaced", body);
  assert.equal(event.routingKey, "order.placed");
  assert.equal(event.correlationId, "o1");
  assert.deepEqual(event.body, body);
  assert.notEqual(event.messageId, envelopeFor("OrderPlaced", body).messageId);
});

Deno.test("envelopeFor() refuses a body its consumers would refuse", () => {
  const body = {
    order_id: "o1",
    student_id: "S1",
    lines: [{ item: "Coffee", qty: 1 }],
    reason: "",
  };
  assert.throws(
    () => envelopeFor("InventoryFailed", body),
    /Cannot publish InventoryFailed: reason/,
  );
});

Deno.test("InventoryReserved keeps each line's remaining stock, and leaves out one that is no count", () => {
  const cart = decodeEvent("InventoryReserved", {
    order_id: "o1",
    student_id: "S1",
    lines: [
      { item: "Tea", qty: 1, remaining: 4 },
      { item: "Soup", qty: 2, remaining: -1 },
      { item: "Pie", qty: 1, price: 3 },
    ],
  });
  assert.deepEqual(cart.lines, [
    { item: "Tea", qty: 1, remaining: 4 },
    { item: "Soup", qty: 2 },
    { item: "Pie", qty: 1 },
  ]);
  const one = decodeEvent("InventoryReserved", {
    order_id: "o2",
    student_id: "S1",
    lines: [{ item: "Tea", qty: 1, remaining: 7 }],
  });
  assert.equal(one.remaining, 7, "a one-line order also carries it flat");
  const classic = decodeEvent("InventoryReserved", {
    order_id: "o3",
    student_id: "S1",
    item: "Tea",
    qty: 1,
    remaining: 2,
  });
  assert.deepEqual(classic.lines, [{ item: "Tea", qty: 1, remaining: 2 }]);
});
