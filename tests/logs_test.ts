/**
 * The logs tell each order's story at the default level: stop inventory, place orders, start it,
 * and its log drains them one line per order; every service logs its business events with the
 * `order_id`; a duplicate gets a `warn` line, a dead letter an `error` line with its error id.
 */
import assert from "node:assert/strict";
import { INTEGRATION, Stack } from "./stack.ts";
import { finalOrder, finalOrders, placeOrder, placeOrders } from "./client.ts";
import { lineFor, type LogLine, logLines } from "./log_lines.ts";
import { SET_ASIDE_REASON } from "../services/inventory/app.ts";

const MENU = { Coffee: 100, Taco: 3 };

Deno.test("logs: one line per business event, with the order id", INTEGRATION, async (t) => {
  // No LOG_LEVEL: the services run at their default, info.
  const stack = await Stack.start({
    menu: MENU,
    env: { TEST_FAULTS: "on", MAX_RETRIES: "0" },
  });
  try {
    await t.step("inventory's log drains a backlog one order at a time", async () => {
      await stack.stop("inventory");
      const requests = [
        ...Array.from({ length: 8 }, (_, i) => ({ item: "Coffee", qty: 1, student_id: `L${i}` })),
        { item: "Taco", qty: 5, student_id: "L8" },
        { item: "Tea", qty: 1, student_id: "L9" },
      ];
      const placed = await placeOrders(stack, requests);
      const before = await logLines(stack, "inventory");
      for (const order of placed) {
        assert.ok(!before.some((l) => l.order_id === order.order_id), "not while it is down");
      }
      await stack.start("inventory");
      const final = await finalOrders(stack, placed.map((o) => o.order_id));

      const remaining: number[] = [];
      for (const [i, order] of placed.entries()) {
        const { order_id, item, qty, student_id } = order;
        const status = final.get(order_id)!.status;
        const placedLine = await lineFor(stack, "order", "order placed", order_id);
        assert.deepEqual(
          pick(placedLine, "level", "service", "item", "qty", "student_id"),
          { level: "info", service: "order", item, qty, student_id },
        );
        if (i < 8) {
          assert.equal(status, "RESERVED");
          const reserved = await lineFor(stack, "inventory", "stock reserved", order_id);
          assert.deepEqual(pick(reserved, "level", "item", "qty"), { level: "info", item, qty });
          remaining.push(Number(reserved.remaining));
        } else {
          assert.equal(status, "FAILED");
          const refused = await lineFor(stack, "inventory", "stock refused", order_id);
          assert.equal(refused.item, item);
          assert.equal(refused.reason, final.get(order_id)!.reason, "the reason the order got");
        }
        const changed = await lineFor(stack, "order", "order status changed", order_id);
        assert.equal(changed.status, status);
        assert.equal(changed.reason, final.get(order_id)!.reason, "a reason only when FAILED");
        const noticed = await lineFor(stack, "notification", "notification recorded", order_id);
        assert.equal(noticed.outcome, status);
      }
      assert.deepEqual(
        remaining.sort((a, b) => a - b),
        Array.from({ length: 8 }, (_, i) => MENU.Coffee - 8 + i),
        "each reservation logged the stock it left",
      );
    });

    await t.step("a duplicate OrderPlaced gets a warn line in inventory", async () => {
      const body = JSON.stringify({ order_id: "log-dup", item: "Coffee", qty: 1, student_id: "S" });
      await stack.publish("order.placed", body);
      await lineFor(stack, "inventory", "stock reserved", "log-dup");
      await stack.publish("order.placed", body);
      const warn = await lineFor(
        stack,
        "inventory",
        "duplicate order, re-announcing its outcome",
        "log-dup",
      );
      assert.equal(warn.level, "warn");
      const reserved = (await logLines(stack, "inventory")).filter((l) =>
        l.msg === "stock reserved" && l.order_id === "log-dup"
      );
      assert.equal(reserved.length, 1, "the stock was reserved once, and said so once");
    });

    await t.step("a dead letter gets an error line naming its order and error id", async () => {
      const order = await placeOrder(stack, {
        item: "Coffee",
        qty: 1,
        student_id: "fault:permanent",
      });
      assert.equal((await finalOrder(stack, order.order_id)).status, "FAILED");
      const dead = await lineFor(stack, "inventory", "dead-lettering message", order.order_id);
      assert.equal(dead.level, "error");
      assert.equal(dead.queue, "order_placed");
      assert.match(String(dead.reason), /injected permanent fault/);
      assert.match(String(dead.error_id), /^[0-9a-f]{8}$/);
      const refused = await lineFor(stack, "inventory", "stock refused", order.order_id);
      assert.equal(
        refused.reason,
        `${SET_ASIDE_REASON} (error ${dead.error_id})`,
      );
    });
  } finally {
    await stack.dispose();
  }
});

function pick(line: LogLine, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, line[k]]));
}
