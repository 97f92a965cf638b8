import assert from "node:assert/strict";
import { Backoff } from "./backoff.ts";

Deno.test("next() doubles the ceiling up to maxMs, jittered within its upper half", async (t) => {
  await t.step("at the top of the jitter", () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0.999999);
    const delays = Array.from({ length: 6 }, () => Math.round(backoff.next()));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
  });
  await t.step("at the bottom of the jitter", () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0);
    const delays = Array.from({ length: 6 }, () => backoff.next());
    assert.deepEqual(delays, [50, 100, 200, 400, 500, 500]);
  });
});

Deno.test("reset() starts again from the first delay", () => {
  const backoff = new Backoff({ initialMs: 10, maxMs: 10_000 }, () => 0);
  for (let i = 0; i < 40; i++) backoff.next();
  assert.equal(backoff.next(), 5_000, "capped, and no overflow after many attempts");
  backoff.reset();
  assert.equal(backoff.next(), 5);
});
