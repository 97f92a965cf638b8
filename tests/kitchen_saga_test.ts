/**
 * The saga across the three services, on a real broker and both store engines: a cancel gives
 * a reservation back exactly once, a cancel made while inventory is down leaves its later
 * decision taking nothing, cancels racing their reservations leave stock where it started, and
 * replayed or late reservations change nothing anywhere.
 */
import assert from "node:assert/strict";
import { OWN_BROKER_NODE, Stack, type StackOptions } from "./stack.ts";
import {
  cancelOrder,
  type CartRequest,
  getOrder,
  listNotifications,
  type MoveAnswer,
  type OrderStatus,
  type OrderView,
  placeCart,
  placeOrder,
  stockLevels,
} from "./client.ts";
import { checkLedger } from "./ledger.ts";
import { waitFor } from "./poll.ts";
import { publishRaw } from "./raw_amqp.ts";

const MENU = { Burger: 500, Coffee: 500, Pizza: 500, Salad: 500 };
const PAIRS = 100;
/** Queues whose messages can still change an order, its stock or its notifications. */
const SAGA_QUEUES = [
  "order_placed",
  "order_cancelled",
  "inventory_reserved",
  "inventory_failed",
  "order_updates",
  "order_status",
];

for (
  const [engine, options] of [
    ["SQLite", {}],
    ["PostgreSQL", { store: "postgres" }],
  ] as [string, StackOptions][]
) {
  Deno.test(
    `cancels give stock back once and late events change nothing (${engine})`,
    OWN_BROKER_NODE,
    async (t) => {
      const stack = await Stack.start({ ...options, menu: MENU });
      const saga = new SagaProbe(stack);
      /** The order cancelled while inventory was down: never reserved. */
      let neverReserved: OrderView | undefined;
      try {
        await t.step(
          "a cancel after reservation, and a second, give the stock back once",
          async () => {
            const before = await stockLevels(stack);
            const cart: CartRequest = {
              student_id: "saga-after",
              lines: [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }],
            };
            const placed = await placeCart(stack, cart);
            await saga.status(placed.order_id, "RESERVED");
            assert.deepEqual(
              await stockLevels(stack),
              { ...before, Burger: before.Burger - 2, Coffee: before.Coffee - 1 },
              "the reservation took every line of the cart",
            );

            const first = await cancelOrder(stack, placed.order_id);
            assertMove(first, 200, "CANCELLED", "the first cancel");
            const second = await cancelOrder(stack, placed.order_id);
            assertMove(second, 200, "CANCELLED", "the second cancel");
            assert.equal(
              second.body.updated_at,
              first.body.updated_at,
              "the second changed nothing",
            );

            await saga.released(placed.order_id);
            assert.deepEqual(await stockLevels(stack), before, "the stock is back");

            // The same order.cancelled again, as a redelivery would bring it: stock moves once.
            await saga.publish("order.cancelled", {
              order_id: placed.order_id,
              student_id: cart.student_id,
              lines: cart.lines,
              cancelled_by: "student",
              previous: "RESERVED",
            });
            await saga.quiet();
            assert.deepEqual(
              await stockLevels(stack),
              before,
              "a repeated cancel gave nothing more",
            );
            assert.deepEqual(
              await saga.toldOnceEach(placed.order_id, ["CANCELLED", "RESERVED"]),
              ["CANCELLED", "RESERVED"],
            );
            assert.equal((await getOrder(stack, placed.order_id)).status, "CANCELLED");
          },
        );

        await t.step("a cancel during reservation, inventory stopped then started", async () => {
          const before = await stockLevels(stack);
          await stack.stop("inventory");
          let placed: OrderView;
          try {
            placed = await placeCart(stack, {
              student_id: "saga-during",
              lines: [{ item: "Pizza", qty: 1 }, { item: "Salad", qty: 2 }],
            });
            const cancelled = await cancelOrder(stack, placed.order_id);
            assertMove(cancelled, 200, "CANCELLED", "the cancel while inventory is down");
          } finally {
            await stack.start("inventory");
          }

          neverReserved = await saga.released(placed.order_id);
          await saga.quiet();
          assert.equal(neverReserved.status, "CANCELLED", "the order stays CANCELLED");
          assert.equal(neverReserved.reserved_at, undefined, "it was never reserved");
          assert.deepEqual(await stockLevels(stack), before, "inventory's decision took nothing");
          assert.deepEqual(
            await saga.toldOnceEach(placed.order_id, ["CANCELLED"]),
            ["CANCELLED"],
            "the student hears CANCELLED once and never RESERVED",
          );
        });

        await t.step("a replayed inventory.reserved and a late one change nothing", async () => {
          // Notification held back, so the reservation waits in its queue to be copied.
          await stack.stop("notification");
          let placed: OrderView;
          let original: CopiedMessage;
          try {
            placed = await placeOrder(stack, {
              item: "Coffee",
              qty: 2,
              student_id: "saga-replay",
            });
            await saga.status(placed.order_id, "RESERVED");
            original = await saga.copyReservation(placed.order_id);
          } finally {
            await stack.start("notification");
          }
          await saga.toldOnceEach(placed.order_id, ["RESERVED"]);

          const replay = async (what: string) => {
            const order = await getOrder(stack, placed.order_id);
            const stock = await stockLevels(stack);
            const told = await listNotifications(stack, placed.order_id);
            await publishRaw(
              stack.backend.amqpUrl,
              "orders_exchange",
              original.routingKey,
              original.body,
              original.properties,
            );
            await saga.quiet();
            assert.deepEqual(await getOrder(stack, placed.order_id), order, `${what}: the order`);
            assert.deepEqual(await stockLevels(stack), stock, `${what}: the stock`);
            assert.deepEqual(
              await listNotifications(stack, placed.order_id),
              told,
              `${what}: the notifications`,
            );
          };

          await replay("a replayed inventory.reserved of a reserved order");
          assert.equal((await getOrder(stack, placed.order_id)).status, "RESERVED");

          assertMove(await cancelOrder(stack, placed.order_id), 200, "CANCELLED", "the cancel");
          await saga.released(placed.order_id);
          await saga.toldOnceEach(placed.order_id, ["CANCELLED", "RESERVED"]);
          await replay("the same inventory.reserved, late, for the cancelled order");
          assert.equal((await getOrder(stack, placed.order_id)).status, "CANCELLED");

          // An inventory.reserved for the order inventory never reserved: a late, stray one.
          const never = neverReserved;
          assert.ok(never, "the order cancelled during reservation is known (previous step)");
          const stock = await stockLevels(stack);
          const order = await getOrder(stack, never.order_id);
          await saga.publish("inventory.reserved", {
            order_id: never.order_id,
            student_id: never.student_id,
            lines: never.lines.map((line) => ({ ...line, remaining: stock[line.item] - line.qty })),
          });
          await saga.quiet();
          assert.deepEqual(await getOrder(stack, never.order_id), order, "the order is unchanged");
          assert.deepEqual(await stockLevels(stack), stock, "the stock is unchanged");
          assert.deepEqual(
            await saga.toldOnceEach(never.order_id, ["CANCELLED"]),
            ["CANCELLED"],
            "the student of the late reservation still heard only CANCELLED",
          );
        });

        await t.step(`${PAIRS} place-then-cancel pairs racing the reservation`, async () => {
          const before = await stockLevels(stack);
          const answers: string[] = [];
          const ids: string[] = [];
          const problems: string[] = [];
          let next = 0;
          const worker = async () => {
            while (next < PAIRS) {
              const i = next++;
              const lines = i % 2
                ? [{ item: "Burger", qty: 1 + (i % 3) }]
                : [{ item: "Salad", qty: 1 }, { item: "Pizza", qty: 1 + (i % 2) }];
              const placed = await placeCart(stack, { student_id: `race-${i}`, lines });
              ids.push(placed.order_id);
              const cancelled = await cancelOrder(stack, placed.order_id);
              answers.push(`${cancelled.status} ${cancelled.body.status}`);
              if (cancelled.status !== 200 || cancelled.body.status !== "CANCELLED") {
                problems.push(`${placed.order_id}: ${JSON.stringify(cancelled.body)}`);
              }
            }
          };
          await Promise.all(Array.from({ length: 10 }, worker));
          assert.deepEqual(problems, [], "every cancel answered 200 with the order CANCELLED");
          assert.equal(answers.length, PAIRS);

          const ledger = await checkLedger(stack, { stockBefore: before, orderIds: ids });
          assert.deepEqual(
            ledger.problems,
            [],
            `the ledgers disagree: ${ledger.problems.join("; ")}`,
          );
          assert.equal(ledger.cancelled, PAIRS, "every order ended CANCELLED, its stock released");
          assert.equal(ledger.dead_lettered, 0, "nothing was dead-lettered");
          assert.deepEqual(await stockLevels(stack), before, "stock is exactly back to the start");
        });
      } finally {
        await stack.dispose();
      }
    },
  );
}

