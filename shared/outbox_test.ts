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
  relay.wake();
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
  relay.wake();
  assert.equal(outbox.size(), 1, "kept while disconnected");
  bus.reconnect();
  await waitFor(() => outbox.size() === 0, {
    timeoutMs: 5000,
    what: "the row to be sent after reconnect",
  });
  assert.equal(bus.events.length, 1);
  await relay.stop();
});
