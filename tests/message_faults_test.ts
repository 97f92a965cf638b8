/**
 * Faults of the message path on a real broker node of the suite's own, each of which once lost
 * an order or stopped a queue while `/ready` said ready: a foreign message whose properties
 * cannot be copied, publishes that match no queue, copies the broker refuses, an outbox that
 * cannot drain, an exception that escapes a consumer, and a memory alarm over a backlog.
 */
import assert from "node:assert/strict";
import { BrokerSession } from "@campus/shared/amqp";
import { createConsumer, type DeliveryCounter, REASON_HEADER } from "@campus/shared/consumer";
import { openDeliveryCounter } from "@campus/shared/delivery_counter";
import { InvalidMessage } from "@campus/shared/events";
import { createLogger, type Logger } from "@campus/shared/log";
import { SqliteDatabase } from "@campus/shared/sqlite";
import { SET_ASIDE_REASON } from "../services/inventory/app.ts";
import { menuEnv, OWN_BROKER_NODE, Stack } from "./stack.ts";
import {
  drained,
  finalOrder,
  finalOrders,
  listNotifications,
  orderMix,
  placeOrder,
  placeOrders,
  readiness,
} from "./client.ts";
import { checkLedger } from "./ledger.ts";
import { waitFor } from "./poll.ts";
import { publishRaw } from "./raw_amqp.ts";

const MENU = { Coffee: 1000, Salad: 1000, Pizza: 1000 };
const STALL_MS = 2000;

