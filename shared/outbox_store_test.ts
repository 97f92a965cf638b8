import assert from "node:assert/strict";
import { envelopeFor, type OutgoingEvent } from "@campus/shared/events";
import { openOutboxStore } from "@campus/shared/outbox_store";
import type { PostgresDatabase } from "@campus/shared/postgres";
import { postgresTest, storeContract, withTestDatabase } from "@campus/testing/store_contract";
import { waitFor } from "../tests/poll.ts";

const placed = (n: number) =>
  envelopeFor("OrderPlaced", {
    order_id: `o${n}`,
    student_id: "S",
    lines: [{ item: "Tea", qty: 1 }],
  });

const ids = (events: OutgoingEvent[]) => events.map((e) => e.correlationId);

/** A publish that only writes down what it was given. */
const into = <T>(sent: T[], as: (events: OutgoingEvent[]) => T[]) => (events: OutgoingEvent[]) => {
  sent.push(...as(events));
  return Promise.resolve();
};

storeContract("add() keeps rows only when their transaction commits", async ({ db }) => {
  const outbox = await openOutboxStore(db);
  let heard = 0;
  outbox.onAdded(() => heard++);
  await db.transaction(async () => {
    await outbox.add(placed(1), placed(2));
    assert.equal(heard, 0, "listeners wait for the commit");
  });
  assert.equal(heard, 1);
  await assert.rejects(db.transaction(async () => {
    await outbox.add(placed(3));
    throw new Error("rolled back");
  }));
  assert.equal(heard, 1, "a rolled-back row wakes nobody");
  assert.equal(await outbox.size(), 2);
  const since = await outbox.oldestPendingSince();
  assert.ok(
    since !== undefined && Math.abs(Date.now() - since) < 60_000,
    `added just now: ${since}`,
  );
});

storeContract("an event's trace context comes back with it", async ({ db }) => {
  const outbox = await openOutboxStore(db);
  const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  await outbox.add({ ...placed(1), traceparent }, placed(2));
  const sent: OutgoingEvent[] = [];
  await outbox.publishOldest(10, into(sent, (events) => events));
  assert.equal(sent[0].traceparent, traceparent, "the relay continues the stored trace");
  assert.equal(sent[1].traceparent, undefined, "with tracing off none is stored");
});

storeContract(
  "publishOldest() sends the oldest first and forgets them once sent",
  async ({ db }) => {
    const outbox = await openOutboxStore(db);
    const first = placed(1);
    await outbox.add(first, placed(2), placed(3));
    const sent: OutgoingEvent[] = [];
    assert.equal(await outbox.publishOldest(2, into(sent, (events) => events)), 2);
    assert.deepEqual(ids(sent), ["o1", "o2"]);
    assert.deepEqual(sent[0], first, "an event comes back as it was added");
    await assert.rejects(outbox.publishOldest(10, () => Promise.reject(new Error("no broker"))));
    assert.equal(await outbox.size(), 1, "a failed publish keeps its rows");
    await outbox.publishOldest(10, into(sent, (events) => events));
    assert.deepEqual(ids(sent), ["o1", "o2", "o3"]);
    assert.equal(await outbox.size(), 0);
    assert.equal(await outbox.oldestPendingSince(), undefined);
    assert.equal(await outbox.publishOldest(10, () => Promise.reject(new Error("not called"))), 0);
  },
);

storeContract("a relay stuck on a batch never blocks the others", async ({ db, replica }) => {
  const outbox = await openOutboxStore(db);
  const other = await openOutboxStore(replica());
  await outbox.add(...[1, 2, 3, 4].map(placed));
  const sent: string[] = [];
  let unstick!: () => void;
  const stuck = outbox.publishOldest(2, async (events) => {
    await new Promise<void>((resolve) => unstick = resolve);
    sent.push(...ids(events));
  });
  await waitFor(() => unstick, { timeoutMs: 5000, what: "the first relay to hold its batch" });
  // The other relay goes on while the first is stuck (a duplicate is allowed, a wait is not).
  await other.publishOldest(10, into(sent, ids));
  assert.ok(sent.includes("o3") && sent.includes("o4"), `the others went out: ${sent}`);
  unstick();
  await stuck;
  await other.publishOldest(10, into(sent, ids));
  assert.deepEqual([...new Set(sent)].sort(), ["o1", "o2", "o3", "o4"]);
  assert.equal(await outbox.size(), 0);
});

postgresTest(
  "PostgreSQL: rows held by a relay that dies or stalls go out through another",
  async (t) => {
    for (const how of ["dies", "stalls"] as const) {
      await t.step(how, () =>
        withTestDatabase("postgres", async ({ db, replica }) => {
          const dying = replica() as PostgresDatabase;
          const outbox = await openOutboxStore(dying, { claimTimeoutMs: 300 });
          const other = await openOutboxStore(db);
          await outbox.add(placed(1), placed(2));
          let held = false;
          const holding = outbox.publishOldest(10, () => {
            held = true;
            return new Promise(() => {}); // never confirmed
          });
          holding.catch(() => {});
          await waitFor(() => held, { timeoutMs: 5000, what: "the relay to claim its rows" });
          if (how === "dies") await dying.pool.end({ timeout: 0 });
          const sent: string[] = [];
          await waitFor(async () => {
            await other.publishOldest(10, into(sent, ids));
            return sent.length === 2;
          }, { timeoutMs: 10_000, what: "the other relay to send the held rows" });
          assert.deepEqual(sent, ["o1", "o2"]);
          assert.equal(await other.size(), 0);
        }));
    }
  },
);
