/**
 * `POST /order` as clients use it, over HTTP against the services as real processes on a real
 * broker, with a menu of 300 items: retries with an `Idempotency-Key`, validation messages, item
 * names in any case, unknown items, a dead-lettered order whose error would not fit its event,
 * a half-sent body (408, over a raw TCP connection) and one cut off by shutdown (503).
 */
import assert from "node:assert/strict";
import { ERROR_ID_HEADER } from "@campus/shared/consumer";
import { MAX_REASON_LENGTH } from "@campus/shared/events";
import { SET_ASIDE_REASON } from "../services/inventory/app.ts";
import { menuEnv, Stack } from "./stack.ts";
import {
  finalOrder,
  listNotifications,
  listOrders,
  type OrderView,
  placeOrder,
  postOrder,
  stockLevels,
} from "./client.ts";
import { answers, waitFor } from "./poll.ts";

const integration = { sanitizeOps: false, sanitizeResources: false };
/** Long enough that a request cut off by shutdown is cut off before its time limit. */
const REQUEST_TIMEOUT_MS = 4000;
const MENU: Record<string, number> = { Coffee: 100, Salad: 50 };
for (let i = 0; i < 298; i++) MENU[`Dish number ${i}`] = 10;

Deno.test("POST /order as clients use it", integration, async (t) => {
  const stack = await Stack.start({
    env: {
      MENU: menuEnv(MENU),
      TEST_FAULTS: "on",
      REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    },
  });
  const post = (body: unknown, key?: string) =>
    postOrder(stack, body, {
      headers: {
        "content-type": "application/json",
        ...(key === undefined ? {} : { "Idempotency-Key": key }),
      },
    });
  const notified = (orderId: string) =>
    waitFor(() => listNotifications(stack, orderId).then((n) => n.length ? n : undefined), {
      what: `a notification for ${orderId}`,
    });
  try {
    await t.step(
      "a retry with the same Idempotency-Key gets the same order, charged once",
      async () => {
        const coffee = (await stockLevels(stack)).Coffee;
        const body = { item: "Coffee", qty: 2, student_id: "K1" };
        const first = await fetch(stack.url("order", "/order"), {
          method: "POST",
          headers: { "content-type": "application/json", "Idempotency-Key": "retry-key-1" },
          body: JSON.stringify(body),
        });
        assert.equal(first.status, 201);
        assert.equal(first.headers.get("idempotent-replayed"), null);
        const order = await first.json() as OrderView;
        // The client lost the answer and retries, several times at once for good measure.
        const retries = await Promise.all(
          Array.from({ length: 5 }, () =>
            fetch(stack.url("order", "/order"), {
              method: "POST",
              headers: { "content-type": "application/json", "Idempotency-Key": "retry-key-1" },
              body: JSON.stringify(body),
            })),
        );
        for (const retry of retries) {
          assert.equal(retry.status, 201);
          assert.equal(retry.headers.get("idempotent-replayed"), "true");
          assert.equal((await retry.json()).order_id, order.order_id);
        }
        assert.equal((await finalOrder(stack, order.order_id)).status, "RESERVED");
        const late = await post(body, "retry-key-1");
        assert.equal(late.body.order_id, order.order_id);
        assert.equal(late.body.status, "RESERVED", "a retry sees the order as it stands now");
        const mine = (await listOrders(stack)).filter((o) => o.student_id === "K1");
        assert.equal(mine.length, 1, "one order for all six requests");
        assert.equal((await stockLevels(stack)).Coffee, coffee - 2, "charged once");
        assert.equal((await notified(order.order_id)).length, 1);
      },
    );

    await t.step("the same key with a different body answers 422 naming the conflict", async () => {
      const first = await post({ item: "Salad", qty: 1, student_id: "K2" }, "retry-key-2");
      assert.equal(first.status, 201);
      const other = await post({ item: "Salad", qty: 3, student_id: "K2" }, "retry-key-2");
      assert.equal(other.status, 422);
      assert.match(
        String(other.body.error),
        new RegExp(`"retry-key-2" was already used for order ${first.body.order_id}.*\\(qty\\)`),
      );
      assert.deepEqual(other.body.details, [
        { field: "Idempotency-Key", message: "already used with a different request" },
        { field: "qty", message: "was 1 with this key, now 3" },
      ]);
      const mine = (await listOrders(stack)).filter((o) => o.student_id === "K2");
      assert.equal(mine.length, 1, "the conflicting request placed nothing");
    });

    await t.step("a malformed Idempotency-Key answers 400 naming the header", async () => {
      const res = await post({ item: "Salad", qty: 1, student_id: "K3" }, "k".repeat(256));
      assert.equal(res.status, 400);
      assert.match(String(res.body.error), /Idempotency-Key/);
      assert.deepEqual((res.body.details as { field: string }[]).map((d) => d.field), [
        "Idempotency-Key",
      ]);
    });

    await t.step("validation says what is missing and what type was expected", async () => {
      const missing = await post({ item: "Coffee", qty: 1 });
      assert.equal(missing.status, 400);
      assert.deepEqual(missing.body.details, [
        { field: "student_id", message: "student_id is required" },
      ]);
      assert.equal(missing.body.error, "Invalid order: student_id is required");
      const wrong = await post({ item: "Coffee", qty: "1", student_id: "S1" });
      assert.equal(wrong.status, 400);
      assert.deepEqual(wrong.body.details, [
        { field: "qty", message: "qty must be a number, got string" },
      ]);
      const array = await post("[1, 2]");
      assert.deepEqual(array.body.details, [
        { field: "(body)", message: "expected a JSON object, got array" },
      ]);
    });

    await t.step("an item in another case, with spaces, reserves the menu's item", async () => {
      const coffee = (await stockLevels(stack)).Coffee;
      const placed = await placeOrder(stack, { item: " coffee ", qty: 1, student_id: "C1" });
      assert.equal(placed.item, "coffee", "accepted as sent, trimmed");
      const final = await finalOrder(stack, placed.order_id);
      assert.equal(final.status, "RESERVED");
      assert.equal(final.item, "Coffee", "the order ends with the menu's spelling");
      assert.equal((await stockLevels(stack)).Coffee, coffee - 1);
      const [note] = await notified(placed.order_id);
      assert.match(note.message, /1 x Coffee is confirmed/);
    });

    await t.step("an unknown item fails naming close matches, not the 300-item menu", async () => {
      const placed = await placeOrder(stack, { item: "cofee", qty: 1, student_id: "C2" });
      const final = await finalOrder(stack, placed.order_id);
      assert.equal(final.status, "FAILED");
      assert.equal(final.reason, '"cofee" is not on the menu; did you mean "Coffee"?');
      const far = await placeOrder(stack, { item: "Caviar", qty: 1, student_id: "C3" });
      assert.equal((await finalOrder(stack, far.order_id)).reason, '"Caviar" is not on the menu');
      const [note] = await notified(placed.order_id);
      assert.match(note.message, /did you mean "Coffee"/);
    });

    await t.step(
      "a dead-lettered order whose error is huge gets its outcome, not the error",
      async () => {
        const placed = await placeOrder(stack, {
          item: "Salad",
          qty: 1,
          student_id: "fault:verbose",
        });
        const final = await finalOrder(stack, placed.order_id, 30_000);
        assert.equal(final.status, "FAILED");
        const reason = final.reason ?? "";
        const errorId = new RegExp(`^${SET_ASIDE_REASON} \\(error ([0-9a-f]{8})\\)$`).exec(reason)
          ?.[1];
        assert.ok(errorId, `the plain reason and an error id, got: ${reason}`);
        assert.ok(reason.length <= MAX_REASON_LENGTH, `reason of ${reason.length} characters`);
        const [note] = await notified(placed.order_id);
        assert.equal(note.outcome, "FAILED");
        await waitFor(async () => (await stack.queueDepth("order_placed_dlq")) === 1, {
          what: "the order set aside in order_placed_dlq",
        });
        const [dead] = await stack.broker.take("order_placed_dlq", 10);
        assert.equal(dead.properties.headers[ERROR_ID_HEADER], errorId, "staff find it by its id");
      },
    );

    await t.step(
      "half a body gets 408 after REQUEST_TIMEOUT_MS, and nothing is stored",
      async () => {
        const before = (await listOrders(stack)).length;
        const conn = await sendHalfAnOrder(stack);
        try {
          const answer = await readResponse(conn, REQUEST_TIMEOUT_MS + 20_000);
          assert.equal(answer.status, 408, answer.text);
          assert.match(answer.text, new RegExp(`not received within ${REQUEST_TIMEOUT_MS} ms`));
        } finally {
          conn.close();
        }
        assert.equal((await listOrders(stack)).length, before);
      },
    );

    await t.step("a request cut off by shutdown gets 503, never 500", async () => {
      const conn = await sendHalfAnOrder(stack);
      try {
        const answer = readResponse(conn, 20_000);
        // A request the server has not yet taken off its connection is not "in flight": the
        // stop would only close that connection. A round trip on another connection, begun after
        // the half body was sent, lets a busy server reach the request first.
        assert.ok(await answers(stack.url("order", "/health")), "the order service answers");
        const stopped = stack.stop("order");
        const { status, text } = await answer;
        assert.equal(status, 503, text);
        assert.match(text, /send the request again/);
        await stopped;
      } finally {
        conn.close();
      }
      assert.equal((await stack.exitStatus("order"))?.code, 0, "a graceful stop, not forced");
    });
  } finally {
    await stack.dispose();
  }
});

/** Opens a raw connection to the order service and sends headers and half the body. */
async function sendHalfAnOrder(stack: Stack): Promise<Deno.TcpConn> {
  const { hostname, port } = new URL(stack.url("order"));
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const body = JSON.stringify({ item: "Coffee", qty: 1, student_id: "slow" });
  await conn.write(new TextEncoder().encode(
    `POST /order HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body.slice(0, body.length / 2)}`,
  ));
  return conn;
}

/**
 * Reads one HTTP response off a raw connection: status and whole text. Fails naming what it saw
 * when none is complete within `timeoutMs` or the connection closes first.
 */
async function readResponse(
  conn: Deno.TcpConn,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  const timer = setTimeout(() => conn.close(), timeoutMs);
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  try {
    while (true) {
      const head = text.indexOf("\r\n\r\n");
      const length = Number(/content-length: *(\d+)/i.exec(text)?.[1] ?? NaN);
      if (head >= 0 && text.length >= head + 4 + length) {
        return { status: Number(text.split(" ")[1]), text };
      }
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) throw new Error(`no complete response within ${timeoutMs} ms: "${text}"`);
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
}
