import assert from "node:assert/strict";
import { createRouter } from "@campus/shared/http";
import { createLogger } from "@campus/shared/log";
import { openOutboxStore } from "@campus/shared/outbox_store";
import { loadConfig } from "@campus/shared/config";
import { ServiceMetrics } from "@campus/shared/metrics";
import { SqliteDatabase } from "@campus/shared/sqlite";
import { Authenticator, SESSION_COOKIE, signToken } from "@campus/shared/auth";
import { createOrderService, IDEMPOTENCY_KEY_HEADER } from "./app.ts";

const SECRET = "order-app-test-secret-0123456789abcdef";

async function setup(env: Record<string, string> = {}) {
  const db = SqliteDatabase.open(":memory:", "order");
  const outbox = await openOutboxStore(db);
  let added = 0;
  outbox.onAdded(() => added++);
  const metrics = new ServiceMetrics();
  const config = loadConfig("order", env);
  const auth = config.authSecret ? new Authenticator(config.authSecret) : undefined;
  const service = await createOrderService({
    config,
    db,
    outbox,
    log: createLogger("test", "error"),
    metrics,
    auth,
    queueDepths: () => Promise.resolve(new Map()),
  }, { feed: false, fetch: () => Promise.reject(new Error("no inventory in this test")) });
  const handle = createRouter(
    service.routes,
    createLogger("test", "error"),
    undefined,
    auth && ((req, access) => auth.admit(req, access)),
  );
  const call = (method: string, path: string, body?: unknown, headers: HeadersInit = {}) =>
    handle(
      new Request(`http://order${path}`, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers,
      }),
    );
  return { call, outbox, service, metrics, added: () => added };
}

Deno.test("POST /order answers 201 with the order and hands the event to the relay", async () => {
  const { call, outbox, added } = await setup();
  const res = await call("POST", "/order", { item: "Coffee", qty: 1, student_id: "S1" });
  assert.equal(res.status, 201);
  const order = await res.json();
  assert.equal(res.headers.get("location"), `/orders/${order.order_id}`);
  assert.deepEqual(Object.keys(order).sort(), [
    "created_at",
    "item",
    "lines",
    "order_id",
    "qty",
    "status",
    "student_id",
    "updated_at",
  ]);
  assert.equal(await outbox.size(), 1);
  assert.equal(added(), 1, "the outbox heard of its row, which wakes the relay");
  const fetched = await call("GET", `/orders/${order.order_id}`);
  assert.deepEqual(await fetched.json(), order);
});

Deno.test("a result on order_status makes the order final", async () => {
  const { call, service } = await setup();
  const order = await (await call("POST", "/order", { item: "Tea", qty: 2, student_id: "S1" }))
    .json();
  await service.subscriptions.order_status.handle({
    routingKey: "inventory.failed",
    body: { ...order, reason: '"Tea" is not on the menu' },
    retries: 0,
  });
  const final = await (await call("GET", `/orders/${order.order_id}`)).json();
  assert.equal(final.status, "FAILED");
  assert.equal(final.reason, '"Tea" is not on the menu');
});

Deno.test("GET /orders refuses a bad status filter naming it", async () => {
  const { call } = await setup();
  const res = await call("GET", "/orders?status=DONE");
  assert.equal(res.status, 400);
  assert.equal((await res.json()).details[0].field, "status");
});

Deno.test("POST /order with an Idempotency-Key answers a retry with the same order", async () => {
  const { call, outbox } = await setup();
  const body = { item: "Coffee", qty: 1, student_id: "S1" };
  const key = { [IDEMPOTENCY_KEY_HEADER]: "retry-1" };
  // Sent together, the two share one group commit.
  const [first, second] = await Promise.all([
    call("POST", "/order", body, key),
    call("POST", "/order", body, key),
  ]);
  assert.deepEqual([first.status, second.status], [201, 201]);
  assert.equal(first.headers.get("idempotent-replayed"), null);
  assert.equal(second.headers.get("idempotent-replayed"), "true");
  const order = await first.json();
  assert.equal((await second.json()).order_id, order.order_id);
  const third = await call("POST", "/order", body, key);
  assert.equal((await third.json()).order_id, order.order_id);
  assert.equal(third.headers.get("location"), `/orders/${order.order_id}`);
  assert.equal(await outbox.size(), 1, "charged once");
});

Deno.test("POST /order refuses a reused key with a different body, naming the change", async () => {
  const { call, outbox } = await setup();
  const key = { [IDEMPOTENCY_KEY_HEADER]: "k-conflict" };
  const first = await (await call("POST", "/order", {
    item: "Coffee",
    qty: 1,
    student_id: "S1",
  }, key)).json();
  const res = await call("POST", "/order", { item: "Coffee", qty: 2, student_id: "S1" }, key);
  assert.equal(res.status, 422);
  const answer = await res.json();
  assert.match(
    answer.error,
    new RegExp(`"k-conflict" was already used for order ${first.order_id}`),
  );
  assert.deepEqual(answer.details.map((d: { field: string }) => d.field), [
    IDEMPOTENCY_KEY_HEADER,
    "qty",
  ]);
  assert.equal(answer.details[1].message, "was 1 with this key, now 2");
  assert.equal(await outbox.size(), 1);
});

