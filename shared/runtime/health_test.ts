import assert from "node:assert/strict";
import { createLogger } from "./log.ts";
import { createRouter } from "../http/http.ts";
import type { OutboxStore } from "../outbox_store.ts";
import { healthRoutes } from "./health.ts";
import { DatabaseWaits } from "../storage/database_waits.ts";

Deno.test("/ready answers 503 naming the database when it does not answer", async () => {
  const gone = () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:5432"));
  const outbox = { size: gone, oldestPendingSince: gone } as unknown as OutboxStore;
  const router = createRouter(
    healthRoutes({ connected: true }, outbox, { stallMs: 1000 }),
    createLogger("test", "error"),
  );
  const res = await router(new Request("http://service/ready"));
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.status, "not ready");
  assert.equal(body.database, "unavailable");
  assert.match(body.error, /ECONNREFUSED/);
  assert.equal((await router(new Request("http://service/health"))).status, 200, "still alive");
});

Deno.test("/ready answers 503 while database work waits longer than DB_STALL_MS", async () => {
  let now = 100_000;
  const waits = new DatabaseWaits(() => now);
  const outbox = {
    size: () => Promise.resolve(0),
    oldestPendingSince: () => Promise.resolve(undefined),
  } as unknown as OutboxStore;
  const router = createRouter(
    healthRoutes({ connected: true }, outbox, { stallMs: 1000, waits, databaseStallMs: 5000 }),
    createLogger("test", "error"),
  );
  const ready = async () => {
    const res = await router(new Request("http://service/ready"));
    return { status: res.status, body: await res.json() };
  };
  waits.heldBack("order-1", now, 30_000);
  now += 5000;
  assert.equal((await ready()).status, 200, "not yet longer than the bound");
  now += 1;
  const stalled = await ready();
  assert.equal(stalled.status, 503);
  assert.equal(stalled.body.database, "stalled");
  assert.match(stalled.body.error, /database work has waited 5001 ms, longer than 5000 ms/);
  waits.done("order-1");
  const end = waits.begin();
  now += 5001;
  assert.equal((await ready()).body.database, "stalled", "a transaction under way counts too");
  end();
  const again = await ready();
  assert.equal(again.status, 200);
  assert.equal(again.body.database, undefined);
});

Deno.test("/ready answers 503 naming the database when a query hangs", async () => {
  const hung = () => new Promise<never>(() => {});
  const outbox = { size: hung, oldestPendingSince: hung } as unknown as OutboxStore;
  const router = createRouter(
    healthRoutes({ connected: true }, outbox, { stallMs: 1000 }),
    createLogger("test", "error"),
  );
  const res = await router(new Request("http://service/ready"));
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.database, "unavailable");
  assert.equal(body.error, "the database does not answer: no answer within 2000 ms");
});
