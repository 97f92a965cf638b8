/**
 * The pipeline end to end on a real broker with the three services as real processes: an order
 * is reserved or fails with its reason, the student is told, bad input changes nothing.
 */
import assert from "node:assert/strict";
import { REASON_HEADER } from "@campus/shared/consumer";
import { INTEGRATION, Stack } from "./stack.ts";
import {
  finalOrder,
  getJson,
  listNotifications,
  listOrders,
  placeOrder,
  postOrder,
  stockLevels,
} from "./client.ts";
import { waitFor } from "./poll.ts";

Deno.test("the order pipeline over RabbitMQ", INTEGRATION, async (t) => {
  const stack = await Stack.start({ menu: { Coffee: 100, Pizza: 2, Salad: 50 } });
  try {
    await t.step("an order becomes RESERVED and the student is notified", async () => {
      const placed = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "S1" });
      assert.equal(placed.status, "PLACED");
      assert.deepEqual(
        { item: placed.item, qty: placed.qty, student_id: placed.student_id },
        { item: "Coffee", qty: 1, student_id: "S1" },
      );
      assert.match(placed.created_at, /^\d{4}-\d\d-\d\dT/);
      const final = await finalOrder(stack, placed.order_id);
      assert.equal(final.status, "RESERVED");
      const [note] = await waitFor(
        () => listNotifications(stack, placed.order_id).then((n) => n.length ? n : undefined),
        { what: `a notification for ${placed.order_id}` },
      );
      assert.equal(note.outcome, "RESERVED");
      assert.match(note.message, /confirmed/);
      assert.equal((await stockLevels(stack)).Coffee, 99);
    });

    await t.step("more than the stock fails with the reason and an apology", async () => {
      const placed = await placeOrder(stack, { item: "Pizza", qty: 3, student_id: "S2" });
      const final = await finalOrder(stack, placed.order_id);
      assert.equal(final.status, "FAILED");
      assert.equal(final.reason, 'Cannot reserve "Pizza": 3 requested, 2 in stock');
      const [note] = await waitFor(
        () => listNotifications(stack, placed.order_id).then((n) => n.length ? n : undefined),
        { what: `an apology for ${placed.order_id}` },
      );
      assert.equal(note.outcome, "FAILED");
      assert.match(note.message, /Sorry S2.*3 requested, 2 in stock/);
      assert.equal((await stockLevels(stack)).Pizza, 2, "a failed order takes no stock");
    });

    await t.step("an item not on the menu fails with a reason naming it", async () => {
      const placed = await placeOrder(stack, { item: "Caviar", qty: 1, student_id: "S3" });
      const final = await finalOrder(stack, placed.order_id);
      assert.equal(final.status, "FAILED");
      assert.match(final.reason ?? "", /"Caviar" is not on the menu/);
    });

    await t.step("GET /orders lists orders and GET /orders/{id} 404s for unknown ids", async () => {
      const orders = await listOrders(stack);
      assert.ok(orders.length >= 3, `expected at least 3 orders, got ${orders.length}`);
      const missing = await getJson<{ error: string }>(stack.url("order", "/orders/nope"));
      assert.equal(missing.status, 404);
      assert.match(missing.body.error, /nope/);
    });

    await t.step("bad input answers 4xx naming the field and stores nothing", async (t) => {
      const before = (await listOrders(stack)).length;
      const cases: [string, unknown, number, string][] = [
        ["broken JSON", '{"item": "Coffee", ', 400, "(body)"],
        ["an empty body", "", 400, "(body)"],
        ["a JSON array", "[1,2]", 400, "(body)"],
        ["a missing item", { qty: 1, student_id: "S1" }, 400, "item"],
        ["an empty item", { item: " ", qty: 1, student_id: "S1" }, 400, "item"],
        ["qty zero", { item: "Coffee", qty: 0, student_id: "S1" }, 400, "qty"],
        ["qty negative", { item: "Coffee", qty: -2, student_id: "S1" }, 400, "qty"],
        ["qty fractional", { item: "Coffee", qty: 1.5, student_id: "S1" }, 400, "qty"],
        ["qty a string", { item: "Coffee", qty: "1", student_id: "S1" }, 400, "qty"],
        ["qty over the cap", { item: "Coffee", qty: 101, student_id: "S1" }, 400, "qty"],
        ["a missing student_id", { item: "Coffee", qty: 1 }, 400, "student_id"],
        ["an unknown field", { item: "Coffee", qty: 1, student_id: "S1", price: 3 }, 400, "price"],
      ];
      for (const [name, body, status, field] of cases) {
        await t.step(name, async () => {
          const res = await postOrder(stack, body);
          assert.equal(res.status, status, JSON.stringify(res.body));
          assert.equal(typeof res.body.error, "string");
          const details = res.body.details as { field: string }[];
          assert.ok(
            details.some((d) => d.field === field),
            `expected a detail naming "${field}", got ${JSON.stringify(details)}`,
          );
        });
      }
      await t.step("a body over 64 KB answers 413", async () => {
        const huge = JSON.stringify({ item: "x".repeat(70_000), qty: 1, student_id: "S1" });
        const res = await postOrder(stack, huge);
        assert.equal(res.status, 413);
      });
      await t.step("a wrong method answers 405 and an unknown path 404", async () => {
        const wrong = await fetch(stack.url("order", "/order"), { method: "GET" });
        assert.equal(wrong.status, 405);
        assert.match(wrong.headers.get("allow") ?? "", /POST/);
        await wrong.body?.cancel();
        const unknown = await fetch(stack.url("order", "/nowhere"));
        assert.equal(unknown.status, 404);
        await unknown.body?.cancel();
      });
      assert.equal((await listOrders(stack)).length, before, "no bad request stored an order");
    });

    await t.step(
      "a malformed message on order.placed is dead-lettered with its reason",
      async () => {
        await stack.publish("order.placed", "this is not json");
        await stack.publish("order.placed", JSON.stringify({ order_id: "bad-1", item: "Coffee" }));
        const good = await placeOrder(stack, { item: "Salad", qty: 1, student_id: "S4" });
        assert.equal((await finalOrder(stack, good.order_id)).status, "RESERVED");
        await waitFor(async () => (await stack.queueDepth("order_placed_dlq")) >= 2, {
          what: "two messages in order_placed_dlq",
        });
        const dead = await stack.broker.take("order_placed_dlq", 10);
        const reasons = dead.map((m) => String(m.properties.headers[REASON_HEADER]));
        assert.ok(reasons.some((r) => r.startsWith("body is not JSON")), reasons.join(" | "));
        assert.ok(reasons.some((r) => /invalid OrderPlaced: qty/.test(r)), reasons.join(" | "));
      },
    );

    await t.step("an order published by hand as a flat body is handled", async () => {
      const body = { order_id: "hand-1", item: "Salad", qty: 5, student_id: "S3" };
      await stack.publish("order.placed", JSON.stringify(body));
      const final = await finalOrder(stack, "hand-1");
      assert.equal(final.status, "RESERVED");
      assert.equal(final.student_id, "S3");
    });

    await t.step("every service reports healthy and ready", async () => {
      for (const service of ["order", "inventory", "notification"] as const) {
        const health = await getJson<{ status: string }>(stack.url(service, "/health"));
        assert.equal(health.status, 200);
        const ready = await getJson<{ broker: string }>(stack.url(service, "/ready"));
        assert.equal(ready.status, 200, `${service} /ready: ${JSON.stringify(ready.body)}`);
        assert.equal(ready.body.broker, "connected");
      }
    });
  } finally {
    await stack.dispose();
  }
});
