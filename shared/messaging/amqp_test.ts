import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { BrokerSession } from "./amqp.ts";
import { BrokerUnavailable, type Delivery, UnroutableMessage } from "./message_bus.ts";
import { QueueAdmin } from "@campus/testing/amqp_admin";
import { createLogger } from "../runtime/log.ts";
import { type BrokerNode, canStartBrokerNode, createBrokerNode } from "../../tools/broker_node.ts";
import { waitFor } from "../../tests/poll.ts";
import { closeConnection, openConnection } from "./_connection.ts";

const integration = { sanitizeOps: false, sanitizeResources: false };
const log = createLogger("test", "error");
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (body: Uint8Array) => new TextDecoder().decode(body);

/** A handler that acknowledges every delivery and notes its body in `seen`. */
const ackInto = (seen: string[]) => (deliveries: Delivery[]) => {
  for (const d of deliveries) {
    seen.push(text(d.body));
    d.ack();
  }
  return Promise.resolve();
};

Deno.test("the broker session on a real node", integration, async (t) => {
  if (!canStartBrokerNode()) throw new Error("This test needs rabbitmq-server");
  const node: BrokerNode = await createBrokerNode();
  await node.start();
  const admin = new QueueAdmin({ url: node.url, name: "admin", topology: {} });
  const open: BrokerSession[] = [];
  const broker = async (name: string, prefetch = 10) => {
    const b = new BrokerSession({
      url: node.url,
      log,
      prefetch,
      name,
      backoff: { initialMs: 20, maxMs: 200 },
    });
    open.push(b);
    await b.start();
    assert.ok(b.connected, `${name} connected: ${b.lastError}`);
    return b;
  };
  /** Messages in a queue, unacknowledged ones included. */
  const messagesIn = async (queue: string) => {
    const out = await node.ctl("list_queues", "-q", "--no-table-headers", "name", "messages");
    const line = out.split("\n").map((l) => l.trim().split(/\s+/)).find(([n]) => n === queue);
    return line ? Number(line[1]) : -1;
  };
  try {
    await t.step("the frames of a turn go out in one socket write", async () => {
      const connection = await openConnection(node.url, "coalesced", () => {});
      try {
        const socket =
          (connection as unknown as { connection: { stream: Record<string, unknown> } })
            .connection.stream;
        let writes = 0;
        for (const name of ["_write", "_writev"]) {
          const original = socket[name] as (...args: unknown[]) => unknown;
          socket[name] = function (this: unknown, ...args: unknown[]) {
            writes++;
            return original.apply(this, args);
          };
        }
        const channel = await connection.createConfirmChannel();
        const { queue } = await channel.assertQueue("", { exclusive: true });
        writes = 0;
        for (let i = 0; i < 50; i++) channel.sendToQueue(queue, Buffer.from(`m${i}`));
        await channel.waitForConfirms();
        // 50 publishes of 3 frames each: one write per frame without coalescing.
        assert.ok(writes >= 1 && writes <= 3, `50 publishes took ${writes} socket writes`);
        const { messageCount } = await channel.checkQueue(queue);
        assert.equal(messageCount, 50, "every publish arrived");
      } finally {
        await closeConnection(connection);
      }
    });
    await t.step("publishing and consuming go over connections of their own", async () => {
      const session = await broker("split");
      const seen: string[] = [];
      await session.subscribe("order_placed", ackInto(seen));
      for (let i = 0; i < 5; i++) await session.sendToQueue("order_placed", bytes(`m${i}`), {});
      await waitFor(() => seen.length === 5, { what: "5 messages consumed" });
      assert.deepEqual(seen, ["m0", "m1", "m2", "m3", "m4"]);
      const names = await node.ctl(
        "list_connections",
        "-q",
        "--no-table-headers",
        "client_properties",
      );
      assert.match(names, /split-consumer/);
      assert.match(names, /split-publisher/);
      await waitFor(async () => (await messagesIn("order_placed")) === 0, {
        what: "order_placed empty, every ack through",
      });
      await session.close();
    });

    await t.step(
      "a publish that throws while encoded fails alone; confirms stay matched",
      async () => {
        const session = await broker("encode");
        // amqplib refuses a message id over 255 bytes only while it encodes the frame, after it
        // queued the confirm callback.
        await assert.rejects(
          session.sendToQueue("order_placed_dlq", bytes("bad"), { messageId: "x".repeat(300) }),
          BrokerUnavailable,
        );
        const confirmed: string[] = [];
        const sends = ["a", "b", "c"].map((id) =>
          session.sendToQueue("order_placed_dlq", bytes(id), { messageId: id }).then(() => {
            confirmed.push(id);
          })
        );
        await waitFor(() => confirmed.length === 3, { what: "each later publish confirmed" });
        await Promise.all(sends);
        const taken = await admin.take("order_placed_dlq", 10);
        assert.deepEqual(taken.map((m) => text(m.body)), ["a", "b", "c"]);
        await session.close();
      },
    );

    await t.step(
      "a publish no queue takes fails, after the topology was declared again",
      async (t) => {
        const session = await broker("mandatory");
        await t.step("a queue outside the topology", async () => {
          await assert.rejects(
            session.sendToQueue("no_such_queue", bytes("lost?"), {}),
            UnroutableMessage,
          );
        });
        await t.step("a topology queue deleted under it", async () => {
          await node.ctl("delete_queue", "inventory_failed_dlq");
          await session.sendToQueue("inventory_failed_dlq", bytes("kept"), { messageId: "k" });
          const [kept] = await admin.take("inventory_failed_dlq", 10);
          assert.equal(kept?.properties.messageId, "k");
        });
        await t.step("an event whose only queue is gone", async () => {
          await node.ctl("delete_queue", "order_placed");
          await session.publishEvents([{
            messageId: "e1",
            type: "OrderPlaced",
            routingKey: "order.placed",
            correlationId: "o1",
            body: { order_id: "o1", item: "Tea", qty: 1, student_id: "S" },
          }]);
          const [event] = await admin.take("order_placed", 10);
          assert.equal(event?.properties.messageId, "e1");
        });
        await session.close();
      },
    );

    await t.step("a handler that throws or leaves a delivery unsettled gets it back", async (t) => {
      for (const fault of ["throws", "returns with one unsettled"] as const) {
        await t.step(fault, async () => {
          const session = await broker(`escape-${fault.split(" ")[0]}`, 3);
          let failures = 1;
          const seen: string[] = [];
          await session.subscribe("order_placed", (deliveries: Delivery[]) => {
            if (failures-- > 0) {
              if (fault === "throws") return Promise.reject(new Error("bookkeeping failed"));
              return Promise.resolve(); // settles nothing
            }
            for (const d of deliveries) {
              seen.push(`${text(d.body)}${d.redelivered ? " again" : ""}`);
              d.ack();
            }
            return Promise.resolve();
          });
          for (let i = 0; i < 8; i++) await session.sendToQueue("order_placed", bytes(`${i}`), {});
          await waitFor(() => new Set(seen.map((s) => s.split(" ")[0])).size === 8, {
            what: "all 8 handled",
          });
          assert.ok(seen.includes("0 again"), `the first one came back, redelivered: ${seen}`);
          await waitFor(async () => (await messagesIn("order_placed")) === 0, {
            what: "order_placed empty, nothing unacknowledged",
          });
          await session.close();
        });
      }
    });

    await t.step("while an alarm blocks publishing, consumers keep acknowledging", async () => {
      const session = await broker("alarm", 5);
      let writable = 0;
      session.onWritable(() => writable++);
      for (let i = 0; i < 20; i++) await admin.sendToQueue("order_placed", bytes(`${i}`));
      await node.ctl("set_vm_memory_high_watermark", "0.0000001");
      try {
        // The broker blocks a connection once it publishes: the first publish waits until the
        // notice arrives, then fails with every other one waiting.
        await assert.rejects(
          session.sendToQueue("inventory_failed_dlq", bytes("during"), {}),
          /blocks publishing: low on memory/,
        );
        assert.equal(session.blocked, "low on memory");
        await assert.rejects(
          session.sendToQueue("inventory_failed_dlq", bytes("again"), {}),
          /blocks publishing/,
          "later publishes fail at once",
        );
        const seen: string[] = [];
        await session.subscribe("order_placed", ackInto(seen));
        await waitFor(async () => seen.length === 20 && (await messagesIn("order_placed")) === 0, {
          what: "all 20 consumed and acknowledged during the alarm",
        });
        // The broker reads nothing from a blocked connection, not even its close.
        const stopping = await broker("alarm-stop");
        await assert.rejects(stopping.sendToQueue("order_status_dlq", bytes("x"), {}));
        assert.equal(stopping.blocked, "low on memory");
        let closed = false;
        stopping.close().then(() => closed = true);
        await waitFor(() => closed, { what: "close() to return while the broker blocks" });
      } finally {
        await node.ctl("set_vm_memory_high_watermark", "0.4");
      }
      await waitFor(() => session.blocked === undefined && writable > 0, {
        what: "the unblock to be noticed and announced",
      });
      await session.sendToQueue("inventory_failed_dlq", bytes("after"), {});
      // What was sent before the block is confirmed after it: at least once, never lost.
      const after = await admin.take("inventory_failed_dlq", 10);
      assert.ok(after.some((m) => text(m.body) === "after"));
      await session.close();
    });
  } finally {
    for (const b of open) await b.close();
    await admin.close();
    await node.dispose();
  }
});
