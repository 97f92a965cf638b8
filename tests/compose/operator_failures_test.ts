/**
 * Failures injected the way an operator does on compose.yaml's containers, with real
 * `docker compose` commands: a backlog built while inventory is stopped, SIGKILL and restart of
 * inventory under load, a broker restart, a SIGKILL of the order service right after a 201, and
 * the data that `down` keeps and `down -v` removes. One `up --build` serves every scenario.
 * Run with `deno task test:compose` (it needs a Docker engine with Compose v2).
 */
import assert from "node:assert/strict";
import { dlqOf, SERVICE_NAMES, WORK_QUEUES } from "@campus/shared/topology";
import { Stack } from "../stack.ts";
import { assertLedger } from "../ledger.ts";
import { composeService, isComposeBackend } from "../compose_backend.ts";
import { CONTAINER_DATA_DIR } from "../../tools/compile.ts";
import { sourceRunArgs } from "../../tools/service_runtime.ts";
import { SOURCE_DENO, SOURCE_ROOT } from "../../tools/source_entry.ts";
import {
  drained,
  finalOrder,
  finalOrders,
  listNotifications,
  listOrders,
  orderMix,
  type OrderRequest,
  type OrderView,
  placeOrder,
  placeOrders,
  stockLevels,
} from "../client.ts";
import { waitFor } from "../poll.ts";
import { killOrderAfter201 } from "../kill_after_201.ts";
import { queueCounts } from "./management_api.ts";

const integration = { sanitizeOps: false, sanitizeResources: false };
const MENU = { Coffee: 2000, Pizza: 400, Burger: 400, Taco: 60 };

