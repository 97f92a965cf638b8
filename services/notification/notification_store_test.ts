import assert from "node:assert/strict";
import { openDatabase } from "@campus/shared/sqlite";
import { NotificationStore } from "./notification_store.ts";

const event = { order_id: "o1", item: "Pizza", qty: 3, student_id: "S2" };

Deno.test("record() keeps one notification per order and outcome", () => {
  const store = new NotificationStore(openDatabase(":memory:", "notification"));
  assert.equal(store.record({ outcome: "RESERVED", event }), true);
  assert.equal(store.record({ outcome: "RESERVED", event }), false);
  assert.equal(store.list().length, 1);
  assert.equal(store.list({ order_id: "o1" })[0].student_id, "S2");
  assert.equal(store.list({ student_id: "S9" }).length, 0);
});

Deno.test("an apology names the reason", () => {
  const store = new NotificationStore(openDatabase(":memory:", "notification"));
  store.record({ outcome: "FAILED", event: { ...event, reason: "only 2 left" } });
  assert.match(
    store.list()[0].message,
    /^Sorry S2, your order of 3 x Pizza could not be completed: only 2 left/,
  );
});
