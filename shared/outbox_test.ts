import assert from "node:assert/strict";
import { envelopeFor } from "./events.ts";
import { createLogger } from "./log.ts";
import { Outbox, OutboxRelay } from "./outbox.ts";
import { openDatabase, transaction } from "./sqlite.ts";
import { MemoryBus } from "./_memory_bus.ts";
import { waitFor } from "../tests/poll.ts";

const order = (n: number) => ({ order_id: `o${n}`, item: "Tea", qty: 1, student_id: "S" });

Deno.test("the relay publishes outbox rows in order and forgets them only once confirmed", async () => {
  const db = openDatabase(":memory:", "t");
  const outbox = new Outbox(db);
  const bus = new MemoryBus();
  const relay = new OutboxRelay(outbox, bus, createLogger("test", "error"), 2);
  transaction(db, () => {
    for (let n = 1; n <= 5; n++) outbox.add(envelopeFor("OrderPlaced", order(n)));
  });
  bus.failNext = 1;
  relay.start();
  await waitFor(() => bus.events.length === 5, { timeoutMs: 5000, what: "5 events published" });
  assert.deepEqual(bus.events.map((e) => e.correlationId), ["o1", "o2", "o3", "o4", "o5"]);
  assert.equal(outbox.size(), 0);
  await relay.stop();
});

Deno.test("rows wait while the broker is away and go out after a reconnect", async () => {
  const db = openDatabase(":memory:", "t");
  const outbox = new Outbox(db);
  const bus = new MemoryBus();
  bus.connected = false;
  const relay = new OutboxRelay(outbox, bus, createLogger("test", "error"));
  relay.start();
  outbox.add(envelopeFor("OrderPlaced", order(1)));
  assert.equal(outbox.size(), 1, "kept while disconnected");
  bus.reconnect();
  await waitFor(() => outbox.size() === 0, {
    timeoutMs: 5000,
    what: "the row to be sent after reconnect",
  });
  assert.equal(bus.events.length, 1);
  await relay.stop();
});

Deno.test("adding a row wakes the relay, and the row knows when it was added", async () => {
  const db = openDatabase(":memory:", "t");
  const outbox = new Outbox(db);
  const bus = new MemoryBus();
  class CountingRelay extends OutboxRelay {
    wakes = 0;
    override wake(): void {
      this.wakes++;
      super.wake();
    }
  }
  const relay = new CountingRelay(outbox, bus, createLogger("test", "error"));
  relay.start();
  const before = Date.now();
  transaction(db, () => outbox.add(envelopeFor("OrderPlaced", order(1))));
  assert.equal(relay.wakes, 1, "woken by the add, nobody else");
  const since = outbox.oldestPendingSince();
  assert.ok(since !== undefined && since >= before, `added at ${since}, not before ${before}`);
  await waitFor(() => bus.events.length === 1, { what: "the row to be sent" });
  assert.equal(outbox.oldestPendingSince(), undefined, "none waits");
  await relay.stop();
});

Deno.test("an outbox made before rows carried their time gains the column", () => {
  const db = openDatabase(":memory:", "t");
  db.exec(`CREATE TABLE outbox (seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL,
    type TEXT NOT NULL, routing_key TEXT NOT NULL, correlation_id TEXT NOT NULL,
    body TEXT NOT NULL)`);
  db.exec(`INSERT INTO outbox VALUES (1, 'm', 'OrderPlaced', 'order.placed', 'o1', '{}')`);
  const outbox = new Outbox(db);
  assert.equal(outbox.oldestPendingSince(), undefined, "an old row's age is unknown");
  outbox.add(envelopeFor("OrderPlaced", order(2)));
  assert.equal(outbox.size(), 2);
  assert.equal(outbox.pending(2)[1].event.correlationId, "o2");
});
