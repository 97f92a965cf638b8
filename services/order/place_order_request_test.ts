import assert from "node:assert/strict";
import { describeIssues, PlaceOrderRequest } from "./place_order_request.ts";

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
