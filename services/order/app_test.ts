import assert from "node:assert/strict";
import { createRouter } from "@campus/shared/http";
import { createLogger } from "@campus/shared/log";
import { openOutboxStore } from "@campus/shared/outbox_store";
import { loadConfig } from "@campus/shared/config";
import { ServiceMetrics } from "@campus/shared/metrics";
import { SqliteDatabase } from "@campus/shared/sqlite";
import { Authenticator, SESSION_COOKIE, signToken } from "@campus/shared/auth";
import { createOrderService, IDEMPOTENCY_KEY_HEADER } from "./app.ts";
import { waitFor } from "../../tests/poll.ts";
import { EventStreamReader } from "../../tests/event_stream_client.ts";

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

// The kitchen: carts, cancels and the kitchen's moves.

/** A placed order's JSON, through POST /order. */
async function placed(
  call: Awaited<ReturnType<typeof setup>>["call"],
  body: unknown = { item: "Coffee", qty: 1, student_id: "S1" },
  headers: HeadersInit = {},
) {
  const res = await call("POST", "/order", body, headers);
  assert.equal(res.status, 201, `expected 201 for ${JSON.stringify(body)}`);
  return await res.json();
}

/** The order moved to RESERVED by inventory's answer on order_status. */
async function reserve(service: Awaited<ReturnType<typeof setup>>["service"], order: {
  order_id: string;
  student_id: string;
  lines: unknown;
}) {
  const { order_id, student_id, lines } = order;
  await service.subscriptions.order_status.handle({
    routingKey: "inventory.reserved",
    body: { order_id, student_id, lines },
    retries: 0,
  });
}

Deno.test("POST /order takes a cart: lines merged, in the order's JSON and its event", async () => {
  const { call, outbox } = await setup();
  const order = await placed(call, {
    student_id: "S1",
    lines: [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }, { item: "burger", qty: 1 }],
  });
  assert.deepEqual(order.lines, [{ item: "Burger", qty: 3 }, { item: "Coffee", qty: 1 }]);
  assert.equal(order.status, "PLACED");
  assert.equal("item" in order, false, "a cart of two lines has no flat item");
  assert.deepEqual(await (await call("GET", `/orders/${order.order_id}`)).json(), order);
  const one = await placed(call, { student_id: "S1", lines: [{ item: "Tea", qty: 2 }] });
  assert.deepEqual([one.item, one.qty], ["Tea", 2], "a one-line cart also has item and qty");
  assert.equal(await outbox.size(), 2);
});

Deno.test("POST /order refuses a bad cart naming the line's field", async (t) => {
  const { call, outbox } = await setup();
  const cases: [string, unknown, string][] = [
    [
      "a bad qty",
      { student_id: "S1", lines: [{ item: "Tea", qty: 1 }, { item: "Soup" }] },
      [
        "lines[1].qty",
      ].join(),
    ],
    ["no lines", { student_id: "S1", lines: [] }, "lines"],
    ["merged over the cap", {
      student_id: "S1",
      lines: [{ item: "Tea", qty: 90 }, { item: "tea", qty: 20 }],
    }, "lines[1].qty"],
    ["an unknown field", { student_id: "S1", lines: [{ item: "Tea", qty: 1 }], x: 1 }, "x"],
  ];
  for (const [name, body, field] of cases) {
    await t.step(name, async () => {
      const res = await call("POST", "/order", body);
      assert.equal(res.status, 400);
      const answer = await res.json();
      assert.deepEqual(answer.details.map((d: { field: string }) => d.field), [field]);
      assert.match(answer.error, /^Invalid order: /);
    });
  }
  assert.equal(await outbox.size(), 0);
});

