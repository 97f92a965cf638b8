/**
 * A student hears of each status once, on a real broker and on both store engines: inventory
 * results, cancels and kitchen moves are published straight onto `orders_exchange`, each several
 * times and all shuffled together, and the notification service records one notification per
 * order and status told of, in words that name the order's lines; `PREPARING` and `COLLECTED`
 * record nothing; on PostgreSQL two replicas share the copies. (A reservation is told only if it
 * came before the order's cancel, so the one the cancelled order was told of goes first.) Those events are made up for
 * orders no order service knows, so only the notification service runs. Then the same through
 * the order service's own moves (`POST /orders/{id}/status` and `/cancel`), each made twice, and
 * a READY order left to expire.
 */
import assert from "node:assert/strict";
import { signToken } from "@campus/shared/auth";
import { REASON_HEADER } from "@campus/shared/consumer";
import { events, type EventType } from "@campus/shared/events";
import { INTEGRATION, Stack, type StackOptions } from "./stack.ts";
import { getJson, listNotifications, type NotificationView, readiness } from "./client.ts";
import { waitFor } from "./poll.ts";
import { publishRaw } from "./raw_amqp.ts";

/** How often each event is published. */
const COPIES = 3;

const cart = [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }];
const CHANGED_AT = "2026-01-01T12:00:00.000Z";

/** An event as published: its type, and its flat body. */
type Published = { type: EventType; body: Record<string, unknown> };

const reserved = (order: Order): Published => ({
  type: "InventoryReserved",
  body: { ...order, lines: order.lines.map((line) => ({ ...line, remaining: 5 })) },
});
const failed = (order: Order, reason: string): Published => ({
  type: "InventoryFailed",
  body: { ...order, reason },
});
const moved = (order: Order, previous: string, status: string): Published => ({
  type: "OrderStatusChanged",
  body: { ...order, status, previous, changed_at: CHANGED_AT },
});
const cancelled = (order: Order, previous: string, by: string, reason?: string): Published => ({
  type: "OrderCancelled",
  body: { ...order, previous, cancelled_by: by, ...(reason ? { reason } : {}) },
});

type Order = { order_id: string; student_id: string; lines: { item: string; qty: number }[] };

/**
 * The orders of one run, each with the events its life would publish and what its student must
 * have been told, exactly. `first` are told before the rest is published: a reservation the
 * student heard of before the order was cancelled (one arriving after the cancel is not told).
 */
function scenario(prefix: string) {
  const order = (name: string, student_id: string, lines = cart): Order => ({
    order_id: `${prefix}-${name}`,
    student_id,
    lines,
  });
  const collected = order("collected", "N1");
  const expired = order("expired", "N2");
  const classic = { ...order("classic", "N3", [{ item: "Tea", qty: 1 }]), item: "Tea", qty: 1 };
  const refused = order("refused", "N4", [{ item: "Soup", qty: 5 }, { item: "Burger", qty: 1 }]);
  const staffCancel = order("staff-cancel", "N5");
  const kitchenOnly = order("kitchen-only", "N6");
  const id = (o: Order) => `(order ${o.order_id})`;
  const lines = "2 x Burger, 1 x Coffee";
  return {
    first: [reserved(classic)],
    events: [
      // Through the kitchen, recalled once (READY twice), and collected.
      reserved(collected),
      moved(collected, "RESERVED", "PREPARING"),
      moved(collected, "PREPARING", "READY"),
      moved(collected, "READY", "PREPARING"),
      moved(collected, "PREPARING", "READY"),
      moved(collected, "READY", "COLLECTED"),
      // Ready, never collected.
      reserved(expired),
      moved(expired, "RESERVED", "PREPARING"),
      moved(expired, "PREPARING", "READY"),
      moved(expired, "READY", "EXPIRED"),
      // A classic one-line order the student cancelled once reserved.
      reserved(classic),
      cancelled(classic, "RESERVED", "student"),
      // A refused cart.
      failed(refused, "Soup: 5 requested, 3 left"),
      // Cancelled by staff before inventory decided.
      cancelled(staffCancel, "PLACED", "staff", "the fryer is broken"),
      // Only the kitchen's own moves: nothing to tell (its RESERVED is not published here).
      moved(kitchenOnly, "RESERVED", "PREPARING"),
      moved(kitchenOnly, "PREPARING", "COLLECTED"),
    ],
    told: new Map<string, [NotificationView["outcome"], string][]>([
      [collected.order_id, [
        ["RESERVED", `Hi N1, your order of ${lines} is confirmed ${id(collected)}.`],
        ["READY", `Hi N1, your order of ${lines} is ready to collect ${id(collected)}.`],
      ]],
      [expired.order_id, [
        ["RESERVED", `Hi N2, your order of ${lines} is confirmed ${id(expired)}.`],
        ["READY", `Hi N2, your order of ${lines} is ready to collect ${id(expired)}.`],
        [
          "EXPIRED",
          `Sorry N2, your order of ${lines} was not collected in time and has expired ${
            id(expired)
          }.`,
        ],
      ]],
      [classic.order_id, [
        ["RESERVED", `Hi N3, your order of 1 x Tea is confirmed ${id(classic)}.`],
        ["CANCELLED", `Hi N3, your order of 1 x Tea is cancelled, as you asked ${id(classic)}.`],
      ]],
      [refused.order_id, [[
        "FAILED",
        "Sorry N4, your order of 5 x Soup, 1 x Burger could not be completed: " +
        `Soup: 5 requested, 3 left ${id(refused)}.`,
      ]]],
      [staffCancel.order_id, [[
        "CANCELLED",
        `Sorry N5, the kitchen cancelled your order of ${lines}: the fryer is broken ${
          id(staffCancel)
        }.`,
      ]]],
      [kitchenOnly.order_id, []],
    ]),
  };
}

