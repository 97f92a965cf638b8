import assert from "node:assert/strict";
import { DatabaseWaits } from "./database_waits.ts";

Deno.test("DatabaseWaits measures the oldest transaction under way", () => {
  let now = 1_000;
  const waits = new DatabaseWaits(() => now);
  assert.equal(waits.longestWaitMs(), 0, "nothing waits");
  const first = waits.begin();
  now += 300;
  const second = waits.begin();
  now += 200;
  assert.equal(waits.longestWaitMs(), 500);
  first();
  assert.equal(waits.longestWaitMs(), 200, "the first one ended");
  second();
  assert.equal(waits.longestWaitMs(), 0);
});

Deno.test("DatabaseWaits keeps work set aside for a lock until done or overdue", async (t) => {
  let now = 10_000;
  const waits = new DatabaseWaits(() => now);
  await t.step("measured from when it first waited", () => {
    waits.heldBack("m1", 4_000, 5_000);
    assert.equal(waits.heldBackCount, 1);
    assert.equal(waits.longestWaitMs(), 6_000);
  });
  await t.step("noted again, it keeps its first wait", () => {
    now += 4_000;
    waits.heldBack("m1", 4_000, 5_000);
    now += 4_000;
    assert.equal(waits.longestWaitMs(), 14_000);
  });
  await t.step("done, it waits no more", () => {
    waits.done("m1");
    assert.equal(waits.heldBackCount, 0);
    assert.equal(waits.longestWaitMs(), 0);
  });
  await t.step("not back when expected, it is forgotten (another replica had it)", () => {
    waits.heldBack("m2", now, 1_000);
    now += 1_001;
    assert.equal(waits.longestWaitMs(), 0);
    assert.equal(waits.heldBackCount, 0);
  });
});

Deno.test("DatabaseWaits sweeps out overdue entries as they pile up", () => {
  let now = 0;
  const waits = new DatabaseWaits(() => now);
  for (let i = 0; i < 5_000; i++) {
    waits.heldBack(`m${i}`, now, 10);
    now += 20;
  }
  assert.ok(waits.heldBackCount < 1024, `${waits.heldBackCount} entries kept`);
  assert.equal(waits.longestWaitMs(), 0, "every one of them is overdue");
});
