import assert from "node:assert/strict";
import { storeContract } from "@campus/testing/store_contract";
import type { Notice } from "@campus/shared/notification_message";
import type { NotificationFilter, RecordOutcome } from "./notification.ts";
import { type NotificationStore, openNotificationStore } from "./notification_store.ts";

const order = { order_id: "o1", student_id: "S2", lines: [{ item: "Pizza", qty: 3 }] };

/** What recording `notice` outside a transaction did: heard as soon as it is recorded. */
async function record(store: NotificationStore, notice: Notice): Promise<RecordOutcome> {
  let outcome: RecordOutcome | undefined;
  await store.record(notice, (heard) => outcome = heard);
  assert.ok(outcome, "outside a transaction, the outcome is heard once the notice is recorded");
  return outcome;
}

const all = async (store: NotificationStore, filter?: NotificationFilter) =>
  (await Array.fromAsync(store.batches(filter))).flat();

storeContract("record() keeps one notification per order and outcome", async ({ db }) => {
  const store = await openNotificationStore(db);
  assert.equal(await record(store, { status: "RESERVED", ...order }), "recorded");
  assert.equal(await record(store, { status: "RESERVED", ...order }), "duplicate");
  const [only, ...rest] = await all(store);
  assert.deepEqual(rest, []);
  assert.deepEqual({ ...only, sent_at: "(any)" }, {
    order_id: "o1",
    student_id: "S2",
    outcome: "RESERVED",
    message: "Hi S2, your order of 3 x Pizza is confirmed (order o1).",
    sent_at: "(any)",
  });
  assert.equal(new Date(only.sent_at).toISOString(), only.sent_at, "sent_at is an ISO time");
  assert.equal((await all(store, { order_id: "o1" }))[0].student_id, "S2");
  assert.deepEqual(await all(store, { student_id: "S9" }), []);
});

storeContract(
  "record() tells no inventory result after a cancel, and both when it came first",
  async ({ db }) => {
    const store = await openNotificationStore(db);
    const cancelled = { status: "CANCELLED", ...order, cancelled_by: "student" } as const;
    // Reserved, then cancelled: the true sequence, both told.
    assert.equal(await record(store, { status: "RESERVED", ...order }), "recorded");
    assert.equal(await record(store, cancelled), "recorded");
    assert.equal(await record(store, { status: "RESERVED", ...order }), "duplicate");
    // Cancelled first: inventory's later decision, either way, is not told.
    const o2 = { ...order, order_id: "o2" };
    assert.equal(await record(store, { ...cancelled, order_id: "o2" }), "recorded");
    assert.equal(await record(store, { status: "RESERVED", ...o2 }), "after_cancel");
    assert.equal(await record(store, { status: "FAILED", ...o2, reason: "none" }), "after_cancel");
    assert.equal(await record(store, { ...cancelled, order_id: "o2" }), "duplicate");
    const told = (await all(store)).map(({ order_id, outcome }) => `${order_id} ${outcome}`);
    assert.deepEqual(told, ["o1 RESERVED", "o1 CANCELLED", "o2 CANCELLED"]);
  },
);

storeContract("an apology names the reason", async ({ db }) => {
  const store = await openNotificationStore(db);
  await record(store, { status: "FAILED", ...order, reason: "only 2 left" });
  assert.match(
    (await all(store))[0].message,
    /^Sorry S2, your order of 3 x Pizza could not be completed: only 2 left/,
  );
});

storeContract(
  "record() keeps one notification per status a student hears of, each naming the lines",
  async ({ db }) => {
    const store = await openNotificationStore(db);
    const cart = { ...order, lines: [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }] };
    const notices = [
      { status: "RESERVED", ...cart },
      { status: "READY", ...cart },
      { status: "EXPIRED", ...cart },
      { status: "CANCELLED", ...cart, order_id: "o2", cancelled_by: "staff", reason: "no buns" },
    ] as const;
    for (const notice of notices) {
      assert.equal(await record(store, notice), "recorded", notice.status);
    }
    // A recalled order made READY again, and every event delivered once more.
    for (const notice of notices) {
      assert.equal(await record(store, notice), "duplicate", notice.status);
    }
    const recorded = (await all(store)).map(({ order_id, outcome, message }) => ({
      order_id,
      outcome,
      message,
    }));
    assert.deepEqual(recorded, [
      {
        order_id: "o1",
        outcome: "RESERVED",
        message: "Hi S2, your order of 2 x Burger, 1 x Coffee is confirmed (order o1).",
      },
      {
        order_id: "o1",
        outcome: "READY",
        message: "Hi S2, your order of 2 x Burger, 1 x Coffee is ready to collect (order o1).",
      },
      {
        order_id: "o1",
        outcome: "EXPIRED",
        message: "Sorry S2, your order of 2 x Burger, 1 x Coffee was not collected in time " +
          "and has expired (order o1).",
      },
      {
        order_id: "o2",
        outcome: "CANCELLED",
        message:
          "Sorry S2, the kitchen cancelled your order of 2 x Burger, 1 x Coffee: no buns (order o2).",
      },
    ]);
    assert.deepEqual((await all(store, { order_id: "o2" })).map((n) => n.outcome), ["CANCELLED"]);
  },
);