/** `COPIES` of every event, shuffled together (Fisher-Yates). */
function shuffledCopies(published: Published[]): Published[] {
  const all = published.flatMap((event) => Array.from({ length: COPIES }, () => event));
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all;
}

/** The work queue of notification each event type reaches. */
const QUEUE_OF: Partial<Record<EventType, string>> = {
  InventoryReserved: "inventory_reserved",
  InventoryFailed: "inventory_failed",
  OrderStatusChanged: "order_updates",
  OrderCancelled: "order_updates",
};

for (
  const [engine, options] of [
    ["SQLite", { store: "sqlite" }],
    ["PostgreSQL, two notification replicas", { store: "postgres", replicas: { notification: 2 } }],
  ] as [string, StackOptions][]
) {
  Deno.test(`a student hears of each status once (${engine})`, INTEGRATION, async (t) => {
    const stack = await Stack.start({ ...options, without: ["order", "inventory"] });
    const bytes = (text: string) => new TextEncoder().encode(text);
    /** Publishes each event on orders_exchange with its routing key and envelope. */
    const publishAll = async (published: Published[]) => {
      for (const { type, body } of published) {
        await publishRaw(
          stack.backend.amqpUrl,
          "orders_exchange",
          events[type].routingKey,
          bytes(JSON.stringify(body)),
          {
            messageId: bytes(crypto.randomUUID()),
            correlationId: bytes(String(body.order_id)),
            type: bytes(type),
          },
        );
      }
    };
    const replicas = Array.from({ length: stack.replicasOf("notification") }, (_, r) => r);
    /** Waits until notification is connected, its queues declared, before publishing to them. */
    const ready = async () => {
      for (const replica of replicas) {
        await waitFor(
          async () => (await readiness(stack, "notification", replica)).status === 200,
          { what: `notification replica ${replica} /ready to answer 200` },
        );
      }
    };
    /** Messages of `queue` the notification replicas handled and committed since they started. */
    const consumed = async (queue: string) => {
      let total = 0;
      for (const replica of replicas) {
        const res = await fetch(stack.url("notification", "/metrics", replica));
        const line = (await res.text()).split("\n").find((l) =>
          l.startsWith(`campus_messages_consumed_total{queue="${queue}"}`)
        );
        total += line ? Number(line.split(" ").at(-1)) : 0;
      }
      return total;
    };
    /** Waits until notification handled every copy it was sent, per queue. */
    const handledAll = async (published: Published[]) => {
      const sent = new Map<string, number>();
      for (const { type } of published) {
        const queue = QUEUE_OF[type]!;
        sent.set(queue, (sent.get(queue) ?? 0) + 1);
      }
      for (const [queue, count] of sent) {
        await waitFor(async () => (await consumed(queue)) === count, {
          what: `notification to handle all ${count} messages of ${queue}`,
        });
      }
    };
    /** What each order's student was told, as GET /notifications lists it. */
    const toldOf = async (order_id: string) =>
      (await listNotifications(stack, order_id)).map((n) => [n.outcome, n.message]).sort();

    try {
      const { first, events: lifeEvents, told } = scenario(`once-${options.store}`);
      const copies = shuffledCopies(lifeEvents);

      await t.step("every copy of every event, shuffled, gives one notification each", async () => {
        await ready();
        await publishAll(first);
        await handledAll(first);
        await publishAll(copies);
        await handledAll([...first, ...copies]);
        for (const [order_id, expected] of told) {
          assert.deepEqual(await toldOf(order_id), [...expected].sort(), `told of ${order_id}`);
        }
        const all = await listNotifications(stack);
        const expectedCount = [...told.values()].reduce((n, e) => n + e.length, 0);
        assert.equal(all.length, expectedCount, JSON.stringify(all.map((n) => n.message)));
        for (const note of all) {
          assert.match(note.sent_at, /^\d{4}-\d\d-\d\dT/, "sent_at is an ISO time");
          assert.ok(note.student_id.startsWith("N"), note.student_id);
        }
        assert.equal(await stack.queueDepth("order_updates_dlq"), 0, "nothing dead-lettered");
      });

      await t.step("PREPARING and COLLECTED alone record nothing", async () => {
        assert.deepEqual(await toldOf(`once-${options.store}-kitchen-only`), []);
        const { status, body } = await getJson<unknown[]>(
          stack.url("notification", `/notifications?student_id=N6`),
        );
        assert.equal(status, 200);
        assert.deepEqual(body, []);
      });

      await t.step("after a restart, the same events once more record nothing new", async () => {
        const before = await listNotifications(stack);
        for (const replica of replicas) await stack.stop("notification", replica);
        for (const replica of replicas) await stack.start("notification", replica);
        await ready();
        const again = shuffledCopies(lifeEvents);
        await publishAll(again);
        await handledAll(again);
        assert.deepEqual(await listNotifications(stack), before, "the same notifications");
      });

      await t.step(
        "a kitchen move the contract refuses is dead-lettered with its reason",
        async () => {
          const order = { order_id: "once-bad", student_id: "N7", lines: cart };
          await publishAll([moved(order, "RESERVED", "BURNT")]);
          await waitFor(async () => (await stack.queueDepth("order_updates_dlq")) === 1, {
            what: "the bad move in order_updates_dlq",
          });
          const [dead] = await stack.broker.take("order_updates_dlq", 10);
          assert.match(
            String(dead.properties.headers[REASON_HEADER]),
            /^invalid OrderStatusChanged: status: status must be one of PREPARING, READY/,
          );
          assert.deepEqual(await listNotifications(stack, "once-bad"), []);
        },
      );
    } finally {
      await stack.dispose();
    }
  });
}

