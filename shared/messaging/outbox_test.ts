import assert from "node:assert/strict";
import { envelopeFor, type OutgoingEvent } from "./contract.ts";
import { createLogger } from "../runtime/log.ts";
import { OutboxRelay } from "./outbox.ts";
import { openOutboxStore } from "../outbox_store.ts";
import { SqliteDatabase } from "../storage/sqlite.ts";
import { MemoryBus } from "./_memory_bus.ts";
import { waitFor } from "../../tests/poll.ts";

const order = (n: number) => ({
  order_id: `o${n}`,
  student_id: "S",
  lines: [{ item: "Tea", qty: 1 }],
});

async function setup(batchSize?: number) {
  const db = SqliteDatabase.open(":memory:", "t");
  const outbox = await openOutboxStore(db);
  const bus = new MemoryBus();
  class CountingRelay extends OutboxRelay {
    wakes = 0;
    override wake(): void {
      this.wakes++;
      super.wake();
    }
  }
  const relay = new CountingRelay(outbox, bus, createLogger("test", "error"), batchSize);
  return { db, outbox, bus, relay };
}

Deno.test("the relay publishes outbox rows in order and forgets them only once confirmed", async () => {
  const { db, outbox, bus, relay } = await setup(2);
  await db.transaction(async () => {
    for (let n = 1; n <= 5; n++) await outbox.add(envelopeFor("OrderPlaced", order(n)));
  });
  bus.failNext = 1;
  relay.start();
  await waitFor(() => bus.events.length === 5, { timeoutMs: 5000, what: "5 events published" });
  assert.deepEqual(bus.events.map((e) => e.correlationId), ["o1", "o2", "o3", "o4", "o5"]);
  assert.equal(await outbox.size(), 0);
  await relay.stop();
});

Deno.test("rows wait while the broker is away and go out after a reconnect", async () => {
  const { outbox, bus, relay } = await setup();
  bus.connected = false;
  relay.start();
  await outbox.add(envelopeFor("OrderPlaced", order(1)));
  assert.equal(await outbox.size(), 1, "kept while disconnected");
  bus.reconnect();
  await waitFor(async () => await outbox.size() === 0, {
    timeoutMs: 5000,
    what: "the row to be sent after reconnect",
  });
  assert.equal(bus.events.length, 1);
  await relay.stop();
});

Deno.test("a committed row wakes the relay, a rolled-back one does not", async () => {
  const { db, outbox, bus, relay } = await setup();
  relay.start();
  await assert.rejects(db.transaction(async () => {
    await outbox.add(envelopeFor("OrderPlaced", order(1)));
    throw new Error("rolled back");
  }));
  assert.equal(relay.wakes, 0, "nothing to send");
  await db.transaction(() => outbox.add(envelopeFor("OrderPlaced", order(2))));
  assert.equal(relay.wakes, 1, "woken by the commit, nobody else");
  await waitFor(() => bus.events.length === 1, { what: "the row to be sent" });
  assert.deepEqual(bus.events.map((e) => e.correlationId), ["o2"]);
  await relay.stop();
});

Deno.test("an outbox made before rows carried their time gains the columns", async () => {
  const db = SqliteDatabase.open(":memory:", "t");
  db.db.exec(`CREATE TABLE outbox (seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL,
    type TEXT NOT NULL, routing_key TEXT NOT NULL, correlation_id TEXT NOT NULL,
    body TEXT NOT NULL)`);
  db.db.exec(`INSERT INTO outbox VALUES (1, 'm', 'OrderPlaced', 'order.placed', 'o1', '{}')`);
  const outbox = await openOutboxStore(db);
  assert.equal(await outbox.oldestPendingSince(), undefined, "an old row's age is unknown");
  await outbox.add(envelopeFor("OrderPlaced", order(2)));
  assert.equal(await outbox.size(), 2);
  const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  await outbox.add({ ...envelopeFor("OrderPlaced", order(3)), traceparent });
  const sent: OutgoingEvent[] = [];
  await outbox.publishOldest(3, (events) => Promise.resolve(void sent.push(...events)));
  const [old, untraced, traced] = sent;
  assert.equal(old.traceparent, undefined, "an old row starts a trace of its own");
  assert.equal(untraced.traceparent, undefined, "with tracing off none is stored");
  assert.equal(traced.traceparent, traceparent, "kept for the relay to continue");
  const again = SqliteDatabase.open(":memory:", "t");
  again.db.exec(`CREATE TABLE outbox (seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL,
    type TEXT NOT NULL, routing_key TEXT NOT NULL, correlation_id TEXT NOT NULL,
    body TEXT NOT NULL, enqueued_at INTEGER)`);
  await openOutboxStore(again); // a file that has the column already keeps it
});

Deno.test("a relay whose outbox fails keeps trying, saying so once, and sends when it works", async () => {
  const { db, outbox, bus } = await setup();
  const lines: Record<string, unknown>[] = [];
  const log = createLogger("test", "info", (text) => {
    for (const line of text.trimEnd().split("\n")) lines.push(JSON.parse(line));
  });
  let refusals = 3;
  const failing: typeof outbox = {
    add: (...events) => outbox.add(...events),
    insert: (...events) => outbox.insert(...events),
    onAdded: (listener) => outbox.onAdded(listener),
    size: () => outbox.size(),
    oldestPendingSince: () => outbox.oldestPendingSince(),
    publishOldest: (limit, publish) =>
      refusals-- > 0
        ? Promise.reject(new Error("the database refuses connections"))
        : outbox.publishOldest(limit, publish),
  };
  const relay = new OutboxRelay(failing, bus, log);
  await db.transaction(() => outbox.add(envelopeFor("OrderPlaced", order(1))));
  relay.start();
  await waitFor(() => bus.events.length === 1, { what: "the row to be sent once it works" });
  assert.equal(refusals, -1, "three attempts failed before the one that worked");
  const warnings = lines.filter((l) => l.msg === "outbox relay could not publish");
  assert.equal(warnings.length, 1, "said once per cause, not at each retry");
  await relay.stop();
});