Deno.test("an Idempotency-Key replays a cart sent again, lines in any order", async () => {
  const { call, outbox } = await setup();
  const key = { [IDEMPOTENCY_KEY_HEADER]: "cart-1" };
  const lines = [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }];
  const first = await placed(call, { student_id: "S1", lines }, key);
  const again = await call("POST", "/order", { student_id: "S1", lines: lines.toReversed() }, key);
  assert.equal(again.status, 201);
  assert.equal(again.headers.get("idempotent-replayed"), "true");
  assert.equal((await again.json()).order_id, first.order_id);
  const changed = await call("POST", "/order", {
    student_id: "S1",
    lines: [{ item: "Burger", qty: 3 }],
  }, key);
  assert.equal(changed.status, 422);
  assert.deepEqual((await changed.json()).details.map((d: { field: string }) => d.field), [
    IDEMPOTENCY_KEY_HEADER,
    "lines",
  ]);
  assert.equal(await outbox.size(), 1);
});

Deno.test("the kitchen moves an order on, answering 409 for a move not allowed", async () => {
  const { call, service, outbox } = await setup();
  const order = await placed(call);
  const status = (to: unknown) => call("POST", `/orders/${order.order_id}/status`, { status: to });

  const early = await status("PREPARING");
  assert.equal(early.status, 409, "not reserved yet");
  assert.deepEqual(await early.json(), {
    error: `Cannot move order ${order.order_id} to PREPARING: it is PLACED`,
    status: "PLACED",
  });
  await reserve(service, order);
  const before = await outbox.size();

  const started = await status("PREPARING");
  assert.equal(started.status, 200);
  const preparing = await started.json();
  assert.equal(preparing.status, "PREPARING");
  assert.ok(preparing.reserved_at);
  const repeat = await status("PREPARING");
  assert.equal(repeat.status, 200, "a repeat answers 200");
  assert.deepEqual(await repeat.json(), preparing, "and changes nothing");
  const cancel = await call("POST", `/orders/${order.order_id}/cancel`);
  assert.equal(cancel.status, 409, "cooking started");
  assert.equal((await cancel.json()).status, "PREPARING");

  const ready = await (await status("READY")).json();
  assert.equal(ready.status, "READY");
  assert.ok(ready.ready_at);
  assert.equal((await status("READY")).status, 200);
  assert.equal((await (await status("PREPARING")).json()).status, "PREPARING", "a recall");
  assert.equal((await (await status("READY")).json()).status, "READY");
  const collected = await (await status("COLLECTED")).json();
  assert.equal(collected.status, "COLLECTED");
  const late = await status("READY");
  assert.equal(late.status, 409);
  assert.equal((await late.json()).status, "COLLECTED");
  assert.deepEqual(await (await call("GET", `/orders/${order.order_id}`)).json(), collected);
  assert.equal(await outbox.size() - before, 5, "one event per move made");
});

Deno.test("POST /orders/{id}/status refuses a bad body naming status, and an unknown id", async (t) => {
  const { call } = await setup();
  const order = await placed(call);
  const cases: [string, unknown, string, RegExp][] = [
    ["a status staff cannot ask for", { status: "EXPIRED" }, "status", /must be one of/],
    ["a cancel through /status", { status: "CANCELLED" }, "status", /PREPARING, READY/],
    ["no status", {}, "status", /status is required/],
    ["an unknown field", { status: "READY", at: 1 }, "at", /unknown field "at"/],
    ["not an object", ["READY"], "(body)", /expected a JSON object, got array/],
  ];
  for (const [name, body, field, message] of cases) {
    await t.step(name, async () => {
      const res = await call("POST", `/orders/${order.order_id}/status`, body);
      assert.equal(res.status, 400);
      const answer = await res.json();
      assert.equal(answer.details[0].field, field);
      assert.match(answer.error, message);
    });
  }
  await t.step("no body", async () => {
    const res = await call("POST", `/orders/${order.order_id}/status`);
    assert.equal(res.status, 400);
    assert.equal((await res.json()).details[0].field, "status");
  });
  await t.step("an unknown id", async () => {
    const res = await call("POST", "/orders/nobody/status", { status: "READY" });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: 'Order "nobody" not found' });
  });
});

