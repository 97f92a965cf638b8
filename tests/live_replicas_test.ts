/**
 * Live updates with several order replicas on a real broker: each replica has its own feed
 * queue while one of its pages is open, so a page open on any replica hears a result whichever
 * replica consumed it, and a cancel or kitchen move whichever replica made it; a replica with no
 * page open binds no feed queue; and a replica stops promptly with event streams still open.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "@campus/shared/config";
import { type RunningService, startService } from "@campus/shared/service";
import { EXCHANGE } from "@campus/shared/topology";
import { createOrderService } from "../services/order/app.ts";
import { EventStreamReader } from "./event_stream_client.ts";
import { waitFor } from "./poll.ts";
import { INTEGRATION, Stack } from "./stack.ts";

/**
 * How long a replica's feed outlives its last stream here: short, so that the queue's going is
 * seen within the suite (the service's own grace is `FEED_GRACE_MS`).
 */
const FEED_GRACE_MS = 300;

Deno.test("every order replica streams every result to its pages", INTEGRATION, async (t) => {
  const stack = await Stack.start({ without: ["order", "inventory", "notification"] });
  const dir = await Deno.makeTempDir({ prefix: "campus-replicas-" });
  const replicas: RunningService[] = [];
  const streams: EventStreamReader[] = [];
  try {
    for (const name of ["a", "b"]) {
      const config = loadConfig("order", {
        AMQP_URL: stack.backend.amqpUrl,
        HOST: "127.0.0.1",
        PORT: "0",
        DATA_DIR: join(dir, name),
        // Nothing listens there: stock is simply shown as unavailable.
        INVENTORY_URL: "http://127.0.0.1:9",
        LOG_LEVEL: "error",
      });
      replicas.push(
        await startService(
          config,
          (deps) => createOrderService(deps, { feedGraceMs: FEED_GRACE_MS }),
          { signals: false },
        ),
      );
    }
    for (const replica of replicas) {
      await waitFor(
        async () => {
          const res = await fetch(`http://127.0.0.1:${replica.port}/ready`);
          await res.body?.cancel();
          return res.status === 200;
        },
        { what: `the replica on :${replica.port} to be ready` },
      );
    }

    /** The replicas' feed queues (server-named), and those of them bound to the exchange. */
    const feedQueues = async () => {
      const queues = (await stack.rabbitmqctl("list_queues", "-q", "--no-table-headers", "name"))
        .split("\n").map((line) => line.trim()).filter((name) => name.startsWith("amq.gen-"));
      const bound = (await stack.rabbitmqctl(
        "list_bindings",
        "-q",
        "--no-table-headers",
        "source_name",
        "destination_name",
      )).split("\n").map((line) => line.trim().split(/\s+/))
        .filter(([source, queue]) => source === EXCHANGE && queue?.startsWith("amq.gen-"))
        .map(([, queue]) => queue);
      return { queues, bound: [...new Set(bound)] };
    };

    await t.step({
      name: "a feed queue is bound only while a page is open, and goes a grace after it closes",
      ignore: stack.backend.rabbitmqctl === undefined,
      fn: async () => {
        assert.deepEqual(
          await feedQueues(),
          { queues: [], bound: [] },
          "no page open on either replica: no feed queue",
        );
        const res = await fetch(`http://127.0.0.1:${replicas[0].port}/events?student_id=R0`);
        const stream = new EventStreamReader(res);
        try {
          await stream.next("the student's orders", (e) => e.event === "orders");
          const open = await waitFor(async () => {
            const feeds = await feedQueues();
            return feeds.bound.length > 0 ? feeds : undefined;
          }, { what: "the feed queue of the replica with a page open to be bound" });
          assert.equal(open.queues.length, 1, `only that replica's: ${open.queues.join(", ")}`);
          assert.deepEqual(open.bound, open.queues);
          // The queue is bound before the consumer is ready: the result is repeated until heard.
          const body = { order_id: "r-0", item: "Coffee", qty: 1, student_id: "R0" };
          const heard = stream.next("the result of r-0", (e) => e.event === "order", 30_000);
          let settled = false;
          heard.then(() => settled = true, () => settled = true);
          await waitFor(async () => {
            await stack.publish("inventory.reserved", JSON.stringify(body));
            return settled;
          }, { intervalMs: 500, timeoutMs: 30_000, what: "the open page to hear r-0" });
          assert.equal(((await heard).data as { status: string }).status, "RESERVED");
        } finally {
          await stream.cancel();
        }
        await waitFor(async () => {
          const feeds = await feedQueues();
          return feeds.queues.length === 0 && feeds.bound.length === 0;
        }, { what: `the feed queue to go ${FEED_GRACE_MS} ms after its last page closed` });
      },
    });

    await t.step("a result reaches the student's stream on both replicas", async () => {
      for (const replica of replicas) {
        const res = await fetch(`http://127.0.0.1:${replica.port}/events?student_id=R1`);
        const stream = new EventStreamReader(res);
        streams.push(stream);
        await stream.next("the student's orders", (e) => e.event === "orders");
      }
      // Each feed queue is bound once its replica has a page open; a result published before
      // that would miss it, so the first one is repeated until both have heard one.
      const body = { order_id: "r-1", item: "Coffee", qty: 1, student_id: "R1" };
      const heard = streams.map((stream) =>
        stream.next("the result of r-1", (e) => e.event === "order", 30_000)
      );
      let settled = false;
      Promise.allSettled(heard).then(() => settled = true);
      await waitFor(async () => {
        await stack.publish("inventory.reserved", JSON.stringify(body));
        return settled;
      }, { intervalMs: 500, timeoutMs: 30_000, what: "both replicas to hear the result" });
      for (const result of await Promise.all(heard)) {
        assert.deepEqual(result.data, {
          ...body,
          lines: [{ item: "Coffee", qty: 1 }],
          status: "RESERVED",
          message: "Hi R1, your order of 1 x Coffee is confirmed (order r-1).",
        });
      }
    });

    await t.step({
      name: "a feed queue deleted by hand is declared again, and the pages hear results again",
      ignore: stack.backend.rabbitmqctl === undefined,
      fn: async () => {
        const feeds = async () => (await feedQueues()).queues;
        const before = await feeds();
        assert.equal(before.length, 2, `one feed queue per replica: ${before.join(", ")}`);
        await stack.rabbitmqctl("delete_queue", before[0]);
        await waitFor(async () => {
          const now = await feeds();
          return now.length === 2 && !now.includes(before[0]);
        }, { what: "the replica to declare a new feed queue" });
        const body = { order_id: "r-2", item: "Tea", qty: 1, student_id: "R1", reason: "none" };
        const heard = streams.map((stream) =>
          stream.next("the result of r-2", (e) => {
            return e.event === "order" && (e.data as { order_id: string }).order_id === "r-2";
          }, 30_000)
        );
        let settled = false;
        Promise.allSettled(heard).then(() => settled = true);
        await waitFor(async () => {
          await stack.publish("inventory.failed", JSON.stringify(body));
          return settled;
        }, { intervalMs: 500, timeoutMs: 30_000, what: "both replicas to hear r-2" });
        for (const result of await Promise.all(heard)) {
          assert.equal((result.data as { status: string }).status, "FAILED");
        }
      },
    });

    await t.step(
      "a kitchen move and a cancel reach the student's stream on both replicas",
      async () => {
        const lines = [{ item: "Coffee", qty: 1 }, { item: "Tea", qty: 2 }];
        for (
          const [routingKey, body, status] of [
            ["order.status_changed", {
              order_id: "r-3",
              student_id: "R1",
              lines,
              status: "READY",
              previous: "PREPARING",
              changed_at: new Date().toISOString(),
            }, "READY"],
            ["order.cancelled", {
              order_id: "r-4",
              student_id: "R1",
              lines,
              cancelled_by: "staff",
              reason: "out of tea",
              previous: "RESERVED",
            }, "CANCELLED"],
          ] as const
        ) {
          const heard = streams.map((stream) =>
            stream.next(`${status} of ${body.order_id}`, (e) => {
              return e.event === "order" &&
                (e.data as { order_id: string }).order_id === body.order_id;
            })
          );
          await stack.publish(routingKey, JSON.stringify(body));
          for (const result of await Promise.all(heard)) {
            const order = result.data as { status: string; lines: unknown };
            assert.equal(order.status, status);
            assert.deepEqual(order.lines, lines);
          }
        }
      },
    );

    await t.step("a replica stops with its streams open, and ends them", async () => {
      await Promise.all(replicas.map((replica) => replica.shutdown()));
      replicas.length = 0;
      for (const stream of streams) assert.ok(await stream.ended(), "the stream ended");
    });
  } finally {
    for (const stream of streams) await stream.cancel();
    for (const replica of replicas) await replica.shutdown();
    await stack.dispose();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
