/**
 * The kitchen board's queue depths on quorum queues: the board reads every work queue's and
 * DLQ's depth without declaring any queue (a declaration that differs from the services' would
 * be refused, or on a fresh broker make a queue of the wrong type), and the depths follow the
 * messages that are dead-lettered.
 */
import assert from "node:assert/strict";
import { dlqOf, WORK_QUEUES } from "@campus/shared/topology";
import type { Board, QueueDepth } from "../services/order/pages/board.ts";
import { EventStreamReader } from "./event_stream_client.ts";
import { INTEGRATION, Stack } from "./stack.ts";

Deno.test("the board shows queue depths on quorum queues", INTEGRATION, async (t) => {
  const stack = await Stack.start({ env: { QUEUE_TYPE: "quorum" } });
  let board: EventStreamReader | undefined;
  try {
    board = new EventStreamReader(await fetch(stack.url("order", "/board/events")));
    /** The next board whose depths satisfy `match`; a timeout says what the last board showed. */
    const boardWhere = async (what: string, match: (queues: QueueDepth[]) => boolean) => {
      let last: Board | undefined;
      try {
        const event = await board!.next(what, (e) => {
          if (e.event !== "board") return false;
          last = e.data as Board;
          return last.queues !== null && match(last.queues);
        }, 30_000);
        return (event.data as Board).queues!;
      } catch (err) {
        throw new Error(
          `${(err as Error).message}; the last board had queues ${JSON.stringify(last?.queues)}` +
            ` (${last?.queues_error ?? "no error"})`,
        );
      }
    };

    await t.step("every work queue and DLQ is listed, all empty", async () => {
      const queues = await boardWhere("a board with queue depths", () => true);
      assert.deepEqual(
        queues,
        WORK_QUEUES.map(({ name }) => ({ queue: name, depth: 0, dlq: dlqOf(name), dlq_depth: 0 })),
      );
    });

    await t.step("poison dead-lettered by each consumer shows in its DLQ's depth", async () => {
      // Not JSON: inventory dead-letters it from order_placed and order_cancelled; notification
      // from inventory_reserved, inventory_failed and (twice: order.cancelled is bound there too)
      // order_updates; order (twice) from order_status.
      await stack.publish("order.placed", "not json");
      await stack.publish("order.cancelled", "not json");
      await stack.publish("inventory.reserved", "not json");
      await stack.publish("inventory.failed", "not json");
      await stack.publish("order.status_changed", "not json");
      const expected: Record<string, number> = {
        order_placed_dlq: 1,
        order_cancelled_dlq: 1,
        inventory_reserved_dlq: 1,
        inventory_failed_dlq: 1,
        order_updates_dlq: 2,
        order_status_dlq: 2,
      };
      const queues = await boardWhere(
        "a board with the poison in every DLQ",
        (queues) => queues.every((q) => q.dlq_depth === (expected[q.dlq] ?? 0)),
      );
      for (const q of queues) {
        assert.equal(q.dlq_depth, await stack.queueDepth(q.dlq), `${q.dlq} as the broker says`);
      }
    });

    await t.step("a work queue's depth shows while its consumer is away", async () => {
      await stack.stop("inventory");
      await stack.publish(
        "order.placed",
        JSON.stringify({ order_id: "q-1", item: "Coffee", qty: 1, student_id: "Q1" }),
      );
      const queues = await boardWhere(
        "a board with one order waiting in order_placed",
        (queues) => queues.find((q) => q.queue === "order_placed")?.depth === 1,
      );
      assert.equal(queues.find((q) => q.queue === "order_placed")?.dlq_depth, 1);
      await stack.start("inventory");
      await boardWhere(
        "a board with order_placed drained again",
        (queues) => queues.find((q) => q.queue === "order_placed")?.depth === 0,
      );
    });
  } finally {
    await board?.cancel();
    await stack.dispose();
  }
});