Deno.test("a cancel moves a placed or reserved order once; a repeat answers 200", async () => {
  const { call, service, outbox, metrics } = await setup();
  const order = await placed(call);
  const before = await outbox.size();
  const first = await call("POST", `/orders/${order.order_id}/cancel`);
  assert.equal(first.status, 200);
  const cancelled = await first.json();
  assert.equal(cancelled.status, "CANCELLED");
  assert.equal(cancelled.cancelled_by, "student");
  const again = await call("POST", `/orders/${order.order_id}/cancel`, {});
  assert.equal(again.status, 200);
  assert.deepEqual(await again.json(), cancelled, "nothing changed");
  assert.equal(await outbox.size() - before, 1, "one OrderCancelled");

  const reserved = await placed(call);
  await reserve(service, reserved);
  const withReason = await call("POST", `/orders/${reserved.order_id}/cancel`, {
    reason: "  the fryer is broken ",
  });
  assert.equal(withReason.status, 200);
  assert.equal((await withReason.json()).reason, "the fryer is broken");

  const failed = await placed(call);
  await service.subscriptions.order_status.handle({
    routingKey: "inventory.failed",
    body: { ...failed, reason: "none left" },
    retries: 0,
  });
  const tooLate = await call("POST", `/orders/${failed.order_id}/cancel`);
  assert.equal(tooLate.status, 409);
  assert.deepEqual((await tooLate.json()).status, "FAILED");
  assert.equal((await call("POST", "/orders/nobody/cancel")).status, 404);

  const counted = await metrics.registry.getSingleMetric("campus_orders_cancelled_total")!.get();
  assert.equal(counted.values[0].value, 2, "each cancel counted once");
});

Deno.test("POST /orders/{id}/cancel refuses a bad reason naming it", async (t) => {
  const { call } = await setup();
  const order = await placed(call);
  const cases: [string, unknown, string][] = [
    ["empty", { reason: "   " }, "reason"],
    ["too long", { reason: "x".repeat(1001) }, "reason"],
    ["not text", { reason: 5 }, "reason"],
    ["an unknown field", { reason: "x", by: "me" }, "by"],
  ];
  for (const [name, body, field] of cases) {
    await t.step(name, async () => {
      const res = await call("POST", `/orders/${order.order_id}/cancel`, body);
      assert.equal(res.status, 400);
      assert.equal((await res.json()).details[0].field, field);
    });
  }
  assert.equal((await (await call("GET", `/orders/${order.order_id}`)).json()).status, "PLACED");
});

Deno.test("inventory.released on order_status records the stock back, once", async () => {
  const { call, service } = await setup();
  const order = await placed(call);
  await call("POST", `/orders/${order.order_id}/cancel`);
  const release = () =>
    service.subscriptions.order_status.handle({
      routingKey: "inventory.released",
      body: { order_id: order.order_id, student_id: "S1", lines: order.lines },
      retries: 0,
    });
  await release();
  const first = await (await call("GET", `/orders/${order.order_id}`)).json();
  assert.ok(first.stock_released_at, "stock_released_at is shown once set");
  await release();
  const again = await (await call("GET", `/orders/${order.order_id}`)).json();
  assert.equal(again.stock_released_at, first.stock_released_at, "a replay changes nothing");
});

Deno.test("inventory.released of an order that is not cancelled changes nothing", async () => {
  const { call, service } = await setup();
  const order = await placed(call);
  // The answer to an order.cancelled published by hand for an order still PLACED.
  await service.subscriptions.order_status.handle({
    routingKey: "inventory.released",
    body: { order_id: order.order_id, student_id: "S1", lines: order.lines },
    retries: 0,
  });
  const after = await (await call("GET", `/orders/${order.order_id}`)).json();
  assert.equal(after.stock_released_at, undefined, "not marked released");
  assert.deepEqual(after, order, "the order is as it was");
});

