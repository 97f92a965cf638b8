import assert from "node:assert/strict";
import {
  type ConsumerOptions,
  createConsumer,
  type DeliveryCounter,
  ERROR_ID_HEADER,
  LOCK_WAITS_HEADER,
  lockWaitDelay,
  MAX_LOCK_WAIT_DELAY_MS,
  REASON_HEADER,
  RETRY_HEADER,
  WAITING_SINCE_HEADER,
} from "./consumer.ts";
import { LockTimeout, TransactionConflict } from "../storage/database.ts";
import { DatabaseWaits } from "../storage/database_waits.ts";
import { openDeliveryCounter } from "./delivery_counter.ts";
import { InvalidMessage } from "./contract.ts";
import { createLogger } from "../runtime/log.ts";
import { ServiceMetrics } from "../runtime/metrics.ts";
import { SqliteDatabase } from "../storage/sqlite.ts";
import { fakeDelivery, MemoryBus } from "./_memory_bus.ts";

/** What a test may set on the consumer; the bus and database are the in-memory kinds it inspects. */
type Overrides = Partial<Omit<ConsumerOptions, "bus" | "db">> & {
  bus?: MemoryBus;
  db?: SqliteDatabase;
};

/**
 * The consumer under test, with defaults for everything: a memory bus, a quiet logger, a fresh
 * in-memory database and its delivery counter, a handler that does nothing, 2 retries 250 ms
 * apart and at most 3 deliveries. Each test overrides only what it is about.
 */
async function setup(overrides: Overrides = {}) {
  const db = overrides.db ?? SqliteDatabase.open(":memory:", "test");
  const options = {
    bus: new MemoryBus(),
    log: createLogger("test", "error", () => {}),
    db,
    counter: overrides.counter ?? await openDeliveryCounter(db),
    handle: () => {},
    maxRetries: 2,
    retryDelayMs: 250,
    maxDeliveries: 3,
    ...overrides,
  };
  return { ...options, consume: createConsumer(options) };
}

/** A handler that refuses every message as poison. */
const poison = () => {
  throw new InvalidMessage("bad");
};

Deno.test("a handled message is acknowledged", async () => {
  const seen: unknown[] = [];
  const { bus, consume } = await setup({ handle: ({ body }) => void seen.push(body) });
  const delivery = fakeDelivery('{"a":1}');
  await consume([delivery]);
  assert.equal(delivery.settled, "acked");
  assert.deepEqual(seen, [{ a: 1 }]);
  assert.equal(bus.sent.length, 0);
});

Deno.test("poison is dead-lettered at once with its reason", async (t) => {
  const { bus, consume } = await setup({
    handle: () => {
      throw new InvalidMessage("invalid OrderPlaced: qty: qty must be at least 1");
    },
  });
  await t.step("not JSON", async () => {
    const delivery = fakeDelivery("{{{");
    await consume([delivery]);
    assert.equal(delivery.settled, "acked");
    const [dead] = bus.sent.splice(0);
    assert.equal(dead.queue, "order_placed_dlq");
    assert.match(String(dead.properties.headers?.[REASON_HEADER]), /^body is not JSON/);
    assert.equal(dead.body, "{{{", "the body is kept as it came");
  });
  await t.step("fails the schema", async () => {
    await consume([fakeDelivery('{"qty":-1}')]);
    const [dead] = bus.sent.splice(0);
    assert.match(String(dead.properties.headers?.[REASON_HEADER]), /qty must be at least 1/);
  });
  await t.step("too large", async () => {
    await consume([fakeDelivery("x".repeat(70_000))]);
    const [dead] = bus.sent.splice(0);
    assert.match(String(dead.properties.headers?.[REASON_HEADER]), /70000 bytes/);
  });
});

Deno.test("a failing handler is retried through the retry queue, then dead-lettered", async () => {
  const { bus, consume } = await setup({
    handle: () => {
      throw new Error("database is locked");
    },
  });
  await consume([fakeDelivery("{}")]);
  const [retry] = bus.sent.splice(0);
  assert.equal(retry.queue, "order_placed_retry");
  assert.equal(retry.properties.headers?.[RETRY_HEADER], 1);
  assert.equal(retry.properties.expiration, "250");
  assert.equal(retry.properties.headers?.["x-original-routing-key"], "order.placed");

  await consume([fakeDelivery("{}", { headers: { [RETRY_HEADER]: 2 } })]);
  const [dead] = bus.sent.splice(0);
  assert.equal(dead.queue, "order_placed_dlq");
  assert.equal(
    dead.properties.headers?.[REASON_HEADER],
    "failed after 3 attempts: database is locked",
  );
});

