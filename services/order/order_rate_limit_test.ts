import assert from "node:assert/strict";
import { OrderRateLimit } from "./order_rate_limit.ts";

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

Deno.test("OrderRateLimit allows the limit within a window, then says when the next may go", () => {
  const c = clock();
  const limit = new OrderRateLimit({ limit: 3, windowMs: 60_000, now: c.now });
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(limit.take("S1"), { allowed: true });
    c.t += 10_000;
  }
  // The first order was 30 s ago: the next may go 30 s from now.
  assert.deepEqual(limit.take("S1"), { allowed: false, retryAfterMs: 30_000 });
  c.t += 29_999;
  assert.equal(limit.take("S1").allowed, false);
  c.t += 1;
  assert.deepEqual(limit.take("S1"), { allowed: true });
  // The window slides: now the second order is the oldest, placed 50 s ago.
  assert.deepEqual(limit.take("S1"), { allowed: false, retryAfterMs: 10_000 });
});

Deno.test("OrderRateLimit counts each student on their own", () => {
  const limit = new OrderRateLimit({ limit: 1, now: clock().now });
  assert.equal(limit.take("S1").allowed, true);
  assert.equal(limit.take("S1").allowed, false);
  assert.equal(limit.take("S2").allowed, true);
});

Deno.test("OrderRateLimit forgets students whose window has passed", () => {
  const c = clock();
  const limit = new OrderRateLimit({ limit: 2, windowMs: 1_000, now: c.now });
  limit.take("S1");
  limit.take("S2");
  c.t += 500;
  limit.take("S2");
  assert.equal(limit.size, 2);
  c.t += 600;
  limit.take("S3");
  // S1's only order is 1.1 s old; S2's newest is 0.6 s old and stays.
  assert.equal(limit.size, 2);
  c.t += 1_000;
  limit.take("S3");
  assert.equal(limit.size, 1);
});
