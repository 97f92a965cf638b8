import assert from "node:assert/strict";
import { describeIssues, PlaceOrderRequest } from "./place_order_request.ts";

Deno.test("PlaceOrderRequest accepts the documented example", () => {
  const order = PlaceOrderRequest.parse({ item: "Coffee", qty: 1, student_id: "S1" });
  assert.deepEqual(order, {
    item: "Coffee",
    qty: 1,
    student_id: "S1",
    lines: [{ item: "Coffee", qty: 1 }],
  });
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

const messagesOf = (body: unknown) => {
  const parsed = PlaceOrderRequest.safeParse(body);
  assert.equal(parsed.success, false, `expected ${JSON.stringify(body)} to be refused`);
  return describeIssues(parsed.error!).map((d) => `${d.field}: ${d.message}`);
};

Deno.test("PlaceOrderRequest takes a cart, its lines as sent", () => {
  const cart = PlaceOrderRequest.parse({
    student_id: " S1 ",
    lines: [{ item: " Burger ", qty: 2 }, { item: "Coffee", qty: 1 }],
  });
  assert.deepEqual(cart, {
    student_id: "S1",
    lines: [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }],
  });
});

Deno.test("PlaceOrderRequest merges lines naming the same item into the first", () => {
  const cart = PlaceOrderRequest.parse({
    student_id: "S1",
    lines: [{ item: "Burger", qty: 2 }, { item: "Tea", qty: 1 }, { item: "burger ", qty: 3 }],
  });
  assert.deepEqual(cart.lines, [{ item: "Burger", qty: 5 }, { item: "Tea", qty: 1 }]);
  const capped = PlaceOrderRequest.parse({
    student_id: "S1",
    lines: [{ item: "Tea", qty: 60 }, { item: "TEA", qty: 40 }],
  });
  assert.deepEqual(capped.lines, [{ item: "Tea", qty: 100 }], "exactly the cap is allowed");
});

Deno.test("PlaceOrderRequest refuses a cart's faults, naming each line's field", async (t) => {
  const line = { item: "Tea", qty: 1 };
  const cases: [string, unknown, string[]][] = [
    ["no lines", { student_id: "S1", lines: [] }, ["lines: lines must have at least 1 line"]],
    [
      "eleven lines",
      { student_id: "S1", lines: Array.from({ length: 11 }, () => line) },
      ["lines: lines must have at most 10 lines"],
    ],
    ["lines not an array", { student_id: "S1", lines: "Tea" }, [
      "lines: lines must be an array, got string",
    ]],
    ["a bad qty in the second line", {
      student_id: "S1",
      lines: [line, { item: "Soup", qty: 0 }],
    }, ["lines[1].qty: qty must be at least 1"]],
    ["a missing item", { student_id: "S1", lines: [{ qty: 1 }] }, [
      "lines[0].item: item is required",
    ]],
    ["a line that is no object", { student_id: "S1", lines: [line, 3] }, [
      "lines[1]: a line must be a JSON object, got number",
    ]],
    ["an unknown field of a line", { student_id: "S1", lines: [{ ...line, price: 2 }] }, [
      'lines[0].price: unknown field "price"; a line has item and qty',
    ]],
    ["an unknown field of the cart", { student_id: "S1", lines: [line], item: "Tea" }, [
      'item: unknown field "item"; a cart has student_id and lines',
    ]],
    ["no student", { lines: [line] }, ["student_id: student_id is required"]],
    ["merged lines over the cap", {
      student_id: "S1",
      lines: [{ item: "Tea", qty: 60 }, line, { item: "tea", qty: 41 }],
    }, ['lines[2].qty: qty of "Tea" adds up to 102 over its lines; at most 100']],
  ];
  for (const [name, body, expected] of cases) {
    await t.step(name, () => assert.deepEqual(messagesOf(body), expected));
  }
});