Deno.test("a message redelivered too often is dead-lettered without being handled", async () => {
  let handled = 0;
  const { bus, counter, consume } = await setup({ handle: () => void handled++ });
  // Two redeliveries that crashed the consumer before it could ack (deliveries 2 and 3)...
  assert.equal(await counter.bump("m1"), 2);
  assert.equal(await counter.bump("m1"), 3);
  // ...so the 4th is over the limit of 3 and goes to the DLQ unseen.
  const delivery = fakeDelivery("{}", { messageId: "m1", redelivered: true });
  await consume([delivery]);
  assert.equal(handled, 0, "not handled");
  assert.equal(delivery.settled, "acked");
  assert.match(String(bus.sent.at(-1)?.properties.headers?.[REASON_HEADER]), /delivered 4 times/);

  // A redelivery under the limit is handled, and its count forgotten once acknowledged.
  await consume([fakeDelivery("{}", { messageId: "m2", redelivered: true })]);
  assert.equal(handled, 1);
});

Deno.test("a dead letter's error id goes to the follow-up; its reason to the log and DLQ", async () => {
  const written: string[] = [];
  const followUps: { reason: string; errorId: string }[] = [];
  const { bus, consume } = await setup({
    log: createLogger("test", "info", (text) => void written.push(text)),
    handle: () => {
      throw new Error('relation "stock" does not exist');
    },
    onDeadLetter: (_body, reason, errorId) => void followUps.push({ reason, errorId }),
    maxRetries: 0,
  });
  await consume([fakeDelivery("{}", { correlationId: "o1" })]);
  await null; // the log writes a turn's lines at its end
  const [{ reason, errorId }] = followUps;
  assert.match(errorId, /^[0-9a-f]{8}$/);
  assert.equal(reason, 'failed after 1 attempts: relation "stock" does not exist');
  const [copy] = bus.sent;
  assert.equal(copy.properties.headers?.[ERROR_ID_HEADER], errorId);
  assert.equal(copy.properties.headers?.[REASON_HEADER], reason);
  const lines = written.join("").trimEnd().split("\n").map((l) => JSON.parse(l))
    .filter((l) => l.error_id === errorId);
  assert.equal(lines.length, 1, "one line names the error id");
  assert.equal(lines[0].level, "error");
  assert.equal(lines[0].order_id, "o1");
  assert.equal(lines[0].reason, reason);
});

Deno.test("a copy the broker does not take: the order's outcome first, then the DLX", async (t) => {
  for (
    const [name, handle, reason] of [
      ["dead-letter copy", poison, "bad"],
      ["retry copy", () => {
        throw new Error("locked");
      }, "failed after 1 attempts and could not be retried: locked"],
    ] as const
  ) {
    await t.step(name, async () => {
      const seen: string[] = [];
      const delivery = fakeDelivery("{}");
      const { bus, consume } = await setup({
        handle,
        onDeadLetter: (_body, why) => {
          seen.push(`${why} (settled: ${delivery.settled})`);
        },
      });
      bus.failNext = 1;
      await consume([delivery]);
      assert.deepEqual(seen, [`${reason} (settled: undefined)`]);
      assert.equal(delivery.settled, "rejected", "the queue's own dead-letter exchange takes it");
      assert.equal(bus.sent.length, 0);
    });
  }
});

Deno.test("a delivery whose copy failed with its connection is left for redelivery", async (t) => {
  const failing = async (bus: MemoryBus) => {
    const outcomes: string[] = [];
    const { consume } = await setup({
      bus,
      handle: poison,
      onDeadLetter: (_body, reason) => void outcomes.push(reason),
      maxRetries: 0,
    });
    return { outcomes, consume };
  };
  await t.step("the broker is gone", async () => {
    const bus = new MemoryBus();
    bus.connected = false;
    const { outcomes, consume } = await failing(bus);
    const delivery = fakeDelivery("{}");
    await consume([delivery]);
    assert.equal(delivery.settled, undefined, "unsettled: the bus hands it back to the broker");
    assert.deepEqual(outcomes, [], "no outcome for a message that comes back");
  });
  await t.step("its channel closed", async () => {
    const bus = new MemoryBus();
    bus.failNext = 1;
    const { outcomes, consume } = await failing(bus);
    const delivery = fakeDelivery("{}", { channelOpen: false });
    await consume([delivery]);
    assert.equal(delivery.settled, undefined);
    assert.deepEqual(outcomes, []);
  });
});

