/**
 * Who may see what, with `AUTH_SECRET` set on a real stack: 401 without a valid token (expired,
 * badly signed and malformed told apart), 403 for a student ordering as another, each student's
 * own orders and notifications only (another's order by id is 404), the staff views, 429 with
 * `Retry-After` over `ORDER_RATE_LIMIT`, `/health` `/ready` `/metrics` open, and both pages
 * working in a real browser with tokens under their Content-Security-Policy.
 */
import assert from "node:assert/strict";
import { SESSION_COOKIE, signToken, type TokenClaims } from "@campus/shared/auth";
import { WORK_QUEUES } from "@campus/shared/topology";
import { type Browser, launchBrowser, type Page, screenshot } from "./browser.ts";
import type { NotificationView, OrderView } from "./client.ts";
import { waitFor } from "./poll.ts";
import { INTEGRATION, type ServiceName, Stack } from "./stack.ts";

const SECRET = "auth-suite-secret-0123456789abcdefghijkl";
const RATE_LIMIT = 5;

const token = (sub: string, role: TokenClaims["role"], ttlSeconds = 600) =>
  signToken(SECRET, { sub, role, ttlSeconds });

interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/** Calls a route with `bearer` (when given) and reads the JSON answer. */
async function call<T = Record<string, unknown>>(
  url: string,
  bearer?: string,
  init: RequestInit & { json?: unknown } = {},
): Promise<Answer<T>> {
  const headers = new Headers(init.headers);
  if (bearer) headers.set("authorization", `Bearer ${bearer}`);
  if (init.json !== undefined) headers.set("content-type", "application/json");
  const res = await fetch(url, {
    ...init,
    headers,
    body: init.json === undefined ? init.body : JSON.stringify(init.json),
  });
  if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
    await res.body?.cancel();
    return { status: res.status, headers: res.headers, body: undefined as T };
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, headers: res.headers, body: body as T };
}

/** Places an order that must be accepted. */
async function place(stack: Stack, bearer: string, order: Record<string, unknown>) {
  const answer = await call<OrderView>(stack.url("order", "/order"), bearer, {
    method: "POST",
    json: order,
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body;
}

/** Violations of the Content-Security-Policy a page reports, and console lines that name it. */
async function watchViolations(page: Page): Promise<() => Promise<string[]>> {
  const console: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) console.push(message.text());
  });
  // Added through the browser's debugging protocol, not the page: the policy does not apply.
  await page.addInitScript({
    content: `globalThis.cspViolations = [];
      document.addEventListener("securitypolicyviolation", (event) => {
        globalThis.cspViolations.push(
          event.violatedDirective + " blocked " + (event.blockedURI || "inline"),
        );
      });`,
  });
  return async () => [
    ...await page.evaluate<string[]>("globalThis.cspViolations ?? []"),
    ...console,
  ];
}

async function orderText(page: Page, id: string): Promise<string> {
  const element = page.locator(`[data-order-id="${id}"]`);
  return (await element.count()) === 1 ? await element.innerText() : "";
}