Deno.test("failures injected with docker compose", integration, async (t) => {
  const stack = await Stack.start({ backend: "compose", menu: MENU });
  const compose = stack.backend;
  assert.ok(isComposeBackend(compose), "the compose backend runs this suite");
  const placedIds: string[] = [];
  try {
    await t.step(
      "each service is PID 1 of its container, unprivileged, least-privileged",
      async () => {
        const target = Deno.env.get("SERVICE_TARGET") || "compiled";
        for (const service of SERVICE_NAMES) {
          const { stdout } = await compose.compose([
            ...["exec", "-T", composeService(service)],
            ...["sh", "-c", "id -u; tr '\\0' '\\n' < /proc/1/cmdline"],
          ]);
          const [uid, ...argv] = stdout.trim().split("\n");
          assert.notEqual(uid, "0", `${service} does not run as root`);
          const expected = target === "source"
            ? [SOURCE_DENO, ...sourceRunArgs(SOURCE_ROOT, service, CONTAINER_DATA_DIR)]
            : ["/usr/local/bin/campus-service"];
          assert.deepEqual(argv, expected, `PID 1 of ${composeService(service)} (${target})`);
        }
      },
    );

    const walkthrough: string[] = [];
    await t.step("stop inventory_service: 10 orders wait in order_placed, then drain", async () => {
      await stack.stop("inventory");
      assert.equal((await stack.exitStatus("inventory"))?.code, 0, "SIGTERM stops it with 0");
      const placed = await placeOrders(
        stack,
        Array.from({ length: 10 }, (_, i) => ({ item: "Coffee", qty: 1, student_id: `S${i}` })),
      );
      assert.equal(placed.length, 10, "all 10 answered 201");
      const ids = placed.map((o) => o.order_id);
      walkthrough.push(...ids);
      placedIds.push(...ids);

      // What the management UI's Queues tab shows: 10 ready, nobody consuming.
      const backlog = await waitFor(async () => {
        const counts = await queueCounts(compose.managementUrl, "order_placed");
        return counts.messages_ready === 10 ? counts : undefined;
      }, { timeoutMs: 30_000, what: "the management API to show 10 ready in order_placed" });
      assert.equal(backlog.consumers, 0, "no consumer while inventory is stopped");
      const waiting = (await listOrders(stack)).filter((o) => ids.includes(o.order_id));
      assert.deepEqual(waiting.map((o) => o.status), Array(10).fill("PLACED"));

      await stack.start("inventory");
      const final = await finalOrders(stack, ids, 30_000);
      assert.deepEqual([...final.values()].map((o) => o.status), Array(10).fill("RESERVED"));
      const drained = await waitFor(async () => {
        const counts = await queueCounts(compose.managementUrl, "order_placed");
        return counts.messages === 0 && counts.consumers > 0 ? counts : undefined;
      }, { timeoutMs: 30_000, what: "the management API to show order_placed drained" });
      assert.equal(drained.messages_ready, 0);
      assert.equal((await stockLevels(stack)).Coffee, MENU.Coffee - 10);
      await waitFor(async () => (await listNotifications(stack)).length === 10, {
        what: "a notification for each of the 10 drained orders",
      });
    });

    await t.step("the drain shows in docker compose logs inventory_service", async () => {
      assert.equal(walkthrough.length, 10, "the walkthrough placed its 10 orders");
      let missing = walkthrough;
      try {
        await waitFor(async () => {
          const log = await stack.logs("inventory");
          missing = walkthrough.filter((id) => !log.includes(id));
          return missing.length === 0;
        }, { what: "inventory's log to name each of the 10 drained orders" });
      } catch (err) {
        throw new Error(`${(err as Error).message}; not in the log: ${missing.join(", ")}`);
      }
    });

    await t.step("kill and restart inventory_service while 300 orders flow", async () => {
      const load = startLoad(stack, orderMix(MENU, 300, "kill-", 5));
      try {
        await load.reached(60);
        await stack.kill("inventory");
        assert.equal((await stack.exitStatus("inventory"))?.signal, "SIGKILL");
        await stack.start("inventory");
        await load.reached(150);
        // `docker compose restart`: SIGTERM, then a new start of the same container.
        await compose.restart("inventory");
        await load.reached(220);
        await stack.kill("inventory");
        assert.equal((await stack.exitStatus("inventory"))?.signal, "SIGKILL");
        await stack.start("inventory");
      } finally {
        await load.settled;
      }
      const placed = await load.placed;
      assert.equal(placed.length, 300, "all 300 answered 201");
      placedIds.push(...placed.map((o) => o.order_id));
      const final = await finalOrders(stack, placed.map((o) => o.order_id), 90_000);
      assert.equal(final.size, 300, "none lost");
      // None reserved twice: initial − reserved = remaining, one notification each.
      await assertLedger(stack, MENU);
    });

    await t.step("restart rabbitmq while orders flow: no service needs a restart", async () => {
      const before = await Promise.all(SERVICE_NAMES.map((s) => compose.startedAt(s)));
      const mix = orderMix(MENU, 200, "broker-", 3);
      const [during] = await Promise.all([
        placeOrders(stack, mix.slice(0, 100), { concurrency: 4 }),
        compose.restart("broker"),
      ]);
      await stack.waitForBroker();
      const after = await placeOrders(stack, mix.slice(100), { concurrency: 4 });
      const placed = [...during, ...after];
      assert.equal(placed.length, 200, "all 200 answered 201");
      placedIds.push(...placed.map((o) => o.order_id));
      const final = await finalOrders(stack, placed.map((o) => o.order_id), 90_000);
      assert.equal(final.size, 200);
      for (const service of SERVICE_NAMES) {
        const ready = await drained(stack, service);
        assert.deepEqual(ready.body, { status: "ready", broker: "connected", outbox_pending: 0 });
      }
      assert.deepEqual(
        await Promise.all(SERVICE_NAMES.map((s) => compose.startedAt(s))),
        before,
        "every service container runs on from before the broker restart",
      );
    });

    await t.step(
      "kill order_service right after a 201: the order completes",
      (t) => killOrderAfter201(t, stack, MENU, placedIds),
    );

    await t.step("every order was decided once, told once, and stock adds up", async () => {
      const all = await finalOrders(stack, placedIds);
      const notes = await waitFor(async () => {
        const n = await listNotifications(stack);
        return n.length >= placedIds.length ? n : undefined;
      }, { what: `${placedIds.length} notifications` });
      assert.equal(notes.length, placedIds.length, "one notification per order, no more");
      const byOrder = new Map(notes.map((n) => [n.order_id, n.outcome]));
      for (const id of placedIds) {
        assert.equal(byOrder.get(id), all.get(id)?.status, `outcome told for ${id}`);
      }
      await assertLedger(stack, MENU);
      for (const queue of WORK_QUEUES) {
        assert.equal(await stack.queueDepth(queue.name), 0, `${queue.name} is drained`);
        assert.equal(await stack.queueDepth(dlqOf(queue.name)), 0, "nothing dead-lettered");
      }
    });

    await t.step("docker compose down keeps the data; down -v removes it", async () => {
      const orders = byId(await listOrders(stack));
      const stock = await stockLevels(stack);
      const notified = (await listNotifications(stack)).length;
      assert.equal(orders.size, placedIds.length);

      await compose.down();
      await compose.up();
      await stack.waitForBroker();
      assert.deepEqual(byId(await listOrders(stack)), orders, "every order, as it was");
      assert.deepEqual(await stockLevels(stack), stock, "the stock, as it was");
      assert.equal((await listNotifications(stack)).length, notified, "every notification");
      const next = await placeOrder(stack, { item: "Pizza", qty: 2, student_id: "V1" });
      assert.equal((await finalOrder(stack, next.order_id, 30_000)).status, "RESERVED");
      assert.equal(
        (await stockLevels(stack)).Pizza,
        stock.Pizza - 2,
        "counted from the kept stock",
      );

      await compose.down({ volumes: true });
      await compose.up();
      await stack.waitForBroker();
      assert.deepEqual(await listOrders(stack), [], "no order is left");
      assert.deepEqual(await listNotifications(stack), [], "no notification is left");
      assert.deepEqual(await stockLevels(stack), MENU, "the stock starts from the menu again");
      for (const queue of WORK_QUEUES) {
        assert.equal(await stack.queueDepth(queue.name), 0, `${queue.name} starts empty`);
      }
    });
  } finally {
    await stack.dispose();
  }
});

/** Orders by id, each with its status and reason: what must survive a `down` and `up`. */
function byId(orders: OrderView[]): Map<string, Pick<OrderView, "status" | "reason">> {
  return new Map(orders.map((o) => [o.order_id, { status: o.status, reason: o.reason }]));
}

/** Orders being placed in the background, so failures can be injected while they flow. */
interface Load {
  /** Resolves once `count` orders were accepted; rejects when placing failed. */
  reached(count: number): Promise<void>;
  /** Every accepted order, once all are placed. */
  placed: Promise<OrderView[]>;
  /** Resolves when placing ended, however it ended. */
  settled: Promise<unknown>;
}

function startLoad(stack: Stack, requests: OrderRequest[]): Load {
  let accepted = 0;
  let failure: unknown;
  const placed = placeOrders(stack, requests, {
    concurrency: 6,
    onPlaced: (count) => accepted = count,
  });
  const settled = placed.catch((err) => failure = err ?? new Error("placing orders failed"));
  return {
    placed,
    settled,
    async reached(count) {
      await waitFor(() => {
        if (failure) throw failure;
        return accepted >= count;
      }, { timeoutMs: 60_000, what: `${count} orders to be accepted` });
    },
  };
}