Deno.test("a redelivered message is forgotten with its effects, before the ack", async () => {
  const db = SqliteDatabase.open(":memory:", "test");
  const counter = await openDeliveryCounter(db);
  const steps: string[] = [];
  const watched: DeliveryCounter = {
    inHand: (work) => counter.inHand(work),
    bump: (key) => (steps.push("bump"), counter.bump(key)),
    forget: (
      key,
    ) => (steps.push(`forget (in its transaction: ${db.db.isTransaction})`), counter.forget(key)),
  };
  const { consume } = await setup({
    db,
    counter: watched,
    handle: () => void steps.push("handle"),
  });
  const delivery = fakeDelivery("{}", { messageId: "m3", redelivered: true });
  await consume([delivery]);
  assert.equal(delivery.settled, "acked");
  // The next delivery of the same batch may stop the process before the ack goes out; that
  // crash must not count against a message whose work is committed.
  assert.deepEqual(steps, ["bump", "handle", "forget (in its transaction: true)"]);
  assert.equal(await counter.bump("m3"), 2, "forgotten");
});

Deno.test("a redelivery is not counted while another one is in hand", async () => {
  const db = SqliteDatabase.open(":memory:", "test");
  const counter = await openDeliveryCounter(db);
  const steps: string[] = [];
  const watched: DeliveryCounter = {
    inHand: (work) => counter.inHand(work),
    bump: (key) => (steps.push(`bump ${key}`), counter.bump(key)),
    forget: (key) => (steps.push(`forget ${key}`), counter.forget(key)),
  };
  let release = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  let started = () => {};
  const inHand = new Promise<void>((resolve) => started = resolve);
  const { consume } = await setup({
    db,
    counter: watched,
    handle: async ({ messageId }) => {
      steps.push(`handle ${messageId}`);
      // m1's handler waits (as for the database) while m2 arrives in a batch of its own.
      if (messageId === "m1") {
        started();
        await released;
      }
    },
  });
  const m1 = fakeDelivery("{}", { messageId: "m1", redelivered: true });
  const m2 = fakeDelivery("{}", { messageId: "m2", redelivered: true });
  const first = consume([m1]);
  await inHand;
  const second = consume([m2]);
  // Whatever m2's batch awaits before it could count m2 has run by now.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(steps, ["bump m1", "handle m1"], "m2 is not counted while m1 is in hand");
  release();
  await Promise.all([first, second]);
  assert.deepEqual(steps, [
    "bump m1",
    "handle m1",
    "forget m1",
    "bump m2",
    "handle m2",
    "forget m2",
  ]);
  assert.deepEqual([m1.settled, m2.settled], ["acked", "acked"]);
});

Deno.test("the dead-letter follow-up runs after the copy is safe, and its failure is contained", async () => {
  const bus = new MemoryBus();
  const seen: string[] = [];
  const { consume } = await setup({
    bus,
    handle: poison,
    onDeadLetter: (body, reason) => {
      seen.push(`${new TextDecoder().decode(body)}: ${reason} (copies: ${bus.sent.length})`);
      throw new Error("follow-up broke");
    },
    maxRetries: 0,
  });
  const delivery = fakeDelivery("{}");
  await consume([delivery]);
  assert.deepEqual(seen, ["{}: bad (copies: 1)"]);
  assert.equal(delivery.settled, "acked");
});

Deno.test("a batch commits together, and one failing message undoes only its own work", async () => {
  const db = SqliteDatabase.open(":memory:", "test");
  db.db.exec("CREATE TABLE seen (n INTEGER)");
  const insert = db.db.prepare("INSERT INTO seen VALUES (?)");
  const prepared: unknown[] = [];
  const { bus, consume } = await setup({
    db,
    prepareBatch: (messages) => {
      prepared.push(...messages.map((m) => m.body));
      return Promise.resolve();
    },
    handle: async ({ body }) => {
      const { n } = body as { n: number };
      await db.write(() => insert.run(n));
      if (n === 2) throw new Error("locked");
    },
  });
  const batch = [1, 2, 3].map((n) => fakeDelivery(JSON.stringify({ n })));
  const poison = fakeDelivery("not json");
  await consume([...batch, poison]);
  assert.deepEqual(prepared, [{ n: 1 }, { n: 2 }, { n: 3 }], "prepared with what parses");
  assert.deepEqual(db.db.prepare("SELECT n FROM seen ORDER BY n").all().map((r) => r.n), [1, 3]);
  assert.deepEqual([...batch, poison].map((d) => d.settled), ["acked", "acked", "acked", "acked"]);
  assert.deepEqual(bus.sent.map((m) => m.queue), ["order_placed_retry", "order_placed_dlq"]);
});

