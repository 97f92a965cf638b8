import assert from "node:assert/strict";
import { envelopeFor, type OutgoingEvent } from "@campus/shared/events";
import { openOutboxStore } from "@campus/shared/outbox_store";
import type { PostgresDatabase } from "@campus/shared/postgres";
import { SqliteDatabase } from "@campus/shared/sqlite";
import {
  drainOutbox,
  postgresTest,
  storeContract,
  withTestDatabase,
} from "@campus/testing/store_contract";
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
  "rows come back byte for byte and in order, whatever text they hold",
  async ({ db }) => {
    const outbox = await openOutboxStore(db);
    // What an array's text must escape or must not mistake: quotes, backslashes, braces,
    // commas, NULL spelt out, spaces, and text beyond ASCII.
    const awkward = ['"', "\\", "{a,b}", "NULL", "S 1", "naïve ☕ 注文", ' "x\\"y" '];
    const events = awkward.map((student_id, n) => ({
      ...envelopeFor("OrderPlaced", {
        order_id: `o${n}`,
        student_id,
        lines: [{ item: "Tea", qty: 1 }],
      }),
      ...(n % 2 === 0 ? { traceparent: `00-${"ab".repeat(16)}-${"cd".repeat(8)}-0${n}` } : {}),
    }));
    await outbox.add(...events.slice(0, 3));
    await db.transaction(() => outbox.add(...events.slice(3)), { savepoints: false });
    const sent = await drainOutbox(outbox);
    const wire = (e: OutgoingEvent) => [e.correlationId, JSON.stringify(e.body), e.traceparent];
    assert.deepEqual(sent.map(wire), events.map(wire));
  },
);

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

/** A SQLite outbox in a file of its own (commits wait for a real flush), removed afterwards. */
async function withSqliteFile(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "outbox-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SQLite: rows left before a restart go out first, then those committed since, once each", () =>
  withSqliteFile(async (dir) => {
    const before = SqliteDatabase.open(dir, "orders");
    await (await openOutboxStore(before)).add(placed(1), placed(2));
    await before.close();
    const db = SqliteDatabase.open(dir, "orders");
    try {
      const outbox = await openOutboxStore(db);
      await outbox.add(placed(3));
      const sent: string[] = [];
      assert.equal(await outbox.publishOldest(2, into(sent, ids)), 2);
      assert.equal(await outbox.publishOldest(10, into(sent, ids)), 1);
      await db.write(() => outbox.insert(placed(4), placed(5)));
      await outbox.publishOldest(10, into(sent, ids));
      assert.deepEqual(sent, ["o1", "o2", "o3", "o4", "o5"]);
      assert.equal(await outbox.size(), 0);
      assert.equal(await outbox.publishOldest(10, into(sent, ids)), 0, "nothing is sent twice");
    } finally {
      await db.close();
    }
  }));

Deno.test("SQLite: a row read from the table before its commit's flush ended goes out once", () =>
  withSqliteFile(async (dir) => {
    const db = SqliteDatabase.open(dir, "orders");
    try {
      const outbox = await openOutboxStore(db);
      // The commit is made at once and its hooks wait for the flush: the relay's read comes
      // between, sees the row, and must not be handed it again by the hook.
      const adding = outbox.add(placed(1));
      const sent: string[] = [];
      await outbox.publishOldest(10, into(sent, ids));
      await adding;
      await outbox.add(placed(2));
      await outbox.publishOldest(10, into(sent, ids));
      assert.deepEqual(sent, ["o1", "o2"]);
    } finally {
      await db.close();
    }
  }));

Deno.test("SQLite: a backlog larger than what is kept in memory goes out in order, once each", async () => {
  const db = SqliteDatabase.open(":memory:", "orders");
  try {
    const outbox = await openOutboxStore(db);
    const sent: string[] = [];
    assert.equal(await outbox.publishOldest(500, into(sent, ids)), 0, "the table is empty");
    // The broker is away while 6,000 rows are committed: more than the 5,000 kept in memory.
    for (let n = 1; n <= 6_000; n += 20) {
      await outbox.add(...Array.from({ length: 20 }, (_, i) => placed(n + i)));
    }
    // Rows keep coming while it drains: each goes out after those committed before it.
    let next = 6_001;
    while (sent.length < 6_000) {
      assert.ok(await outbox.publishOldest(500, into(sent, ids)) > 0, `stuck at ${sent.length}`);
      await outbox.add(placed(next++));
    }
    while (await outbox.publishOldest(500, into(sent, ids)) > 0);
    assert.equal(await outbox.size(), 0);
    const expected = Array.from({ length: next - 1 }, (_, i) => `o${i + 1}`);
    assert.deepEqual(sent, expected, "in the order committed, each once");
  } finally {
    await db.close();
  }
});
