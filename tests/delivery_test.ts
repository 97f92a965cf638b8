/**
 * Delivery guarantees on a real broker with the services as real processes: a backlog built
 * while inventory is down drains when it returns, a duplicated `OrderPlaced` has its effects
 * once, and poison is dead-lettered with its reason while the orders around it go through.
 */
import assert from "node:assert/strict";
import { MAX_MESSAGE_BYTES, REASON_HEADER } from "@campus/shared/consumer";
import { INTEGRATION, Stack } from "./stack.ts";
import {
  finalOrder,
  finalOrders,
  listNotifications,
  listOrders,
  placeOrder,
  placeOrders,
  stockLevels,
} from "./client.ts";
import { assertLedger } from "./ledger.ts";
import { waitFor } from "./poll.ts";

const MENU = { Coffee: 100, Pizza: 50, Salad: 50 };

Deno.test("delivery: backlog, duplicates and poison", INTEGRATION, async (t) => {
  const stack = await Stack.start({ menu: MENU });
  try {
    await t.step("a backlog built while inventory is down drains when it returns", async () => {
      await stack.stop("inventory");
      assert.equal((await stack.exitStatus("inventory"))?.code, 0, "SIGTERM stops it with 0");
      const placed = await placeOrders(
        stack,
        Array.from({ length: 10 }, (_, i) => ({ item: "Coffee", qty: 1, student_id: `D${i}` })),
      );
      assert.equal(placed.length, 10, "all 10 answered 201");
      await waitFor(async () => (await stack.queueDepth("order_placed")) === 10, {
        what: "10 ready messages in order_placed while inventory is down",
      });
      const ids = placed.map((o) => o.order_id);
      const waiting = (await listOrders(stack)).filter((o) => ids.includes(o.order_id));
      assert.deepEqual(waiting.map((o) => o.status), Array(10).fill("PLACED"));

      await stack.start("inventory");
      const final = await finalOrders(stack, ids, 30_000);
      assert.deepEqual([...final.values()].map((o) => o.status), Array(10).fill("RESERVED"));
      await waitFor(async () => (await stack.queueDepth("order_placed")) === 0, {
        what: "order_placed to be empty again",
      });
      assert.equal((await stockLevels(stack)).Coffee, MENU.Coffee - 10);
      await waitFor(
        async () => (await listNotifications(stack)).length === 10,
        { what: "one notification per drained order (10)" },
      );
    });

    await t.step("the same OrderPlaced published twice has its effects once", async () => {
      // With the result consumers stopped, both announcements of inventory stay readable.
      await stack.stop("order");
      await stack.stop("notification");
      const pizzaBefore = (await stockLevels(stack)).Pizza;
      const body = JSON.stringify({ order_id: "dup-1", item: "Pizza", qty: 2, student_id: "S9" });
      await stack.publish("order.placed", body);
      await stack.publish("order.placed", body);
      await waitFor(
        async () =>
          (await stack.queueDepth("inventory_reserved")) === 2 &&
          (await stack.queueDepth("order_status")) === 2,
        { what: "inventory to announce dup-1 twice (inventory_reserved and order_status at 2)" },
      );
      assert.equal(await stack.queueDepth("inventory_failed"), 0, "no failure announced");
      assert.equal((await stockLevels(stack)).Pizza, pizzaBefore - 2, "stock dropped once");
      const announced = await stack.broker.take("inventory_reserved", 10, { remove: false });
      const bodies = announced.map((m) => JSON.parse(new TextDecoder().decode(m.body)));
      assert.equal(bodies.length, 2);
      assert.deepEqual(bodies[1], bodies[0], "the duplicate re-announces the recorded outcome");
      assert.equal(bodies[0].remaining, pizzaBefore - 2, "one reservation");

      await stack.start("order");
      await stack.start("notification");
      const first = await finalOrder(stack, "dup-1");
      assert.equal(first.status, "RESERVED");
      // A later order's result queues behind both announcements; once it is handled, so are
      // they (each consumer handles its queue in order).
      const sentinel = await placeOrder(stack, { item: "Salad", qty: 1, student_id: "S10" });
      assert.equal((await finalOrder(stack, sentinel.order_id)).status, "RESERVED");
      await waitFor(
        async () => (await listNotifications(stack, sentinel.order_id)).length === 1,
        { what: "the sentinel's notification" },
      );
      const notes = await listNotifications(stack, "dup-1");
      assert.equal(notes.length, 1, `one notification, got ${JSON.stringify(notes)}`);
      assert.equal(notes[0].outcome, "RESERVED");
      const after = await finalOrder(stack, "dup-1");
      assert.equal(after.updated_at, first.updated_at, "the status changed once");
      assert.equal((await stockLevels(stack)).Pizza, pizzaBefore - 2);
      assert.equal(await stack.queueDepth("order_status"), 0);
      assert.equal(await stack.queueDepth("inventory_reserved"), 0);
    });

    await t.step(
      "poison goes to the DLQ with its reason; the orders around it go through",
      async () => {
        const poison: [string, string, RegExp][] = [
          ["not-json", '{"order_id": "p1", "item": ', /^body is not JSON/],
          [
            "wrong-types",
            JSON.stringify({ order_id: "p2", item: 42, qty: "two", student_id: true }),
            /^invalid OrderPlaced: .*item must be a string.*qty must be a number/,
          ],
          [
            "missing-fields",
            JSON.stringify({ order_id: "p3" }),
            /^invalid OrderPlaced: .*item.*qty.*student_id/,
          ],
          [
            "negative-qty",
            JSON.stringify({ order_id: "p4", item: "Coffee", qty: -3, student_id: "S1" }),
            /^invalid OrderPlaced: qty: qty must be at least 1$/,
          ],
          [
            "enormous",
            JSON.stringify({
              order_id: "p5",
              item: "Coffee",
              qty: 1,
              student_id: "S1",
              note: "x".repeat(1024 * 1024),
            }),
            new RegExp(`^body is \\d+ bytes, more than the ${MAX_MESSAGE_BYTES} allowed$`),
          ],
          ["a-json-array", "[1, 2, 3]", /^invalid OrderPlaced/],
        ];
        const stockBefore = await stockLevels(stack);
        const valid: string[] = [];
        for (const [name, body] of poison) {
          await stack.publish("order.placed", body, { messageId: `poison-${name}` });
          const order = await placeOrder(stack, { item: "Salad", qty: 1, student_id: `V-${name}` });
          valid.push(order.order_id);
        }
        const final = await finalOrders(stack, valid);
        assert.deepEqual(
          [...final.values()].map((o) => o.status),
          Array(valid.length).fill("RESERVED"),
          "every valid order sent between the poison went through",
        );
        await waitFor(
          async () => (await stack.queueDepth("order_placed_dlq")) === poison.length,
          { what: `${poison.length} messages in order_placed_dlq` },
        );
        const dead = await stack.broker.take("order_placed_dlq", 100);
        const reasons = new Map(
          dead.map((m) => [m.properties.messageId, String(m.properties.headers[REASON_HEADER])]),
        );
        for (const [name, body, reason] of poison) {
          const got = reasons.get(`poison-${name}`);
          assert.match(got ?? "(missing)", reason, `reason of ${name}`);
          const copy = dead.find((m) => m.properties.messageId === `poison-${name}`)!;
          assert.equal(new TextDecoder().decode(copy.body), body, `${name} kept its body`);
          assert.equal(copy.properties.headers["x-original-queue"], "order_placed");
        }
        const stockAfter = await stockLevels(stack);
        assert.equal(stockAfter.Coffee, stockBefore.Coffee, "poison took no stock");
        assert.equal(stockAfter.Salad, stockBefore.Salad - valid.length);
        assert.equal(await stack.queueDepth("order_placed"), 0, "nothing left behind");
      },
    );

    await t.step("a malformed result is dead-lettered by each of its consumers", async () => {
      await stack.publish("inventory.reserved", JSON.stringify({ order_id: "r1", qty: 0 }), {
        messageId: "poison-result",
      });
      const good = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "S11" });
      assert.equal((await finalOrder(stack, good.order_id)).status, "RESERVED");
      for (const dlq of ["order_status_dlq", "inventory_reserved_dlq"]) {
        await waitFor(async () => (await stack.queueDepth(dlq)) === 1, {
          what: `the malformed result in ${dlq}`,
        });
        const [dead] = await stack.broker.take(dlq, 10);
        assert.equal(dead.properties.messageId, "poison-result");
        assert.match(String(dead.properties.headers[REASON_HEADER]), /^invalid InventoryReserved/);
      }
      await waitFor(
        async () => (await listNotifications(stack, good.order_id)).length === 1,
        { what: `the notification of ${good.order_id}` },
      );
      assert.equal((await listNotifications(stack, "r1")).length, 0, "nobody was told about r1");
    });

    await t.step("every order was decided once, told once, and stock adds up", async () => {
      await assertLedger(stack, MENU);
    });
  } finally {
    await stack.dispose();
  }
});