Deno.test("a collision with another transaction undoes the whole batch, not one message", async () => {
  const db = SqliteDatabase.open(":memory:", "test");
  db.db.exec("CREATE TABLE seen (n INTEGER)");
  const insert = db.db.prepare("INSERT INTO seen VALUES (?)");
  const { bus, consume } = await setup({
    db,
    handle: async ({ body }) => {
      const { n } = body as { n: number };
      await db.write(() => insert.run(n));
      // Its locks are gone with its savepoint's statement: the batch must run again as a whole
      // (PostgreSQL's outermost transaction does so itself; here it fails, so all retry).
      if (n === 2) throw new TransactionConflict("deadlock detected");
    },
  });
  const batch = [1, 2].map((n) => fakeDelivery(JSON.stringify({ n })));
  await consume(batch);
  assert.deepEqual(db.db.prepare("SELECT n FROM seen").all(), [], "nothing of the batch stays");
  assert.deepEqual(bus.sent.map((m) => m.queue), ["order_placed_retry", "order_placed_retry"]);
});

Deno.test("the queue's metrics count what became of each delivery", async () => {
  const metrics = new ServiceMetrics();
  const { bus, consume } = await setup({
    handle: ({ body }) => {
      if ((body as { fail?: boolean }).fail) throw new Error("database is locked");
    },
    maxRetries: 1,
    metrics: metrics.forQueue("order_placed"),
  });
  await consume([
    fakeDelivery("{}"),
    fakeDelivery("{}"),
    fakeDelivery('{"fail":true}'),
    fakeDelivery('{"fail":true}', { headers: { [RETRY_HEADER]: 1 } }),
    fakeDelivery("not json"),
  ]);
  const { text } = await metrics.render();
  const value = (series: string) =>
    Number(text.split("\n").find((l) => l.startsWith(`${series} `))?.split(" ")[1]);
  assert.equal(value('campus_messages_consumed_total{queue="order_placed"}'), 2);
  assert.equal(value('campus_message_retries_total{queue="order_placed"}'), 1);
  assert.equal(value('campus_messages_dead_lettered_total{queue="order_placed"}'), 2);
  assert.equal(value('campus_message_handling_duration_seconds_count{queue="order_placed"}'), 5);
  assert.ok(
    bus.sent.every((copy) => copy.properties.headers?.traceparent === undefined),
    "no trace header with tracing off",
  );
});

/** An order for `item`, with message id `id`. */
const orderOf = (id: string, item: string, overrides = {}) =>
  fakeDelivery(JSON.stringify({ item }), { messageId: id, ...overrides });

/**
 * A consumer whose batch preparation, like inventory's, locks the items of a batch, and gives
 * up with {@linkcode LockTimeout} while `held` names one of them.
 */
async function lockingConsumer(held: Set<string>, overrides: Overrides = {}) {
  const prepared: string[][] = [];
  const handled: string[] = [];
  const waits = new DatabaseWaits();
  const consumer = await setup({
    waits,
    prepareBatch: (messages) => {
      const items = messages.map((m) => (m.body as { item: string }).item);
      prepared.push(items);
      if (items.some((item) => held.has(item))) {
        return Promise.reject(new LockTimeout("canceling statement due to lock timeout"));
      }
      return Promise.resolve();
    },
    handle: ({ messageId }) => void handled.push(messageId!),
    ...overrides,
  });
  return { ...consumer, prepared, handled, waits };
}

Deno.test("a batch that waited too long for a lock goes on without the orders that need it", async () => {
  const { bus, consume, prepared, handled, waits } = await lockingConsumer(new Set(["Pizza"]));
  const batch = [orderOf("c1", "Coffee"), orderOf("p1", "Pizza"), orderOf("c2", "Coffee")];
  await consume(batch);
  assert.deepEqual(prepared[0], ["Coffee", "Pizza", "Coffee"], "first the batch as usual");
  assert.deepEqual(prepared.slice(1).sort(), [["Coffee"], ["Coffee"], ["Pizza"]], "then alone");
  assert.deepEqual(handled.sort(), ["c1", "c2"]);
  assert.deepEqual(batch.map((d) => d.settled), ["acked", "acked", "acked"]);
  const [copy] = bus.sent;
  assert.equal(bus.sent.length, 1);
  assert.equal(copy.queue, "order_placed_retry", "set aside, not dead-lettered");
  const headers = copy.properties.headers!;
  assert.equal(headers[LOCK_WAITS_HEADER], 1);
  assert.equal(headers[RETRY_HEADER], undefined, "a lock wait is no failed attempt");
  assert.equal(typeof headers[WAITING_SINCE_HEADER], "number");
  assert.equal(copy.properties.expiration, "250");
  assert.equal(copy.properties.messageId, "p1");
  assert.equal(waits.heldBackCount, 1, "noted as waiting, for /ready");
});

