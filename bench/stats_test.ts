/** Tests of the benchmark's percentile and rate arithmetic. */
import assert from "node:assert/strict";
import { percentile, perSecond, summarize } from "./stats.ts";

Deno.test("percentile() uses the nearest rank", async (t) => {
  await t.step("median of an odd count is the middle value", () => {
    assert.equal(percentile([5, 1, 4, 2, 3], 50), 3);
  });
  await t.step("p99 of 100 values is the 99th smallest", () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.equal(percentile(values, 99), 99);
  });
  await t.step("p100 is the maximum and p0 the minimum", () => {
    assert.equal(percentile([3, 9, 1], 100), 9);
    assert.equal(percentile([3, 9, 1], 0), 1);
  });
  await t.step("sorts numerically, not as text", () => {
    assert.equal(percentile([10, 9, 100], 50), 10);
  });
  await t.step("no values give NaN", () => {
    assert.ok(Number.isNaN(percentile([], 50)));
  });
  await t.step("refuses a percentile outside 0-100", () => {
    assert.throws(() => percentile([1], 101), RangeError);
  });
});

Deno.test("summarize() rounds to a tenth of a millisecond", () => {
  assert.deepEqual(summarize([1.234, 2.345, 3.456]), { p50_ms: 2.3, p99_ms: 3.5, max_ms: 3.5 });
});

Deno.test("perSecond() turns a count over milliseconds into a rate", () => {
  assert.equal(perSecond(500, 250), 2000);
  assert.ok(Number.isNaN(perSecond(5, 0)));
});
