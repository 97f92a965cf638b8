/**
 * The kitchen on a real stack, with `AUTH_SECRET` set, on both store engines (PostgreSQL with
 * two order replicas, each move asked of either): a cart goes RESERVED → PREPARING → READY
 * (recalled, made READY again) → COLLECTED, every move the rules refuse answering 409 with the
 * order's status and a repeat answering 200 unchanged; food not collected within a short
 * `PICKUP_WINDOW_MS` is EXPIRED once, however many replicas sweep; and who may: a student
 * cancels only their own order (another's is 404), the kitchen's moves are staff only (403),
 * staff may cancel anyone's with a reason.
 */
import assert from "node:assert/strict";
import { signToken, type TokenClaims } from "@campus/shared/auth";
import { waitFor } from "./poll.ts";
import { INTEGRATION, Stack, type StackOptions } from "./stack.ts";

const SECRET = "kitchen-suite-secret-0123456789abcdefghij";
const MENU = { Burger: 50, Coffee: 100, Soup: 20 };
/** Short, so that an uncollected order expires within the suite's deadlines. */
const PICKUP_WINDOW_MS = 2000;

/** An order as the API shows it, the fields this suite reads. */
interface KitchenOrder {
  order_id: string;
  student_id: string;
  lines: { item: string; qty: number }[];
  status: string;
  reason?: string;
  updated_at: string;
  reserved_at?: string;
  ready_at?: string;
  cancelled_by?: string;
  stock_released_at?: string;
}

const token = (sub: string, role: TokenClaims["role"]) =>
  signToken(SECRET, { sub, role, ttlSeconds: 600 });

/** A call's status and JSON answer. */
async function call<T = KitchenOrder>(
  url: string,
  bearer: string | undefined,
  method = "GET",
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() as T };
}