Deno.test("an order waits for a held row as long as it takes, then goes through", async () => {
  const held = new Set(["Pizza"]);
  const { bus, consume, handled, waits } = await lockingConsumer(held, { maxRetries: 1 });
  let delivery = orderOf("p1", "Pizza");
  const delays: number[] = [];
  let since: unknown;
  for (let wait = 1; wait <= 8; wait++) {
    await consume([delivery]);
    assert.equal(delivery.settled, "acked");
    const [copy] = bus.sent.splice(0);
    assert.equal(copy.queue, "order_placed_retry", `wait ${wait} is set aside again`);
    assert.equal(copy.properties.headers![LOCK_WAITS_HEADER], wait);
    since ??= copy.properties.headers![WAITING_SINCE_HEADER];
    assert.equal(copy.properties.headers![WAITING_SINCE_HEADER], since, "since its first wait");
    delays.push(Number(copy.properties.expiration));
    // Back from the retry queue: a new delivery of the copy.
    delivery = fakeDelivery(copy.body, {
      messageId: copy.properties.messageId,
      headers: copy.properties.headers,
    });
  }
  assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  assert.equal(waits.heldBackCount, 1);
  held.clear();
  await consume([delivery]);
  assert.deepEqual(handled, ["p1"]);
  assert.equal(delivery.settled, "acked");
  assert.equal(bus.sent.length, 0, "nothing dead-lettered, however long it waited");
  assert.equal(waits.heldBackCount, 0, "it waits no more");
});

Deno.test("orders back from a lock wait are handled apart from the others", async () => {
  const { consume, prepared, handled } = await lockingConsumer(new Set());
  const back = { headers: { [LOCK_WAITS_HEADER]: 2 } };
  await consume([
    orderOf("p1", "Pizza", back),
    orderOf("c1", "Coffee"),
    orderOf("p2", "Pizza", back),
    orderOf("c2", "Coffee"),
  ]);
  assert.deepEqual(prepared, [["Coffee", "Coffee"], ["Pizza"], ["Pizza"]]);
  assert.deepEqual(handled, ["c1", "c2", "p1", "p2"]);
});

Deno.test("a message whose own statement waited too long is set aside; its batch commits", async () => {
  const db = SqliteDatabase.open(":memory:", "test");
  db.db.exec("CREATE TABLE seen (n INTEGER)");
  const insert = db.db.prepare("INSERT INTO seen VALUES (?)");
  const { bus, consume } = await setup({
    db,
    maxRetries: 0,
    handle: async ({ body }) => {
      const { n } = body as { n: number };
      await db.write(() => insert.run(n));
      if (n === 2) throw new LockTimeout("canceling statement due to lock timeout");
    },
  });
  const batch = [1, 2, 3].map((n) => fakeDelivery(JSON.stringify({ n })));
  await consume(batch);
  assert.deepEqual(db.db.prepare("SELECT n FROM seen ORDER BY n").all().map((r) => r.n), [1, 3]);
  assert.deepEqual(batch.map((d) => d.settled), ["acked", "acked", "acked"]);
  assert.deepEqual(bus.sent.map((m) => [m.queue, m.properties.headers?.[LOCK_WAITS_HEADER]]), [
    ["order_placed_retry", 1],
  ]);
});

Deno.test("lockWaitDelay() doubles from the retry delay up to its ceiling", () => {
  assert.equal(lockWaitDelay(1000, 1), 1000);
  assert.equal(lockWaitDelay(1000, 4), 8000);
  assert.equal(lockWaitDelay(1000, 5), MAX_LOCK_WAIT_DELAY_MS);
  assert.equal(lockWaitDelay(1000, 500), MAX_LOCK_WAIT_DELAY_MS, "no overflow");
  assert.equal(lockWaitDelay(60_000, 3), 60_000, "never shorter than a retry");
});