const SECRET = "notifications-once-secret-0123456789abcdef";
/** Short, so that a READY order expires within the suite's deadlines. */
const PICKUP_WINDOW_MS = 5000;

for (
  const [engine, options] of [
    ["SQLite", { store: "sqlite" }],
    ["PostgreSQL", { store: "postgres" }],
  ] as [string, StackOptions][]
) {
  Deno.test(
    `the order service's moves tell each status once, repeats told nothing (${engine})`,
    INTEGRATION,
    async (t) => {
      const stack = await Stack.start({
        ...options,
        menu: { Burger: 50, Coffee: 50, Tea: 50 },
        env: { AUTH_SECRET: SECRET, PICKUP_WINDOW_MS: String(PICKUP_WINDOW_MS) },
      });
      const staff = await signToken(SECRET, { sub: "chef", role: "staff", ttlSeconds: 600 });
      const student = (sub: string) => signToken(SECRET, { sub, role: "student", ttlSeconds: 600 });
      /** A POST with a bearer token; the status and JSON answer. */
      const post = async (path: string, token: string, body?: unknown) => {
        const res = await fetch(stack.url("order", path), {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: res.status, body: await res.json() as Record<string, unknown> };
      };
      /** The order as staff reads it. */
      const orderOf = async (id: string) => {
        const res = await fetch(stack.url("order", `/orders/${id}`), {
          headers: { authorization: `Bearer ${staff}` },
        });
        return await res.json() as { status: string; lines: unknown };
      };
      const statusIs = (id: string, status: string) =>
        waitFor(async () => (await orderOf(id)).status === status, {
          timeoutMs: 30_000,
          what: `order ${id} to be ${status}`,
        });
      /** Places an order as `sub` and waits until inventory reserved it. */
      const reservedOrder = async (sub: string, body: Record<string, unknown>) => {
        const placed = await post("/order", await student(sub), { student_id: sub, ...body });
        assert.equal(placed.status, 201, JSON.stringify(placed.body));
        const id = String(placed.body.order_id);
        await statusIs(id, "RESERVED");
        return id;
      };
      /** Makes a move twice: the first answers 200 in the new status, the repeat 200 unchanged. */
      const moveTwice = async (path: string, token: string, body: unknown, status: string) => {
        for (const attempt of ["first", "repeat"]) {
          const answer = await post(path, token, body);
          assert.equal(answer.status, 200, `${attempt} ${path}: ${JSON.stringify(answer.body)}`);
          assert.equal(answer.body.status, status, `${attempt} ${path}`);
        }
      };
      const kitchen = (id: string, status: string) =>
        moveTwice(`/orders/${id}/status`, staff, { status }, status);
      /** What each order's student was told, as staff lists it. */
      const toldOf = async (id: string) => {
        const res = await fetch(stack.url("notification", `/notifications?order_id=${id}`), {
          headers: { authorization: `Bearer ${staff}` },
        });
        const notes = await res.json() as NotificationView[];
        return notes.map((n) => [n.outcome, n.message]).sort();
      };
      const lines = "2 x Burger, 1 x Coffee";
      const cart = { lines: [{ item: "burger", qty: 2 }, { item: "Coffee", qty: 1 }] };
      try {
        const told = new Map<string, string[][]>();
        await t.step("collected after a recall: RESERVED and READY, once each", async () => {
          const id = await reservedOrder("K1", cart);
          for (const status of ["PREPARING", "READY", "PREPARING", "READY", "COLLECTED"]) {
            await kitchen(id, status);
          }
          told.set(id, [
            ["READY", `Hi K1, your order of ${lines} is ready to collect (order ${id}).`],
            ["RESERVED", `Hi K1, your order of ${lines} is confirmed (order ${id}).`],
          ]);
        });
        await t.step("never collected: RESERVED, READY and EXPIRED", async () => {
          const id = await reservedOrder("K2", cart);
          await kitchen(id, "PREPARING");
          await kitchen(id, "READY");
          await statusIs(id, "EXPIRED");
          told.set(id, [
            [
              "EXPIRED",
              `Sorry K2, your order of ${lines} was not collected in time and has expired ` +
              `(order ${id}).`,
            ],
            ["READY", `Hi K2, your order of ${lines} is ready to collect (order ${id}).`],
            ["RESERVED", `Hi K2, your order of ${lines} is confirmed (order ${id}).`],
          ]);
        });
        await t.step("cancelled twice by the student: one CANCELLED", async () => {
          const id = await reservedOrder("K3", { item: "Tea", qty: 1 });
          await moveTwice(`/orders/${id}/cancel`, await student("K3"), undefined, "CANCELLED");
          told.set(id, [
            ["CANCELLED", `Hi K3, your order of 1 x Tea is cancelled, as you asked (order ${id}).`],
            ["RESERVED", `Hi K3, your order of 1 x Tea is confirmed (order ${id}).`],
          ]);
        });
        await t.step(
          "cancelled twice by staff with a reason: one CANCELLED naming it",
          async () => {
            const id = await reservedOrder("K4", cart);
            const reason = { reason: "the fryer is broken" };
            await moveTwice(`/orders/${id}/cancel`, staff, reason, "CANCELLED");
            told.set(id, [
              [
                "CANCELLED",
                `Sorry K4, the kitchen cancelled your order of ${lines}: the fryer is broken ` +
                `(order ${id}).`,
              ],
              ["RESERVED", `Hi K4, your order of ${lines} is confirmed (order ${id}).`],
            ]);
          },
        );
        await t.step(
          "each student was told each status once, in words naming the lines",
          async () => {
            // Every move made once is one event: 5 + 3 + 1 + 1 on order_updates.
            await waitFor(async () => {
              const res = await fetch(stack.url("notification", "/metrics"), {
                headers: { authorization: `Bearer ${staff}` },
              });
              const line = (await res.text()).split("\n").find((l) =>
                l.startsWith('campus_messages_consumed_total{queue="order_updates"}')
              );
              return line?.endsWith(" 10");
            }, { what: "notification to handle the 10 kitchen moves and cancels" });
            for (const [id, expected] of told) {
              await waitFor(
                async () => JSON.stringify(await toldOf(id)) === JSON.stringify(expected),
                { what: `the notifications of ${id}: ${JSON.stringify(expected)}` },
              );
            }
            const res = await fetch(stack.url("notification", "/notifications"), {
              headers: { authorization: `Bearer ${staff}` },
            });
            const all = await res.json() as NotificationView[];
            assert.equal(all.length, 9, JSON.stringify(all.map((n) => n.message)));
            assert.equal(await stack.queueDepth("order_updates_dlq"), 0, "nothing dead-lettered");
          },
        );
      } finally {
        await stack.dispose();
      }
    },
  );
}