Deno.test("message path faults", OWN_BROKER_NODE, async (t) => {
  const stack = await Stack.start({
    env: {
      MENU: menuEnv(MENU),
      TEST_FAULTS: "on",
      MAX_RETRIES: "1",
      RETRY_DELAY_MS: "200",
      OUTBOX_STALL_MS: String(STALL_MS),
    },
  });
  /** Messages in a queue, unacknowledged ones included; -1 when the queue does not exist. */
  const messagesIn = async (queue: string) => {
    const out = await stack.rabbitmqctl(
      "list_queues",
      "-q",
      "--no-table-headers",
      "name",
      "messages",
    );
    const line = out.split("\n").map((l) => l.trim().split(/\s+/)).find(([name]) => name === queue);
    return line ? Number(line[1]) : -1;
  };
  const takeAll = (queue: string) => stack.broker.take(queue, 1000);
  const policy = async (name: string, queue: string, definition: Record<string, unknown>) => {
    await stack.rabbitmqctl(
      "set_policy",
      name,
      `^${queue}$`,
      JSON.stringify(definition),
      "--apply-to",
      "queues",
    );
    await waitFor(async () => {
      const out = await stack.rabbitmqctl(
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "policy",
      );
      return out.split("\n").some((l) => l.trim().split(/\s+/).join(" ") === `${queue} ${name}`);
    }, { what: `policy ${name} to apply to ${queue}` });
  };
  const bytes = (text: string) => new TextEncoder().encode(text);
  try {
    await t.step(
      "a foreign message whose properties cannot be copied as they are does not stall later orders",
      async () => {
        const invalidId = new Uint8Array(100).fill(0xff);
        // Poison with a message_id that is not UTF-8 (its decoded copy is 300 bytes long).
        await publishRaw(stack.backend.amqpUrl, "orders_exchange", "order.placed", bytes("{oops"), {
          messageId: invalidId,
          correlationId: invalidId,
        });
        // Poison with 70 KB of headers, more than a copy can carry.
        await publishRaw(stack.backend.amqpUrl, "orders_exchange", "order.placed", bytes("[1]"), {
          messageId: bytes("huge-headers"),
          headers: { "x-huge": bytes("h".repeat(70_000)), "x-small": bytes("kept") },
        });
        // A valid order with an invalid message_id whose first attempt fails: its retry copy
        // carries the same properties.
        const retried = {
          order_id: "raw-retry",
          item: "Salad",
          qty: 1,
          student_id: "fault:transient:1",
        };
        await publishRaw(
          stack.backend.amqpUrl,
          "orders_exchange",
          "order.placed",
          bytes(JSON.stringify(retried)),
          { messageId: invalidId },
        );
        const later = await placeOrders(stack, orderMix(MENU, 12, "after-poison-"));
        const final = await finalOrders(
          stack,
          [...later.map((o) => o.order_id), "raw-retry"],
          30_000,
        );
        assert.ok([...final.values()].every((o) => o.status === "RESERVED"), "all reserved");

        await waitFor(async () => (await stack.queueDepth("order_placed_dlq")) === 2, {
          what: "both poison messages in order_placed_dlq",
        });
        const dead = await takeAll("order_placed_dlq");
        const reasons = dead.map((m) => String(m.properties.headers[REASON_HEADER]));
        assert.ok(reasons.some((r) => r.startsWith("body is not JSON")), reasons.join(" | "));
        assert.ok(reasons.some((r) => r.startsWith("invalid OrderPlaced")), reasons.join(" | "));
        const huge = dead.find((m) => m.properties.messageId === "huge-headers");
        assert.ok(huge, "the 70 KB message kept its valid message_id");
        assert.equal(
          huge.properties.headers["x-huge"],
          undefined,
          "the oversize header is dropped",
        );
        assert.equal(huge.properties.headers["x-small"], "kept");
        assert.match(String(huge.properties.headers["x-copy-cleaned"]), /x-huge/);
        const invalid = dead.find((m) => m.properties.messageId !== "huge-headers")!;
        assert.equal(invalid.properties.messageId, undefined, "the invalid message_id is dropped");
        assert.match(String(invalid.properties.headers["x-copy-cleaned"]), /message_id/);
        assert.equal(await messagesIn("order_placed"), 0, "nothing left unacknowledged");
      },
    );

    await t.step(
      "a publish that matches no queue is kept until the topology is declared again",
      async (t) => {
        await t.step("OrderPlaced while an operator deleted order_placed", async () => {
          await stack.stop("inventory");
          await stack.rabbitmqctl("delete_queue", "order_placed");
          const placed = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "NR1" });
          await waitFor(async () => (await messagesIn("order_placed")) === 1, {
            what: "order_placed declared again, holding the OrderPlaced",
          });
          await stack.start("inventory");
          assert.equal((await finalOrder(stack, placed.order_id)).status, "RESERVED");
        });

        await t.step("a dead-letter copy while order_placed_dlq is missing", async () => {
          await stack.rabbitmqctl("delete_queue", "order_placed_dlq");
          await stack.publish("order.placed", "not json either", { messageId: "nr-poison" });
          await waitFor(async () => (await messagesIn("order_placed_dlq")) === 1, {
            what: "order_placed_dlq declared again, holding the poison",
          });
          const [dead] = await takeAll("order_placed_dlq");
          assert.equal(dead.properties.messageId, "nr-poison");
          assert.match(String(dead.properties.headers[REASON_HEADER]), /^body is not JSON/);
        });

        await t.step("a retry copy while order_placed_retry is missing", async () => {
          await stack.rabbitmqctl("delete_queue", "order_placed_retry");
          const placed = await placeOrder(stack, {
            item: "Coffee",
            qty: 1,
            student_id: "fault:transient:1",
          });
          assert.equal((await finalOrder(stack, placed.order_id)).status, "RESERVED");
          assert.equal(await messagesIn("order_placed_retry"), 0);
        });
      },
    );

    await t.step("a copy the broker refuses still gives a valid order its outcome", async (t) => {
      const refuse = { "max-length": 0, overflow: "reject-publish" };
      for (
        const [queue, studentId] of [
          ["order_placed_dlq", "fault:permanent"],
          ["order_placed_retry", "fault:transient:1"],
        ]
      ) {
        await t.step(`${queue} refuses every message`, async () => {
          await policy("refuse", queue, refuse);
          try {
            const placed = await placeOrder(stack, {
              item: "Pizza",
              qty: 1,
              student_id: studentId,
            });
            const final = await finalOrder(stack, placed.order_id);
            assert.equal(final.status, "FAILED");
            assert.ok(final.reason?.startsWith(SET_ASIDE_REASON), String(final.reason));
            await waitFor(async () => (await listNotifications(stack, placed.order_id)).length, {
              what: `an apology for ${placed.order_id}`,
            });
          } finally {
            await stack.rabbitmqctl("clear_policy", "refuse");
          }
        });
      }
      await takeAll("order_placed_dlq");
    });

    await t.step("/ready answers 503 while the outbox cannot drain", async () => {
      await policy("refuse", "order_placed", { "max-length": 0, overflow: "reject-publish" });
      const placed = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "ST1" });
      try {
        const stalled = await waitFor(async () => {
          const r = await readiness(stack, "order");
          return r.status === 503 ? r : undefined;
        }, { what: "order /ready to answer 503 while its outbox is stuck" });
        assert.equal(stalled.body.broker, "connected");
        assert.equal(stalled.body.outbox, "stalled");
        assert.equal(stalled.body.outbox_pending, 1);
        assert.match(stalled.body.error ?? "", /outbox/);
      } finally {
        await stack.rabbitmqctl("clear_policy", "refuse");
      }
      assert.equal((await finalOrder(stack, placed.order_id)).status, "RESERVED");
      const ready = await waitFor(async () => {
        const r = await readiness(stack, "order");
        return r.status === 200 ? r : undefined;
      }, { what: "order /ready to answer 200 once the outbox drained" });
      assert.equal(ready.body.outbox_pending, 0);
    });

    await t.step("an exception that escapes a consumer never stops its queue", async (t) => {
      // The test consumes inventory_reserved itself, so notification must not.
      const queue = "inventory_reserved";
      await stack.stop("notification");
      const send = (n: number) =>
        stack.broker.sendToQueue(queue, bytes(JSON.stringify({ n })), { messageId: `esc-${n}` });
      const consumeWith = async (
        name: string,
        parts: { counter?: (counter: DeliveryCounter) => DeliveryCounter; log?: Logger },
        seen: Set<number>,
      ) => {
        const log = parts.log ?? createLogger("test", "error");
        const broker = new BrokerSession({ url: stack.backend.amqpUrl, log, prefetch: 3, name });
        const db = SqliteDatabase.open(":memory:", name);
        const counter = await openDeliveryCounter(db);
        await broker.subscribe(
          queue,
          createConsumer({
            bus: broker,
            log,
            db,
            counter: parts.counter?.(counter) ?? counter,
            handle: ({ body }) => {
              const { n } = body as { n?: unknown };
              if (typeof n !== "number") throw new InvalidMessage("no n");
              seen.add(n);
            },
            maxRetries: 3,
            retryDelayMs: 100,
            maxDeliveries: 100,
          }),
        );
        await broker.start();
        return broker;
      };
      try {
        await t.step("the crash-count bookkeeping throws", async () => {
          // A delivery left unacknowledged by a consumer that went away comes back redelivered,
          // which sends it through the crash count.
          await send(0);
          const holder = new BrokerSession({
            url: stack.backend.amqpUrl,
            log: createLogger("test", "error"),
            prefetch: 1,
            name: "holder",
          });
          let held = false;
          await holder.subscribe(queue, () => {
            held = true;
            return new Promise(() => {});
          });
          await holder.start();
          await waitFor(() => held, { what: "the first delivery to be held" });
          await holder.close();

          let failures = 1;
          const flaky = (counter: DeliveryCounter): DeliveryCounter => ({
            inHand: (work) => counter.inHand(work),
            bump: (key) =>
              failures-- > 0 ? Promise.reject(new Error("disk I/O error")) : counter.bump(key),
            forget: (key) => counter.forget(key),
          });
          const seen = new Set<number>();
          const broker = await consumeWith("escape-counter", {
            counter: flaky,
          }, seen);
          try {
            for (let n = 1; n <= 8; n++) await send(n);
            await waitFor(() => seen.size === 9, { what: "all 9 messages handled" });
            await waitFor(async () => (await messagesIn(queue)) === 0, {
              what: `${queue} empty, nothing unacknowledged`,
            });
          } finally {
            await broker.close();
          }
        });

        await t.step("a log call before the dead-letter copy throws", async () => {
          let failures = 1;
          const quiet = createLogger("test", "error");
          const log: Logger = {
            ...quiet,
            error(msg, fields) {
              if (msg === "dead-lettering message" && failures-- > 0) {
                throw new Error("stderr is gone");
              }
              quiet.error(msg, fields);
            },
          };
          const seen = new Set<number>();
          const broker = await consumeWith("escape-log", { log }, seen);
          try {
            await stack.broker.sendToQueue(queue, bytes("not json"), { messageId: "esc-poison" });
            for (let n = 11; n <= 18; n++) await send(n);
            await waitFor(() => seen.size === 8, {
              what: "the 8 messages after the poison handled",
            });
            await waitFor(async () => (await messagesIn(queue)) === 0, {
              what: `${queue} empty, nothing unacknowledged`,
            });
            await waitFor(async () => (await messagesIn("inventory_reserved_dlq")) === 1, {
              what: "the poison in inventory_reserved_dlq",
            });
            await takeAll("inventory_reserved_dlq");
            assert.ok(failures <= 0, "the dead-letter log call threw");
          } finally {
            await broker.close();
          }
        });
      } finally {
        await stack.start("notification");
      }
    });

    await t.step(
      "during a memory alarm a backlog drains and /ready names the blocked publisher",
      async () => {
        await stack.stop("inventory");
        const placed = await placeOrders(stack, orderMix(MENU, 150, "alarm-"));
        await waitFor(async () => (await messagesIn("order_placed")) === 150, {
          what: "the backlog of 150 in order_placed",
        });
        await stack.rabbitmqctl("set_vm_memory_high_watermark", "0.0000001");
        try {
          await stack.start("inventory");
          await waitFor(async () => (await messagesIn("order_placed")) === 0, {
            timeoutMs: 60_000,
            what: "inventory to drain and acknowledge the whole backlog during the alarm",
          });
          const blocked = await waitFor(async () => {
            const r = await readiness(stack, "inventory");
            return r.status === 503 && r.body.broker === "blocked" ? r : undefined;
          }, { what: "inventory /ready to answer 503 naming its blocked publisher" });
          assert.match(blocked.body.error ?? "", /inventory-\d+-publisher.*blocked/);
          assert.ok(blocked.body.outbox_pending > 0, "the results wait in the outbox");
          const notify = await readiness(stack, "notification");
          assert.equal(notify.status, 200, "a service that does not publish stays ready");
          await stack.stop("inventory");
          assert.deepEqual(
            await stack.exitStatus("inventory"),
            { code: 0, signal: undefined },
            "SIGTERM stops it cleanly while blocked, without the forced exit",
          );
          await stack.start("inventory");
        } finally {
          await stack.rabbitmqctl("set_vm_memory_high_watermark", "0.4");
        }
        const final = await finalOrders(stack, placed.map((o) => o.order_id), 60_000);
        assert.equal(final.size, 150);
        const ready = await drained(stack, "inventory");
        assert.equal(ready.body.broker, "connected");
      },
    );

    await t.step("stock adds up after all of it", async () => {
      // Poison was dead-lettered on purpose: the stock and the orders are what must agree.
      const ledger = await checkLedger(stack, { stockBefore: MENU });
      assert.equal(ledger.lost, 0, "every order is final");
      assert.equal(ledger.stock_unaccounted, 0, ledger.problems.join("; "));
    });
  } finally {
    await stack.dispose();
  }
});
