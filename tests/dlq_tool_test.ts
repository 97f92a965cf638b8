/**
 * `deno task dlq` as an operator runs it, as a real process against a real broker with the
 * services running: `list` says per queue when nothing was dead-lettered and otherwise shows a
 * table of counts and first reasons; `replay` completes a fixed order, names what it moved, and
 * moves poison that fails again at most once per run.
 */
import assert from "node:assert/strict";
import { REASON_HEADER, ROUTING_KEY_HEADER } from "@campus/shared/consumer";
import { WORK_QUEUES } from "@campus/shared/topology";
import { Stack } from "./stack.ts";
import { finalOrder, placeOrder } from "./client.ts";
import { waitFor } from "./poll.ts";

const integration = { sanitizeOps: false, sanitizeResources: false };
const DLQS = WORK_QUEUES.map((q) => `${q.name}_dlq`);

Deno.test("deno task dlq list and replay", integration, async (t) => {
  const stack = await Stack.start();
  /** Runs `deno task dlq ...args` against the stack's broker; it must end within a minute. */
  const dlq = async (...args: string[]) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "dlq", ...args],
      env: { AMQP_URL: stack.backend.amqpUrl },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `dlq ${args.join(" ")} exited ${output.code}: ${stderr}`);
    return stdout;
  };
  const deadLetter = (queue: string, messageId: string, body: string, reason: string) =>
    stack.broker.sendToQueue(`${queue}_dlq`, new TextEncoder().encode(body), {
      messageId,
      headers: { [REASON_HEADER]: reason, [ROUTING_KEY_HEADER]: "order.placed" },
    });
  const drainAll = async () => {
    for (const queue of DLQS) await stack.broker.take(queue, 1e9);
  };
  try {
    await t.step("list says, per queue, that nothing was dead-lettered", async () => {
      const listed = await dlq("list");
      for (const queue of DLQS) {
        assert.match(
          listed,
          new RegExp(`^${queue}\\s+0\\s+empty, nothing dead-lettered$`, "m"),
          `a line saying ${queue} is empty in:\n${listed}`,
        );
      }
      const one = await dlq("list", "order_status");
      assert.doesNotMatch(one, /order_placed_dlq/, "only the queue asked for");
      assert.match(one, /^order_status_dlq\s+0\s+empty/m);
    });

    await t.step("list shows a table of queue, count and the first reasons", async () => {
      await drainAll();
      await stack.publish("order.placed", "this is not json", { messageId: "poison-a" });
      await stack.publish("order.placed", JSON.stringify({ order_id: "p-b", item: 7 }), {
        messageId: "poison-b",
      });
      for (let i = 0; i < 3; i++) {
        await stack.publish("order.placed", `not json ${i}`, { messageId: `poison-c${i}` });
      }
      await waitFor(async () => (await stack.queueDepth("order_placed_dlq")) === 5, {
        what: "5 poison messages in order_placed_dlq",
      });
      const listed = await dlq("list");
      const lines = listed.trimEnd().split("\n");
      assert.match(lines[0], /^QUEUE\s+COUNT\s+MESSAGE ID\s+REASON$/);
      const at = lines.findIndex((l) => l.startsWith("order_placed_dlq"));
      assert.match(lines[at], /^order_placed_dlq\s+5\s+poison-/, listed);
      // The first three, in the order the consumer dead-lettered them, each with its reason.
      const reasons: Record<string, RegExp> = {
        "poison-a": /body is not JSON/,
        "poison-b": /invalid OrderPlaced: item: item must be a string, got number; qty: qty is req/,
        "poison-c0": /body is not JSON/,
        "poison-c1": /body is not JSON/,
        "poison-c2": /body is not JSON/,
      };
      const shown = lines.slice(at, at + 3).map((l) => l.slice(l.indexOf("poison-")));
      for (const line of shown) {
        const [id] = line.split(/\s+/);
        assert.match(line, reasons[id] ?? /(unknown id)/, `a known id and its reason: ${line}`);
      }
      assert.equal(new Set(shown.map((l) => l.split(/\s+/)[0])).size, 3, "three different ids");
      assert.match(lines[at + 3], /^\s+\(2 more\)$/);
      for (const queue of DLQS.filter((q) => q !== "order_placed_dlq")) {
        assert.match(listed, new RegExp(`^${queue}\\s+0\\s+empty`, "m"));
      }
      const shorter = await dlq("list", "order_placed", "--max", "1");
      assert.match(shorter, /^\s+\(4 more\)$/m);
      const json = (await dlq("list", "order_placed", "--json")).trim().split("\n")
        .map((l) => JSON.parse(l));
      assert.deepEqual(json.map((m) => m.message_id).toSorted(), Object.keys(reasons));
      assert.equal(await stack.queueDepth("order_placed_dlq"), 5, "listing removes nothing");
      await drainAll();
    });

    await t.step("replay puts a fixed order back and names it", async () => {
      await drainAll();
      const body = { order_id: "replay-1", item: "Salad", qty: 1, student_id: "S5" };
      await deadLetter(
        "order_placed",
        "m-replay-1",
        JSON.stringify(body),
        "failed after 4 attempts: database is locked",
      );
      const replayed = await dlq("replay", "order_placed");
      assert.deepEqual(replayed.trimEnd().split("\n"), [
        "moved m-replay-1  failed after 4 attempts: database is locked",
        "replayed 1 message(s) from order_placed_dlq to order_placed",
      ]);
      assert.equal((await finalOrder(stack, "replay-1")).status, "RESERVED");
      assert.equal(await stack.queueDepth("order_placed_dlq"), 0);
    });

    await t.step("replay moves poison that fails again at most once, and ends", async () => {
      await drainAll();
      const ids = Array.from({ length: 20 }, (_, i) => `poison-${i}`);
      for (const id of ids) {
        await deadLetter("order_placed", id, `{"broken": ${id}`, "body is not JSON");
      }
      // Orders keep flowing alongside, as they would in production.
      const order = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "S6" });
      const replayed = await dlq("replay", "order_placed");
      const moved = replayed.split("\n").filter((l) => l.startsWith("moved "))
        .map((l) => l.split(/\s+/)[1]);
      assert.deepEqual(moved.toSorted(), ids.toSorted(), `each moved once:\n${replayed}`);
      assert.match(replayed, /^replayed 20 message\(s\) from order_placed_dlq to order_placed$/m);
      // Each comes back once, dead-lettered again by inventory, and stays there.
      await waitFor(
        async () =>
          (await stack.queueDepth("order_placed_dlq")) === 20 &&
          (await stack.queueDepth("order_placed")) === 0,
        { what: "the 20 replayed poison messages back in order_placed_dlq, and no more" },
      );
      const back = await stack.broker.take("order_placed_dlq", 100);
      assert.deepEqual(back.map((m) => m.properties.messageId).toSorted(), ids.toSorted());
      for (const message of back) {
        assert.ok(message.properties.headers["x-replayed-at"], "replayed once, then failed");
        assert.match(String(message.properties.headers[REASON_HEADER]), /^body is not JSON/);
      }
      assert.equal((await finalOrder(stack, order.order_id)).status, "RESERVED");
    });

    await t.step("replay of an empty DLQ says so and moves nothing", async () => {
      assert.equal(
        (await dlq("replay", "order_status")).trim(),
        "order_status_dlq is empty: nothing to replay",
      );
    });
  } finally {
    await stack.dispose();
  }
});
