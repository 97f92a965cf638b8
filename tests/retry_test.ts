/**
 * Handler failures, injected through the test-only `TEST_FAULTS=on` switch (student id
 * `fault:transient:N`, `fault:permanent`, `fault:crash`): a transient failure is retried after
 * a delay and succeeds, a lasting one is dead-lettered after the configured attempts with its
 * last error, and a message that kills the consumer reaches the DLQ after a bounded number of
 * deliveries while the orders behind it keep moving. A valid order that is dead-lettered still
 * ends FAILED, so its student is told.
 */
import assert from "node:assert/strict";
import { ERROR_ID_HEADER, REASON_HEADER, RETRY_HEADER } from "@campus/shared/consumer";
import { SET_ASIDE_REASON } from "../services/inventory/app.ts";
import { INTEGRATION, type ServiceExit, Stack } from "./stack.ts";
import { finalOrder, finalOrders, listNotifications, placeOrder, stockLevels } from "./client.ts";
import { assertLedger } from "./ledger.ts";
import { waitFor } from "./poll.ts";

const MENU = { Coffee: 100, Salad: 50 };
const MAX_RETRIES = 3;
const MAX_DELIVERIES = 3;
/** Exit code of the injected crash (services/inventory/app.ts). */
const CRASH_EXIT_CODE = 70;

for (const queueType of ["classic", "quorum"] as const) {
  Deno.test(
    `retries, dead letters and crash loops (${queueType} queues)`,
    INTEGRATION,
    (t) => retriesAndDeadLetters(t, queueType),
  );
}

