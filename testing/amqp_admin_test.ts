import assert from "node:assert/strict";
import { BrokerUnavailable, UnroutableMessage } from "@campus/shared/message_bus";
import { QueueAdmin } from "./amqp_admin.ts";
import { type BrokerNode, canStartBrokerNode, createBrokerNode } from "../tools/broker_node.ts";
import { waitFor } from "../tests/poll.ts";

const integration = { sanitizeOps: false, sanitizeResources: false };
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (body: Uint8Array) => new TextDecoder().decode(body);

Deno.test("the queue admin on a real node", integration, async (t) => {
  if (!canStartBrokerNode()) throw new Error("This test needs rabbitmq-server");
  const node: BrokerNode = await createBrokerNode();
  await node.start();
  const admin = new QueueAdmin({ url: node.url, name: "admin", topology: {} });
  try {
    await t.step("take lists a queue without emptying it, or empties it", async () => {
      for (const id of ["a", "b", "c"]) {
        await admin.sendToQueue("order_status_dlq", bytes(id), { messageId: id, type: "T" });
      }
      const listed = await admin.take("order_status_dlq", 2, { remove: false });
      assert.deepEqual(listed.map((m) => [text(m.body), m.properties.messageId, m.routingKey]), [
        ["a", "a", "order_status_dlq"],
        ["b", "b", "order_status_dlq"],
      ]);
      assert.equal(await admin.queueDepth("order_status_dlq"), 3, "listing put them back");
      const taken = await admin.take("order_status_dlq", 10);
      assert.deepEqual(taken.map((m) => text(m.body)).sort(), ["a", "b", "c"]);
      assert.equal(await admin.queueDepth("order_status_dlq"), 0, "taking removed them");
    });

    await t.step("the queue admin moves messages, each acknowledged after its copy", async () => {
      for (const id of ["r1", "r2", "r3"]) {
        await admin.sendToQueue("order_status_dlq", bytes(id), { messageId: id });
      }
      const moved = await admin.moveMessages("order_status_dlq", 2, (m) => ({
        exchange: "",
        routingKey: "inventory_failed_dlq",
        properties: { ...m.properties, headers: { ...m.properties.headers, moved: true } },
      }));
      assert.equal(moved, 2);
      const there = await admin.take("inventory_failed_dlq", 10);
      assert.deepEqual(there.map((m) => [m.properties.messageId, m.properties.headers.moved]), [
        ["r1", true],
        ["r2", true],
      ]);
      assert.equal(await admin.queueDepth("order_status_dlq"), 1, "the third stays");
      await assert.rejects(
        admin.moveMessages("order_status_dlq", 1, () => ({
          exchange: "",
          routingKey: "no_such_queue",
          properties: {},
        })),
        UnroutableMessage,
      );
      assert.equal(await admin.queueDepth("order_status_dlq"), 1, "not moved is not lost");
      await admin.take("order_status_dlq", 10);
    });

    await t.step(
      "a lost connection fails operations, and the next use connects again",
      async () => {
        assert.ok(admin.connected);
        await node.stop();
        await waitFor(() => !admin.connected, { what: "the admin to notice the node stopped" });
        await assert.rejects(admin.queueDepth("order_status_dlq"), BrokerUnavailable);
        assert.notEqual(admin.lastError, "", "the failed connect says why");
        await node.start();
        await admin.sendToQueue("order_status_dlq", bytes("back"), { messageId: "back" });
        assert.ok(admin.connected);
        assert.equal(admin.lastError, "");
        const [back] = await admin.take("order_status_dlq", 10);
        assert.equal(text(back.body), "back");
      },
    );
  } finally {
    await admin.close();
    await node.dispose();
  }
});