for (
  const [engine, options] of [
    ["SQLite", {}],
    ["PostgreSQL, two order replicas", { store: "postgres", replicas: { order: 2 } }],
  ] as [string, StackOptions][]
) {
  Deno.test(`the kitchen's moves, expiry and who may (${engine})`, INTEGRATION, async (t) => {
    const stack = await Stack.start({
      ...options,
      menu: MENU,
      env: { AUTH_SECRET: SECRET, PICKUP_WINDOW_MS: String(PICKUP_WINDOW_MS) },
    });
    const replicas = stack.replicasOf("order");
    let turn = 0;
    /** The URL of `path` on the next order replica: moves go to every replica in turn. */
    const order = (path: string) => stack.url("order", path, turn++ % replicas);
    try {
      const staff = await token("chef", "staff");
      const alice = await token("S-alice", "student");
      const bob = await token("S-bob", "student");

      const place = async (bearer: string, body: unknown) => {
        const placed = await call(order("/order"), bearer, "POST", body);
        assert.equal(placed.status, 201, JSON.stringify(placed.body));
        return placed.body;
      };
      const get = async (id: string) => (await call(order(`/orders/${id}`), staff)).body;
      const reserved = (id: string) =>
        waitFor(async () => {
          const now = await get(id);
          return now.status === "RESERVED" ? now : undefined;
        }, { what: `order ${id} to be RESERVED` });
      const status = (id: string, to: string, bearer = staff) =>
        call(order(`/orders/${id}/status`), bearer, "POST", { status: to });
      const cancel = (id: string, bearer: string, body?: unknown) =>
        call(order(`/orders/${id}/cancel`), bearer, "POST", body);
      /** Asserts a 409 that names where the order stands. */
      const refused = async (
        answer: Promise<{ status: number; body: KitchenOrder }>,
        current: string,
        what: string,
      ) => {
        const { status, body } = await answer;
        assert.equal(status, 409, `${what}: expected 409, got ${status} ${JSON.stringify(body)}`);
        assert.equal(body.status, current, `${what}: the 409 names the current status`);
      };

      await t.step("a cart moves through the kitchen; any other move is a 409", async () => {
        const cart = await place(alice, {
          lines: [{ item: "burger", qty: 2 }, { item: "Coffee", qty: 1 }],
        });
        const id = cart.order_id;
        await refused(status(id, "PREPARING"), "PLACED", "PREPARING before inventory answered");
        const ready = await reserved(id);
        assert.deepEqual(ready.lines, [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }]);
        assert.ok(ready.reserved_at, "reserved_at is shown");

        await refused(status(id, "READY"), "RESERVED", "READY before PREPARING");
        await refused(status(id, "COLLECTED"), "RESERVED", "COLLECTED before READY");
        const preparing = await status(id, "PREPARING");
        assert.equal(preparing.status, 200);
        assert.equal(preparing.body.status, "PREPARING", "made before the answer");
        const again = await status(id, "PREPARING");
        assert.equal(again.status, 200, "a repeat answers 200");
        assert.equal(again.body.updated_at, preparing.body.updated_at, "and changes nothing");
        await refused(cancel(id, alice), "PREPARING", "a cancel once cooking started");
        await refused(cancel(id, staff), "PREPARING", "a staff cancel once cooking started");

        const first = await status(id, "READY");
        assert.equal(first.body.status, "READY");
        assert.ok(first.body.ready_at, "ready_at is shown");
        assert.equal((await status(id, "READY")).status, 200, "a second READY answers 200");
        assert.equal((await status(id, "PREPARING")).body.status, "PREPARING", "a recall");
        assert.equal((await status(id, "READY")).body.status, "READY");
        const collected = await status(id, "COLLECTED");
        assert.equal(collected.status, 200);
        assert.equal(collected.body.status, "COLLECTED");
        await refused(status(id, "READY"), "COLLECTED", "READY after COLLECTED");
        await refused(status(id, "PREPARING"), "COLLECTED", "a recall after COLLECTED");
        await refused(cancel(id, alice), "COLLECTED", "a cancel after COLLECTED");
        assert.equal((await status(id, "COLLECTED")).status, 200, "a repeated COLLECTED");
        for (let r = 0; r < replicas; r++) {
          const seen = await call(stack.url("order", `/orders/${id}`, r), alice);
          assert.equal(seen.body.status, "COLLECTED", `replica ${r} shows the order COLLECTED`);
        }
        const stock = await call<{ item: string; quantity: number }[]>(
          stack.url("inventory", "/inventory"),
          staff,
        );
        const left = Object.fromEntries(stock.body.map((s) => [s.item, s.quantity]));
        assert.deepEqual([left.Burger, left.Coffee], [48, 99], "the food made keeps its stock");
      });

      await t.step("food not collected within the window expires, once", async () => {
        const placed = await place(bob, { item: "Soup", qty: 1 });
        const id = placed.order_id;
        await reserved(id);
        assert.equal((await status(id, "PREPARING")).status, 200);
        const ready = await status(id, "READY");
        assert.equal(ready.status, 200);
        const expired = await waitFor(async () => {
          const now = await get(id);
          return now.status === "EXPIRED" ? now : undefined;
        }, {
          timeoutMs: PICKUP_WINDOW_MS + 15_000,
          what: `order ${id} to expire within 10 s of its ${PICKUP_WINDOW_MS} ms window`,
        });
        assert.equal(expired.ready_at, ready.body.ready_at);
        await refused(status(id, "COLLECTED"), "EXPIRED", "COLLECTED after the window");
        await refused(status(id, "PREPARING"), "EXPIRED", "a recall after the window");
        await refused(cancel(id, bob), "EXPIRED", "a cancel after the window");
        let counted = 0;
        for (let r = 0; r < replicas; r++) {
          const text = await (await fetch(stack.url("order", "/metrics", r))).text();
          const line = /^campus_orders_expired_total (\S+)$/m.exec(text);
          assert.ok(line, `order replica ${r} exposes campus_orders_expired_total`);
          counted += Number(line[1]);
        }
        assert.equal(counted, 1, "one expiry, however many replicas sweep");
      });

      await t.step(
        "a student cancels their own order only; the kitchen is staff only",
        async () => {
          const mine = await place(alice, { item: "Coffee", qty: 1 });
          const theirs = await place(bob, { item: "Coffee", qty: 1 });
          await reserved(theirs.order_id);

          const noToken = await call(order(`/orders/${mine.order_id}/cancel`), undefined, "POST");
          assert.equal(noToken.status, 401);
          const notMine = await cancel(theirs.order_id, alice);
          assert.equal(notMine.status, 404, "another student's order answers as unknown");
          assert.deepEqual(notMine.body, { error: `Order "${theirs.order_id}" not found` });
          const studentMove = await status(theirs.order_id, "PREPARING", bob);
          assert.equal(
            studentMove.status,
            403,
            "a student cannot move the kitchen, even their own",
          );
          assert.equal((await get(theirs.order_id)).status, "RESERVED", "the 403 moved nothing");

          const own = await cancel(mine.order_id, alice);
          assert.equal(own.status, 200);
          assert.deepEqual([own.body.status, own.body.cancelled_by], ["CANCELLED", "student"]);
          const twice = await cancel(mine.order_id, alice);
          assert.equal(twice.status, 200, "a second cancel answers 200");
          assert.equal(twice.body.updated_at, own.body.updated_at, "and changes nothing");

          const byStaff = await cancel(theirs.order_id, staff, { reason: "the fryer is broken" });
          assert.equal(byStaff.status, 200);
          assert.deepEqual(
            [byStaff.body.status, byStaff.body.cancelled_by, byStaff.body.reason],
            ["CANCELLED", "staff", "the fryer is broken"],
          );
          const badReason = await cancel(theirs.order_id, staff, { reason: "" });
          assert.equal(badReason.status, 400);
          const released = await waitFor(async () => {
            const now = await get(theirs.order_id);
            return now.stock_released_at ? now : undefined;
          }, { what: `inventory to release the stock of cancelled order ${theirs.order_id}` });
          assert.equal(released.status, "CANCELLED");
        },
      );
    } finally {
      await stack.dispose();
    }
  });
}