/** Fails unless a move answered `code` with the order in `status`. */
function assertMove(answer: MoveAnswer, code: number, status: OrderStatus, what: string) {
  assert.equal(
    answer.status,
    code,
    `${what} answered ${answer.status}: ${JSON.stringify(answer.body)}`,
  );
  assert.equal(answer.body.status, status, `${what}: ${JSON.stringify(answer.body)}`);
}

/** A message as it was delivered, to be published again byte for byte. */
interface CopiedMessage {
  routingKey: string;
  body: Uint8Array;
  properties: { messageId?: Uint8Array; correlationId?: Uint8Array; type?: Uint8Array };
}

/** What the saga steps wait for and look at, on one stack. */
class SagaProbe {
  constructor(private readonly stack: Stack) {}

  /** Waits until the order has `status`; returns it. */
  status(orderId: string, status: OrderStatus): Promise<OrderView> {
    return waitFor(async () => {
      const order = await getOrder(this.stack, orderId);
      return order.status === status ? order : undefined;
    }, { what: `order ${orderId} to be ${status}` });
  }

  /** Waits until the order service heard that a cancelled order's stock is back. */
  released(orderId: string): Promise<OrderView> {
    return waitFor(async () => {
      const order = await getOrder(this.stack, orderId);
      return order.status === "CANCELLED" && order.stock_released_at ? order : undefined;
    }, { timeoutMs: 30_000, what: `order ${orderId} CANCELLED with stock_released_at set` });
  }