Deno.test({
  name: "with AUTH_SECRET set, students see their own orders and staff see everything",
  ...INTEGRATION,
  fn: async (t) => {
    const stack = await Stack.start({
      env: { AUTH_SECRET: SECRET, ORDER_RATE_LIMIT: String(RATE_LIMIT) },
    });
    let browser: Browser | undefined;
    try {
      const alice = await token("S-alice", "student");
      const bob = await token("S-bob", "student");
      const staff = await token("chef", "staff");
      const order = (path = "") => stack.url("order", path);

      await t.step("/health, /ready and /metrics answer without a token", async () => {
        for (const service of ["order", "inventory", "notification"] as ServiceName[]) {
          for (const path of ["/health", "/ready", "/metrics"]) {
            await waitFor(
              async () => (await call(stack.url(service, path))).status === 200,
              { what: `${service} ${path} to answer 200 without a token` },
            );
          }
        }
      });

      await t.step("without a token every other route answers 401 with a challenge", async () => {
        const routes: [ServiceName, string, string][] = [
          ["order", "POST", "/order"],
          ["order", "GET", "/orders"],
          ["order", "GET", "/orders/some-id"],
          ["order", "GET", "/menu"],
          ["order", "GET", "/events"],
          ["order", "GET", "/board/events"],
          ["inventory", "GET", "/inventory"],
          ["notification", "GET", "/notifications"],
        ];
        for (const [service, method, path] of routes) {
          const answer = await call<{ error: string }>(stack.url(service, path), undefined, {
            method,
            ...(method === "POST" ? { json: { item: "Coffee", qty: 1, student_id: "S1" } } : {}),
          });
          assert.equal(answer.status, 401, `${method} ${path}`);
          assert.equal(answer.headers.get("www-authenticate"), 'Bearer realm="campus-food"');
          assert.match(answer.body.error, /Authentication required/);
        }
      });

      await t.step("expired, badly signed and malformed tokens are told apart", async () => {
        const expired = await signToken(SECRET, { sub: "S1", role: "student", ttlSeconds: -60 });
        const forged = await signToken(`${SECRET}-not-ours`, {
          sub: "S1",
          role: "staff",
          ttlSeconds: 600,
        });
        const cases: [string, string, RegExp][] = [
          ["expired", expired, /^The token expired at .*; get a new one$/],
          ["badly signed", forged, /signature is invalid/],
          ["malformed", "not.a-token", /malformed/],
        ];
        const messages = new Set<string>();
        for (const [name, bearer, message] of cases) {
          const answer = await call<{ error: string }>(order("/orders"), bearer);
          assert.equal(answer.status, 401, name);
          assert.match(answer.body.error, message, name);
          const challenge = answer.headers.get("www-authenticate") ?? "";
          assert.match(challenge, /^Bearer realm="campus-food", error="invalid_token", /, name);
          assert.match(challenge, /error_description="[^"]+"/, name);
          messages.add(answer.body.error);
        }
        assert.equal(messages.size, 3, "three different messages");
      });

      let aliceOrder: OrderView;
      let bobOrder: OrderView;
      await t.step("a student token orders as its student, and only as them", async () => {
        aliceOrder = await place(stack, alice, { item: "Coffee", qty: 1 });
        assert.equal(aliceOrder.student_id, "S-alice", "student_id taken from the token");
        bobOrder = await place(stack, bob, { item: "Pizza", qty: 1, student_id: "S-bob" });
        const other = await call<{ error: string; details: { field: string }[] }>(
          order("/order"),
          alice,
          { method: "POST", json: { item: "Coffee", qty: 1, student_id: "S-bob" } },
        );
        assert.equal(other.status, 403);
        assert.match(other.body.error, /student_id must be your own \(S-alice\)/);
        assert.deepEqual(other.body.details.map((d) => d.field), ["student_id"]);
        // Staff take orders at the counter for any student.
        const counter = await place(stack, staff, { item: "Taco", qty: 1, student_id: "S-carol" });
        assert.equal(counter.student_id, "S-carol");
      });

      await t.step("a student reads only their own orders and notifications", async () => {
        const mine = await call<OrderView[]>(order("/orders"), alice);
        assert.equal(mine.status, 200);
        assert.deepEqual(mine.body.map((o) => o.student_id), ["S-alice"]);
        const asked = await call<{ error: string }>(order("/orders?student_id=S-bob"), alice);
        assert.equal(asked.status, 403);
        assert.match(asked.body.error, /student_id/);

        // Another's order answers exactly as an order that does not exist.
        const unknownId = crypto.randomUUID();
        const theirs = await call(order(`/orders/${bobOrder.order_id}`), alice);
        const unknown = await call(order(`/orders/${unknownId}`), alice);
        assert.equal(theirs.status, 404);
        assert.equal(unknown.status, 404);
        assert.equal(
          JSON.stringify(theirs.body).replace(bobOrder.order_id, "ID"),
          JSON.stringify(unknown.body).replace(unknownId, "ID"),
        );
        assert.equal((await call(order(`/orders/${aliceOrder.order_id}`), alice)).status, 200);

        const notifications = stack.url("notification", "/notifications");
        const all = await waitFor(async () => {
          const { body } = await call<NotificationView[]>(notifications, staff);
          return body.length >= 3 ? body : undefined;
        }, { what: "three notifications listed for staff" });
        assert.deepEqual(
          new Set(all.map((n) => n.student_id)),
          new Set(["S-alice", "S-bob", "S-carol"]),
        );
        const own = await call<NotificationView[]>(notifications, alice);
        assert.deepEqual(own.body.map((n) => n.order_id), [aliceOrder.order_id]);
        const byOrder = await call<NotificationView[]>(
          `${notifications}?order_id=${bobOrder.order_id}`,
          alice,
        );
        assert.deepEqual(byOrder.body, [], "another's notification is not listed by order id");
        const other = await call(`${notifications}?student_id=S-bob`, alice);
        assert.equal(other.status, 403);
      });

      await t.step("staff read every order; the board's stream is for staff only", async () => {
        const all = await call<OrderView[]>(order("/orders"), staff);
        assert.deepEqual(
          new Set(all.body.map((o) => o.student_id)),
          new Set(["S-alice", "S-bob", "S-carol"]),
        );
        assert.equal((await call(order(`/orders/${bobOrder.order_id}`), staff)).status, 200);

        const board = await call<{ error: string }>(order("/board/events"), alice);
        assert.equal(board.status, 403);
        assert.match(board.body.error, /for staff; the token's role is student/);
        assert.match(board.headers.get("www-authenticate") ?? "", /insufficient_scope/);
        const staffBoard = await call(order("/board/events"), staff);
        assert.equal(staffBoard.status, 200);
        assert.match(staffBoard.headers.get("content-type") ?? "", /text\/event-stream/);

        assert.equal((await call(order("/events?student_id=S-bob"), alice)).status, 403);
        assert.equal((await call(order("/events?student_id=S-alice"), alice)).status, 200);
        assert.equal((await call(order("/events?student_id=S-bob"), staff)).status, 200);
        // Stock levels and the menu are not personal: any valid token reads them.
        assert.equal((await call(stack.url("inventory", "/inventory"), alice)).status, 200);
        assert.equal((await call(order("/menu"), alice)).status, 200);
      });

      await t.step(
        `over ${RATE_LIMIT} orders a minute a student gets 429 with Retry-After`,
        async () => {
          const dave = await token("S-dave", "student");
          for (let i = 0; i < RATE_LIMIT; i++) await place(stack, dave, { item: "Salad", qty: 1 });
          const over = await call<{ error: string; details: { field: string }[] }>(
            order("/order"),
            dave,
            { method: "POST", json: { item: "Salad", qty: 1 } },
          );
          assert.equal(over.status, 429);
          const retryAfter = Number(over.headers.get("retry-after"));
          assert.ok(
            Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
            `Retry-After ${over.headers.get("retry-after")}`,
          );
          assert.match(over.body.error, new RegExp(`at most ${RATE_LIMIT} per student per minute`));
          assert.deepEqual(over.body.details.map((d) => d.field), ["student_id"]);
          // Another student is not held back by Dave's orders.
          await place(stack, await token("S-erin", "student"), { item: "Salad", qty: 1 });
        },
      );

      await t.step("the pages load without a token, under a strict policy", async () => {
        for (const path of ["/", "/board", "/pages/student.js"]) {
          const res = await fetch(order(path));
          await res.body?.cancel();
          assert.equal(res.status, 200, path);
          const csp = res.headers.get("content-security-policy") ?? "";
          assert.match(csp, /default-src 'self'/, path);
          assert.match(csp, /script-src 'self'(;|$)/, path);
          assert.match(csp, /style-src 'self'(;|$)/, path);
          assert.match(csp, /frame-ancestors 'none'/, path);
          assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
        }
      });

      browser = await launchBrowser();

      await t.step("the student page works with a token given in its address", async () => {
        const context = await browser!.newContext({ viewport: { width: 390, height: 844 } });
        const page = await context.newPage();
        const violations = await watchViolations(page);
        await page.goto(order(`/#token=${alice}`));
        await waitFor(
          async () => (await page.locator("#session-who").innerText()).includes("S-alice"),
          {
            what: "the page to say it is signed in as S-alice",
          },
        );
        assert.equal(new URL(page.url()).hash, "", "the token is taken out of the address");
        const cookie = (await context.cookies()).find((c) => c.name === SESSION_COOKIE);
        assert.ok(cookie, "a session cookie");
        assert.equal(cookie.httpOnly, true);
        assert.equal(cookie.sameSite, "Strict");
        assert.equal(await page.getByLabel("Student ID").inputValue(), "S-alice");
        assert.equal(await page.getByLabel("Student ID").getAttribute("readonly"), "");

        // Her earlier order comes through the stream the cookie opened, with its final status.
        await waitFor(async () => /RESERVED/.test(await orderText(page, aliceOrder.order_id)), {
          what: `S-alice's earlier order ${aliceOrder.order_id} listed RESERVED`,
        });
        const item = page.getByLabel("Item 1", { exact: true });
        await waitFor(async () => (await item.innerText()).includes("left)"), {
          what: "the Item list to show stock (the order service reads inventory with a token)",
        });
        await item.selectOption("Burger");
        await page.getByLabel("Quantity 1", { exact: true }).fill("2");
        await page.getByRole("button", { name: "Place order" }).click();
        const id = await waitFor(async () => {
          const ids = await page.locator("[data-order-id]").evaluateAll((els) =>
            els.map((el) => el.getAttribute("data-order-id") ?? "")
          );
          return ids.find((id) => id !== aliceOrder.order_id);
        }, { what: "the order placed from the page to appear" });
        await waitFor(async () => /2 × Burger[\s\S]*RESERVED/.test(await orderText(page, id)), {
          what: `the page's order ${id} to turn RESERVED`,
        });
        assert.equal(await page.locator(`[data-order-id="${bobOrder.order_id}"]`).count(), 0);
        await screenshot(page, "auth-student");
        // Her session cookie cancels her own order from the page.
        await page.locator(`[data-order-id="${id}"]`)
          .getByRole("button", { name: "Cancel order" }).click();
        await waitFor(async () => /CANCELLED/.test(await orderText(page, id)), {
          what: `the page's order ${id} cancelled with the session cookie`,
        });
        assert.deepEqual(await violations(), [], "no Content-Security-Policy violation");
        await context.close();
      });

      await t.step(
        "the board works with a staff token pasted into it, not a student's",
        async () => {
          const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
          const page = await context.newPage();
          const violations = await watchViolations(page);
          await page.goto(order("/board"));
          await waitFor(
            async () => (await page.locator("#connection").innerText()) === "Not signed in",
            {
              what: "the board to say no one is signed in",
            },
          );
          assert.ok(await page.getByLabel("Access token").isVisible(), "the sign-in form is shown");
          await page.getByLabel("Access token").fill(alice);
          await page.getByRole("button", { name: "Sign in" }).click();
          await waitFor(
            async () => (await page.locator("#token-error").innerText()).includes("for staff"),
            { what: "the board to refuse a student's token" },
          );
          assert.equal(await page.locator("[data-order-id]").count(), 0, "no order shown");

          await page.getByLabel("Access token").fill(staff);
          await page.getByRole("button", { name: "Sign in" }).click();
          await waitFor(
            async () =>
              (await page.locator(`tr[data-order-id="${bobOrder.order_id}"]`).count()) === 1,
            { what: "the board to list S-bob's order for staff" },
          );
          const reserved = await waitFor(async () => {
            const n = Number.parseInt(await page.locator('[data-count="RESERVED"]').innerText());
            return Number.isNaN(n) ? undefined : n;
          }, { what: "the board's RESERVED count" });
          assert.ok(reserved >= 3, `RESERVED ${reserved}`);
          assert.equal(
            await page.locator("[data-queue]").count(),
            WORK_QUEUES.length,
            "every work queue's depth shown",
          );
          // Staff's session cookie moves a ticket on.
          const ticket = (column: string) =>
            page.locator(`[data-tickets="${column}"] [data-order-id="${bobOrder.order_id}"]`);
          await ticket("RESERVED").getByRole("button", { name: "Start" }).click();
          await waitFor(async () => (await ticket("PREPARING").count()) === 1, {
            what: `S-bob's ticket moved to PREPARING with staff's session cookie`,
          });
          await screenshot(page, "auth-board");
          assert.deepEqual(await violations(), [], "no Content-Security-Policy violation");

          // The watch itself works: an inline script injected now is blocked and reported.
          await page.evaluate(`{
            const script = document.createElement("script");
            script.textContent = "document.title = 'injected'";
            document.body.append(script);
          }`);
          await waitFor(async () => (await violations()).some((v) => /script-src/.test(v)), {
            what: "the injected inline script to be reported as a violation",
          });
          assert.notEqual(await page.title(), "injected");
          await context.close();
        },
      );
    } finally {
      await browser?.close();
      await stack.dispose();
    }
  },
});