storeContract(
  "batches() lists any number of notifications in the order they were recorded",
  async ({ db }) => {
    const store = await openNotificationStore(db);
    const ids = Array.from({ length: 1203 }, (_, i) => `o${i}`);
    await db.transaction(async () => {
      for (const order_id of ids) {
        await store.record({ status: "RESERVED", ...order, order_id }, () => {});
      }
    });
    const pages = await Array.fromAsync(store.batches());
    assert.deepEqual(pages.map((p) => p.length), [500, 500, 203]);
    assert.deepEqual(pages.flat().map((n) => n.order_id), ids);
    assert.equal((await all(store, { student_id: "S2" })).length, 1203);
  },
);

storeContract("replicas given the same result at once record it once", async ({ db, replica }) => {
  const stores = [await openNotificationStore(db), await openNotificationStore(replica())];
  const results = await Promise.all(
    Array.from(
      { length: 10 },
      (_, i) => record(stores[i % 2], { status: "RESERVED", ...order, order_id: `o${i % 5}` }),
    ),
  );
  assert.equal(results.filter((r) => r === "recorded").length, 5, "one recording per order");
  assert.equal((await all(stores[1])).length, 5);
});

storeContract(
  "record() in a transaction tells each notice's outcome after the commit, as if one by one",
  async ({ db }) => {
    const store = await openNotificationStore(db);
    const cancelled = { status: "CANCELLED", ...order, cancelled_by: "student" } as const;
    await record(store, { status: "RESERVED", ...order, order_id: "told" });
    await record(store, { ...cancelled, order_id: "gone" });
    const heard: string[] = [];
    const batch = async (notices: Notice[]) => {
      await db.transaction(async () => {
        for (const notice of notices) {
          await store.record(notice, (outcome) => heard.push(`${notice.order_id} ${outcome}`));
        }
        assert.deepEqual(heard, [], "nothing is heard before the commit");
      });
    };
    await batch([
      { status: "RESERVED", ...order, order_id: "new" },
      { status: "RESERVED", ...order, order_id: "new" },
      { status: "RESERVED", ...order, order_id: "told" },
      { status: "FAILED", ...order, order_id: "gone", reason: "none" },
      { ...cancelled, order_id: "gone" },
    ]);
    assert.deepEqual(heard, [
      "new recorded",
      "new duplicate",
      "told duplicate",
      "gone after_cancel",
      "gone duplicate",
    ]);
    // A cancel and a result of one order together: which came first decides.
    heard.length = 0;
    await batch([
      { ...cancelled, order_id: "c1" },
      { status: "RESERVED", ...order, order_id: "c1" },
      { status: "RESERVED", ...order, order_id: "c2" },
      { ...cancelled, order_id: "c2" },
    ]);
    assert.deepEqual(heard, ["c1 recorded", "c1 after_cancel", "c2 recorded", "c2 recorded"]);
    // A transaction that rolls back records nothing and tells nothing.
    heard.length = 0;
    await assert.rejects(
      db.transaction(async () => {
        await store.record({ status: "RESERVED", ...order, order_id: "lost" }, () => {
          heard.push("lost");
        });
        throw new Error("the batch failed");
      }),
      /the batch failed/,
    );
    assert.deepEqual(heard, []);
    const told = (await all(store)).map(({ order_id, outcome }) => `${order_id} ${outcome}`);
    assert.deepEqual(told, [
      "told RESERVED",
      "gone CANCELLED",
      "new RESERVED",
      "c1 CANCELLED",
      "c2 RESERVED",
      "c2 CANCELLED",
    ]);
  },
);
