import assert from "node:assert/strict";
import { createLogger } from "./log.ts";
import { createRouter } from "./http.ts";
import type { OutboxStore } from "./outbox_store.ts";
import { healthRoutes } from "./service.ts";

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