Deno.test("with authentication on, a student cancels only their own; /status is staff only", async () => {
  const { call, service } = await setup({ AUTH_SECRET: SECRET });
  const as = async (sub: string, role: "student" | "staff" = "student") => ({
    authorization: `Bearer ${await signToken(SECRET, { sub, role, ttlSeconds: 600 })}`,
  });
  const s1 = await as("S1");
  const s2 = await as("S2");
  const staff = await as("chef", "staff");
  const mine = await placed(call, { item: "Tea", qty: 1 }, s1);
  const other = await placed(call, { item: "Tea", qty: 1 }, s2);

  assert.equal((await call("POST", `/orders/${mine.order_id}/cancel`)).status, 401);
  const notMine = await call("POST", `/orders/${other.order_id}/cancel`, undefined, s1);
  assert.equal(notMine.status, 404, "another's order answers as unknown");
  assert.deepEqual(await notMine.json(), { error: `Order "${other.order_id}" not found` });
  const own = await call("POST", `/orders/${mine.order_id}/cancel`, undefined, s1);
  assert.equal(own.status, 200);
  assert.equal((await own.json()).cancelled_by, "student");

  await reserve(service, other);
  const studentStatus = await call(
    "POST",
    `/orders/${other.order_id}/status`,
    { status: "PREPARING" },
    s2,
  );
  assert.equal(studentStatus.status, 403, "a student token may not move the kitchen");
  assert.equal((await studentStatus.json()).details[0].field, "role");
  const kitchen = await call(
    "POST",
    `/orders/${other.order_id}/status`,
    { status: "PREPARING" },
    staff,
  );
  assert.equal(kitchen.status, 200);

  const another = await placed(call, { item: "Tea", qty: 1 }, s2);
  const byStaff = await call(
    "POST",
    `/orders/${another.order_id}/cancel`,
    { reason: "closing early" },
    staff,
  );
  assert.equal(byStaff.status, 200);
  const cancelled = await byStaff.json();
  assert.deepEqual([cancelled.cancelled_by, cancelled.reason], ["staff", "closing early"]);
  const staffLate = await call("POST", `/orders/${other.order_id}/cancel`, undefined, staff);
  assert.equal(staffLate.status, 409, "staff cancel by the same moves");
});

Deno.test("the first READY is timed from RESERVED; a READY order expires after its window", async () => {
  const { call, service, metrics } = await setup({ PICKUP_WINDOW_MS: "300" });
  const order = await placed(call);
  await reserve(service, order);
  const status = (to: string) => call("POST", `/orders/${order.order_id}/status`, { status: to });
  for (const to of ["PREPARING", "READY", "PREPARING", "READY"]) {
    assert.equal((await status(to)).status, 200, `to ${to}`);
  }
  const value = async (name: string, suffix = "") =>
    (await metrics.registry.getSingleMetric(name)!.get()).values
      .find((v) => (v as { metricName?: string }).metricName === `${name}${suffix}` || !suffix)
      ?.value;
  assert.equal(await value("campus_order_ready_seconds", "_count"), 1, "the first READY only");
  service.start!();
  try {
    const expired = await waitFor(async () => {
      const now = await (await call("GET", `/orders/${order.order_id}`)).json();
      return now.status === "EXPIRED" ? now : undefined;
    }, { what: "the READY order to expire after its 300 ms window" });
    assert.ok(Date.parse(expired.updated_at) >= Date.parse(expired.ready_at) + 300);
  } finally {
    await service.stop!();
  }
  assert.equal(await value("campus_orders_expired_total"), 1);
  const collect = await status("COLLECTED");
  assert.equal(collect.status, 409);
  assert.equal((await collect.json()).status, "EXPIRED");
});

Deno.test("a student's open page hears each move this replica makes", async () => {
  const { call, service } = await setup();
  const order = await placed(call);
  const stream = new EventStreamReader(await call("GET", "/events?student_id=S1"));
  try {
    await stream.next("the snapshot of S1's orders", (e) => e.event === "orders");
    await reserve(service, order);
    await call("POST", `/orders/${order.order_id}/status`, { status: "PREPARING" });
    const preparing = await stream.next(
      "the order PREPARING",
      (e) => e.event === "order" && (e.data as { status: string }).status === "PREPARING",
    );
    assert.equal((preparing.data as { order_id: string }).order_id, order.order_id);
    const other = await placed(call);
    await call("POST", `/orders/${other.order_id}/cancel`);
    const cancelled = await stream.next(
      "the other order CANCELLED",
      (e) => e.event === "order" && (e.data as { status: string }).status === "CANCELLED",
    );
    assert.equal((cancelled.data as { order_id: string }).order_id, other.order_id);
  } finally {
    await stream.cancel();
    await service.stop!();
  }
});