Deno.test("POST /order refuses a malformed Idempotency-Key naming the header", async (t) => {
  const { call, outbox } = await setup();
  const body = { item: "Coffee", qty: 1, student_id: "S1" };
  for (const [name, key] of [["empty", ""], ["too long", "k".repeat(256)], ["not ASCII", "clé"]]) {
    await t.step(name, async () => {
      const res = await call("POST", "/order", body, { [IDEMPOTENCY_KEY_HEADER]: key });
      assert.equal(res.status, 400);
      const answer = await res.json();
      assert.equal(answer.details[0].field, IDEMPOTENCY_KEY_HEADER);
    });
  }
  assert.equal(await outbox.size(), 0);
  const longest = await call("POST", "/order", body, { [IDEMPOTENCY_KEY_HEADER]: "k".repeat(255) });
  assert.equal(longest.status, 201);
});

Deno.test("campus_orders_placed_total counts committed new orders, not replays", async () => {
  const { call, metrics } = await setup();
  const placed = async () =>
    (await metrics.registry.getSingleMetric("campus_orders_placed_total")!.get()).values[0].value;
  assert.equal(await placed(), 0);
  const order = { item: "Coffee", qty: 1, student_id: "S1" };
  const answers = await Promise.all(
    Array.from({ length: 5 }, () => call("POST", "/order", order)),
  );
  assert.deepEqual(answers.map((r) => r.status), [201, 201, 201, 201, 201]);
  const key = { "idempotency-key": "k-1" };
  assert.equal((await call("POST", "/order", order, key)).status, 201);
  assert.equal((await call("POST", "/order", order, key)).status, 201, "a replay");
  assert.equal((await call("POST", "/order", { item: "Coffee" })).status, 400);
  assert.equal(await placed(), 6, "5 orders, 1 with a key, its replay and a refusal not counted");
});

Deno.test("with authentication off, GET /session says so and the routes stay open", async () => {
  const { call } = await setup();
  assert.deepEqual(await (await call("GET", "/session")).json(), { auth: "off" });
  const res = await call("POST", "/order", { item: "Coffee", qty: 1, student_id: "S1" });
  assert.equal(res.status, 201);
  await res.body?.cancel();
});

Deno.test("POST /session turns a bearer token into the page's session cookie", async () => {
  const { call } = await setup({ AUTH_SECRET: SECRET });
  const token = await signToken(SECRET, { sub: "S1", role: "student", ttlSeconds: 600 });
  const anonymous = await (await call("GET", "/session")).json();
  assert.deepEqual(anonymous.signed_in, false);
  assert.match(anonymous.error, /Authentication required/);

  const started = await call("POST", "/session", undefined, { authorization: `Bearer ${token}` });
  assert.equal(started.status, 200);
  const cookie = started.headers.get("set-cookie") ?? "";
  assert.match(
    cookie,
    new RegExp(`^${SESSION_COOKIE}=[^;]+; Max-Age=\\d+; Path=/; HttpOnly; SameSite=Strict$`),
  );
  const view = await started.json();
  assert.equal(view.sub, "S1");
  assert.equal(view.role, "student");
  assert.equal("token" in view, false, "the token is not echoed");

  const session = `${SESSION_COOKIE}=${token}`;
  assert.equal(
    (await (await call("GET", "/session", undefined, { cookie: session })).json()).sub,
    "S1",
  );
  const orders = await call("GET", "/orders", undefined, { cookie: session });
  assert.equal(orders.status, 200);
  await orders.body?.cancel();

  const refused = await call("POST", "/session");
  assert.equal(refused.status, 401);
  assert.ok(refused.headers.get("www-authenticate")?.startsWith("Bearer"));
  await refused.body?.cancel();

  const ended = await call("DELETE", "/session");
  assert.equal(ended.status, 204);
  assert.match(ended.headers.get("set-cookie") ?? "", /Max-Age=0/);
});

Deno.test("a student token orders for its own student; staff for anyone", async () => {
  const { call } = await setup({ AUTH_SECRET: SECRET });
  const student = await signToken(SECRET, { sub: "S1", role: "student", ttlSeconds: 600 });
  const staff = await signToken(SECRET, { sub: "chef", role: "staff", ttlSeconds: 600 });
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  const own = await call("POST", "/order", { item: "Tea", qty: 1 }, as(student));
  assert.equal(own.status, 201);
  assert.equal((await own.json()).student_id, "S1");
  const other = await call(
    "POST",
    "/order",
    { item: "Tea", qty: 1, student_id: "S2" },
    as(student),
  );
  assert.equal(other.status, 403);
  assert.deepEqual((await other.json()).details.map((d: { field: string }) => d.field), [
    "student_id",
  ]);
  const counter = await call(
    "POST",
    "/order",
    { item: "Tea", qty: 1, student_id: "S2" },
    as(staff),
  );
  assert.equal(counter.status, 201);
  await counter.body?.cancel();
  // Staff must still say for whom.
  const nobody = await call("POST", "/order", { item: "Tea", qty: 1 }, as(staff));
  assert.equal(nobody.status, 400);
  assert.match((await nobody.json()).error, /student_id is required/);
});

Deno.test("a student reusing another student's Idempotency-Key learns nothing of that order", async () => {
  const { call } = await setup({ AUTH_SECRET: SECRET });
  const as = async (sub: string) => ({
    authorization: `Bearer ${await signToken(SECRET, { sub, role: "student", ttlSeconds: 600 })}`,
    [IDEMPOTENCY_KEY_HEADER]: "shared-key",
  });
  const first = await call("POST", "/order", { item: "Tea", qty: 1 }, await as("S1"));
  assert.equal(first.status, 201);
  const { order_id } = await first.json();
  const second = await call("POST", "/order", { item: "Tea", qty: 1 }, await as("S2"));
  assert.equal(second.status, 422);
  const text = await second.text();
  assert.doesNotMatch(text, new RegExp(`${order_id}|S1`));
  assert.match(text, /Idempotency-Key already used/);
});