async function retriesAndDeadLetters(t: Deno.TestContext, queueType: "classic" | "quorum") {
  const stack = await Stack.start({
    menu: MENU,
    env: {
      QUEUE_TYPE: queueType,
      TEST_FAULTS: "on",
      MAX_RETRIES: String(MAX_RETRIES),
      MAX_DELIVERIES: String(MAX_DELIVERIES),
      RETRY_DELAY_MS: "200",
    },
  });
  const dlqMessage = async (orderId: string) => {
    await waitFor(async () => (await stack.queueDepth("order_placed_dlq")) >= 1, {
      what: `order ${orderId} in order_placed_dlq`,
    });
    const dead = await stack.broker.take("order_placed_dlq", 10);
    assert.equal(
      dead.length,
      1,
      `one message in order_placed_dlq, got ${
        JSON.stringify(dead.map((m) => [new TextDecoder().decode(m.body), m.properties.headers]))
      }`,
    );
    assert.equal(dead[0].properties.correlationId, orderId);
    return dead[0];
  };
  try {
    await t.step("a transient failure is retried after a delay, then succeeds", async () => {
      const coffee = (await stockLevels(stack)).Coffee;
      const placed = await placeOrder(stack, {
        item: "Coffee",
        qty: 2,
        student_id: "fault:transient:2",
      });
      const final = await finalOrder(stack, placed.order_id, 20_000);
      assert.equal(final.status, "RESERVED");
      const log = await stack.logs("inventory");
      for (const attempt of [1, 2]) {
        assert.match(log, new RegExp(`injected transient fault \\(attempt ${attempt}\\)`));
      }
      assert.doesNotMatch(log, /injected transient fault \(attempt 3\)/, "third attempt passed");
      assert.equal((await stockLevels(stack)).Coffee, coffee - 2, "reserved once");
      await waitFor(async () => (await listNotifications(stack, placed.order_id)).length === 1, {
        what: `one notification for ${placed.order_id}`,
      });
      assert.equal(await stack.queueDepth("order_placed_dlq"), 0, "nothing dead-lettered");
    });

    await t.step(
      "a failure that outlasts the retries is dead-lettered with the last error",
      async () => {
        const before = await placeOrder(stack, { item: "Salad", qty: 1, student_id: "R1" });
        const failing = await placeOrder(stack, {
          item: "Salad",
          qty: 1,
          student_id: `fault:transient:${MAX_RETRIES + 5}`,
        });
        const after = await placeOrder(stack, { item: "Salad", qty: 1, student_id: "R2" });
        const dead = await dlqMessage(failing.order_id);
        assert.equal(
          dead.properties.headers[REASON_HEADER],
          `failed after ${MAX_RETRIES + 1} attempts: injected transient fault (attempt ${
            MAX_RETRIES + 1
          })`,
        );
        assert.equal(dead.properties.headers[RETRY_HEADER], MAX_RETRIES);
        const done = await finalOrders(stack, [before.order_id, after.order_id]);
        assert.deepEqual([...done.values()].map((o) => o.status), ["RESERVED", "RESERVED"]);
      },
    );

    await t.step("a permanent failure is dead-lettered after the configured attempts", async () => {
      const salad = (await stockLevels(stack)).Salad;
      const failing = await placeOrder(stack, {
        item: "Salad",
        qty: 3,
        student_id: "fault:permanent",
      });
      const next = await placeOrder(stack, { item: "Salad", qty: 1, student_id: "R3" });
      const dead = await dlqMessage(failing.order_id);
      assert.equal(
        dead.properties.headers[REASON_HEADER],
        `failed after ${MAX_RETRIES + 1} attempts: injected permanent fault`,
      );
      assert.equal(dead.properties.headers["x-original-routing-key"], "order.placed");
      assert.deepEqual(JSON.parse(new TextDecoder().decode(dead.body)), {
        order_id: failing.order_id,
        item: "Salad",
        qty: 3,
        student_id: "fault:permanent",
        lines: [{ item: "Salad", qty: 3 }],
      });
      assert.equal((await finalOrder(stack, next.order_id)).status, "RESERVED");
      assert.equal((await stockLevels(stack)).Salad, salad - 1, "the failing order took none");
      // The student still learns an outcome: the order fails, saying it was set aside, with
      // the error id staff find the error under (not the error itself).
      const outcome = await finalOrder(stack, failing.order_id);
      assert.equal(outcome.status, "FAILED");
      assert.equal(
        outcome.reason,
        `${SET_ASIDE_REASON} (error ${dead.properties.headers[ERROR_ID_HEADER]})`,
      );
      const apology = await waitFor(
        () => listNotifications(stack, failing.order_id).then((n) => n[0]),
        { what: `an apology for the set-aside order ${failing.order_id}` },
      );
      assert.equal(apology.outcome, "FAILED");
    });

    await t.step(
      "a message that crashes inventory reaches the DLQ after bounded deliveries",
      async () => {
        // Queued while inventory is down, the three arrive together when it starts: the orders
        // on either side of the crashing one share its prefetch window and its redeliveries.
        await stack.stop("inventory");
        const before = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "C1" });
        const crashing = await placeOrder(stack, {
          item: "Coffee",
          qty: 1,
          student_id: "fault:crash",
        });
        const behind = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "C2" });
        await waitFor(async () => (await stack.queueDepth("order_placed")) === 3, {
          what: "the three orders queued in order_placed",
        });
        await restartAfterCrash(stack);
        const exits: ServiceExit[] = [];
        // Restart inventory each time it dies, until the message is dead-lettered; a bound on
        // the rounds turns an endless crash loop into a failure instead of a hang.
        for (let round = 0; round <= MAX_DELIVERIES + 1; round++) {
          const next = await waitFor(async () => {
            const exit = await stack.exitStatus("inventory");
            if (exit) return { exit };
            return (await stack.queueDepth("order_placed_dlq")) > 0 ? { dead: true } : undefined;
          }, { what: "inventory to crash or the crashing message to be dead-lettered" });
          if (!next.exit) break;
          exits.push(next.exit);
          await restartAfterCrash(stack);
        }
        assert.deepEqual(
          exits.map((e) => e.code),
          Array(MAX_DELIVERIES).fill(CRASH_EXIT_CODE),
          `inventory died once per delivery, ${MAX_DELIVERIES} times`,
        );
        const dead = await dlqMessage(crashing.order_id);
        assert.equal(
          dead.properties.headers[REASON_HEADER],
          `delivered ${
            MAX_DELIVERIES + 1
          } times without being acknowledged (the consumer kept stopping)`,
        );
        assert.equal(await stack.exitStatus("inventory"), undefined, "inventory runs on");
        const setAside = await finalOrder(stack, crashing.order_id);
        assert.equal(setAside.status, "FAILED");
        assert.equal(
          setAside.reason,
          `${SET_ASIDE_REASON} (error ${dead.properties.headers[ERROR_ID_HEADER]})`,
        );
        const neighbours = await finalOrders(stack, [before.order_id, behind.order_id]);
        assert.deepEqual(
          [...neighbours.values()].map((o) => o.status),
          ["RESERVED", "RESERVED"],
          "the orders redelivered with the crashing one were handled, not dead-lettered",
        );
        const later = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "C3" });
        assert.equal((await finalOrder(stack, later.order_id)).status, "RESERVED", "line moves");
        assert.equal(await stack.queueDepth("order_placed"), 0);
      },
    );

    await t.step("every order was decided once, told once, and stock adds up", async () => {
      await assertLedger(stack, MENU);
    });
  } finally {
    await stack.dispose();
  }
}

/** Starts inventory again; it may die again before it answers, which the caller checks. */
async function restartAfterCrash(stack: Stack): Promise<void> {
  try {
    await stack.start("inventory");
  } catch (err) {
    if (!(await stack.exitStatus("inventory"))) throw err;
  }
}