  /**
   * Waits until the student of `orderId` was told each of `outcomes`, and every message that
   * could tell them more was handled; returns the outcomes told, sorted, each required once.
   */
  async toldOnceEach(orderId: string, outcomes: string[]): Promise<string[]> {
    await waitFor(async () => {
      const told = new Set((await listNotifications(this.stack, orderId)).map((n) => n.outcome));
      return outcomes.every((o) => told.has(o as never));
    }, { what: `notifications ${outcomes.join(", ")} of order ${orderId}` });
    await this.quiet();
    return (await listNotifications(this.stack, orderId)).map((n) => n.outcome).sort();
  }

  /**
   * Waits until no message that moves an order, its stock or its notifications is queued or
   * being handled (unacknowledged ones count), and inventory's and order's outboxes are empty.
   */
  async quiet(): Promise<void> {
    await waitFor(async () => {
      for (const service of ["order", "inventory"] as const) {
        const ready = await fetch(this.stack.url(service, "/ready"));
        const body = await ready.json() as { outbox_pending?: number };
        if (body.outbox_pending !== 0) return false;
      }
      const counts = await this.#messages();
      return SAGA_QUEUES.every((q) => (counts.get(q) ?? 0) === 0);
    }, { timeoutMs: 30_000, what: `no message left in ${SAGA_QUEUES.join(", ")} nor an outbox` });
  }

  /** Publishes a body by hand on `orders_exchange`, confirmed, as a redelivery would arrive. */
  async publish(routingKey: string, body: Record<string, unknown>): Promise<void> {
    const orderId = new TextEncoder().encode(String(body.order_id));
    await publishRaw(
      this.stack.backend.amqpUrl,
      "orders_exchange",
      routingKey,
      new TextEncoder().encode(JSON.stringify(body)),
      { messageId: new TextEncoder().encode(crypto.randomUUID()), correlationId: orderId },
    );
  }

  /** Copies the `inventory.reserved` of an order off `inventory_reserved`, leaving it there. */
  async copyReservation(orderId: string): Promise<CopiedMessage> {
    const found = await waitFor(async () => {
      const taken = await this.stack.broker.take("inventory_reserved", 1000, { remove: false });
      return taken.find((m) => {
        const body = JSON.parse(new TextDecoder().decode(m.body)) as { order_id?: string };
        return body.order_id === orderId;
      });
    }, { what: `the inventory.reserved of ${orderId} queued in inventory_reserved` });
    const bytes = (value: unknown) =>
      typeof value === "string" ? new TextEncoder().encode(value) : undefined;
    return {
      routingKey: found.routingKey,
      body: found.body,
      properties: {
        messageId: bytes(found.properties.messageId),
        correlationId: bytes(found.properties.correlationId),
        type: bytes(found.properties.type),
      },
    };
  }

  /** Messages in each queue, unacknowledged ones included. */
  async #messages(): Promise<Map<string, number>> {
    const out = await this.stack.rabbitmqctl(
      "list_queues",
      "-q",
      "--no-table-headers",
      "name",
      "messages",
    );
    return new Map(
      out.split("\n").map((l) => l.trim().split(/\s+/)).filter((f) => f.length === 2).map((
        [name, n],
      ) => [name, Number(n)]),
    );
  }
}
