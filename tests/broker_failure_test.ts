/**
 * The broker goes away: orders keep being accepted, `/ready` says what is down, and once the
 * node is back every service reconnects by itself and every order completes exactly once.
 */
import assert from "node:assert/strict";
import { INTEGRATION, Stack } from "./stack.ts";
import {
  drained,
  finalOrders,
  getJson,
  listOrders,
  orderMix,
  placeOrders,
  readiness,
} from "./client.ts";
import { waitFor } from "./poll.ts";
import { SERVICE_NAMES, WORK_QUEUES } from "@campus/shared/topology";
import { assertLedger } from "./ledger.ts";

const MENU = { Coffee: 1000, Pizza: 250, Burger: 250, Sushi: 40 };

Deno.test("broker failures", INTEGRATION, async (t) => {
  const stack = await Stack.start({ menu: MENU });
  const placedIds: string[] = [];
  try {
    await t.step("with the broker down, orders are accepted and /ready says why", async () => {
      await stack.stopBroker();
      for (const service of SERVICE_NAMES) {
        const ready = await waitFor(async () => {
          const r = await readiness(stack, service);
          return r.status === 503 ? r : undefined;
        }, { what: `${service} /ready to answer 503 while the broker is down` });
        assert.equal(ready.body.status, "not ready");
        assert.equal(ready.body.broker, "disconnected");
        assert.equal(typeof ready.body.error, "string");
        assert.ok(ready.body.error!.length > 0, `${service} names the error`);
        const health = await getJson<{ status: string }>(stack.url(service, "/health"));
        assert.equal(health.status, 200, `${service} /health stays liveness only`);
      }

      const placed = await placeOrders(stack, orderMix(MENU, 20, "down-"));
      assert.equal(placed.length, 20, "all 20 answered 201");
      placedIds.push(...placed.map((o) => o.order_id));
      const order = await readiness(stack, "order");
      assert.equal(order.status, 503);
      assert.equal(order.body.outbox_pending, 20, "the 20 OrderPlaced wait in the outbox");

      await stack.startBroker();
      const final = await finalOrders(stack, placed.map((o) => o.order_id), 45_000);
      assert.equal(final.size, 20);
      for (const service of SERVICE_NAMES) {
        const ready = await drained(stack, service);
        assert.deepEqual(ready.body, { status: "ready", broker: "connected", outbox_pending: 0 });
        assert.equal(await stack.exitStatus(service), undefined, `${service} was not restarted`);
      }
    });

    await t.step("300 orders in flight across a broker restart all complete once", async () => {
      const mix = orderMix(MENU, 300, "load-");
      // A hundred while the node shuts down, a hundred while it is down, a hundred while it
      // boots: the restart cuts through orders at every stage of the pipeline.
      const [, whileStopping] = await Promise.all([
        stack.stopBroker(),
        placeOrders(stack, mix.slice(0, 100), { concurrency: 4 }),
      ]);
      const down = await waitFor(async () => {
        const r = await readiness(stack, "order");
        return r.status === 503 ? r : undefined;
      }, { what: "order /ready to answer 503 while the broker is down" });
      assert.equal(down.body.broker, "disconnected");
      const whileDown = await placeOrders(stack, mix.slice(100, 200), { concurrency: 4 });
      const stuck = (await listOrders(stack)).filter((o) =>
        o.student_id.startsWith("load-") && o.status === "PLACED"
      );
      assert.ok(stuck.length >= 100, `orders wait while the broker is down (${stuck.length})`);
      const [, whileStarting] = await Promise.all([
        stack.startBroker(),
        placeOrders(stack, mix.slice(200), { concurrency: 4 }),
      ]);
      const placed = [...whileStopping, ...whileDown, ...whileStarting];
      assert.equal(placed.length, 300, "all 300 answered 201");
      placedIds.push(...placed.map((o) => o.order_id));
      const final = await finalOrders(stack, placed.map((o) => o.order_id), 60_000);
      assert.equal(final.size, 300);
      for (const service of SERVICE_NAMES) {
        assert.equal(await stack.exitStatus(service), undefined, `${service} was not restarted`);
      }
    });

    await t.step("every order was decided once, told once, and stock adds up", async () => {
      const ledger = await assertLedger(stack, MENU);
      assert.equal(ledger.accepted, placedIds.length, "the order service knows every order");
      const all = await finalOrders(stack, placedIds);
      const failed = [...all.values()].filter((o) => o.status === "FAILED");
      assert.ok(failed.length > 0, "the mix ran Sushi out, so some orders failed");
      const reasons = new Set(failed.map((o) => o.reason));
      assert.ok(
        failed.every((o) => /^Cannot reserve "Sushi"/.test(o.reason ?? "")),
        `only Sushi runs out; reasons: ${[...reasons].slice(0, 5).join(" | ")}`,
      );
      for (const queue of WORK_QUEUES) {
        assert.equal(await stack.queueDepth(queue.name), 0, `${queue.name} is drained`);
      }
    });
  } finally {
    await stack.dispose();
  }
});
