/**
 * The student page and the kitchen board in a real browser (Debian's chromium, headless) against
 * a real stack: carts placed from the page, statuses that change live, errors beside the field,
 * a cancel from the page, a board whose tickets move through the kitchen at the press of its
 * buttons and whose counts and stock follow the orders, and pages on one order replica that see
 * what another replica did.
 */
import assert from "node:assert/strict";
import { type Browser, launchBrowser, type Page, screenshot } from "./browser.ts";
import { getJson, listNotifications, type OrderView, placeOrder } from "./client.ts";
import { waitFor } from "./poll.ts";
import { INTEGRATION, Stack } from "./stack.ts";
import { WORK_QUEUES } from "@campus/shared/topology";

/** A phone-sized screen: the student page must work on one. */
const PHONE = { width: 390, height: 844 };

/** Counts the page's top-level navigations after the first load: placing an order makes none. */
function countNavigations(page: Page): () => number {
  let count = 0;
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) count++;
  });
  return () => count;
}

/** Text of the element of order `id` on the student page, or "" while there is none. */
async function orderText(page: Page, id: string): Promise<string> {
  const element = page.locator(`[data-order-id="${id}"]`);
  return (await element.count()) === 1 ? (await element.innerText()) : "";
}

/** A line of the cart as the form takes it. */
type CartLine = { item: string; qty: string };

/** Fills the cart with `lines` (one or more) and the student ID, without sending it. */
async function fillCart(page: Page, lines: readonly CartLine[], student_id: string) {
  await page.getByLabel("Student ID").fill(student_id);
  // Back to one line, then one more per line.
  for (let n = await page.locator(".cart-line").count(); n > 1; n--) {
    await page.getByRole("button", { name: `Remove item ${n}`, exact: true }).click();
  }
  for (const [i, line] of lines.entries()) {
    if (i > 0) await page.getByRole("button", { name: "Add another item" }).click();
    await page.getByLabel(`Item ${i + 1}`, { exact: true }).selectOption(line.item);
    await page.getByLabel(`Quantity ${i + 1}`, { exact: true }).fill(line.qty);
  }
  assert.equal(await page.locator(".cart-line").count(), lines.length, "the cart's lines");
}

/** Fills the cart and presses Place order; returns the id of the element that appeared. */
async function cartFromPage(
  page: Page,
  lines: readonly CartLine[],
  student_id: string,
  known: readonly string[],
): Promise<string> {
  await fillCart(page, lines, student_id);
  await page.getByRole("button", { name: "Place order" }).click();
  const what = lines.map((line) => `${line.qty} x ${line.item}`).join(", ");
  return await waitFor(async () => {
    const ids = await page.locator("[data-order-id]").evaluateAll((els) =>
      els.map((el) => el.getAttribute("data-order-id") ?? "")
    );
    return ids.find((id) => !known.includes(id));
  }, { what: `a new order element for ${what}` });
}

/** Places a one-line order from the page; returns the id of the element that appeared. */
function orderFromPage(
  page: Page,
  order: { item: string; qty: string; student_id: string },
  known: readonly string[],
): Promise<string> {
  return cartFromPage(page, [order], order.student_id, known);
}

/** Fills the order form (one line) without sending it. */
function fillOrder(
  page: Page,
  order: { item: string; qty: string; student_id: string },
): Promise<void> {
  return fillCart(page, [order], order.student_id);
}

/** The text above the Place order button, or "" while it is hidden. */
async function formError(page: Page): Promise<string> {
  const error = page.locator("#form-error");
  return (await error.isVisible()) ? await error.innerText() : "";
}

/**
 * Lets the page's next `POST /order` reach the order service, which commits the order and
 * answers, then drops that answer as a broken connection would. Later requests pass untouched;
 * `done()` resolves once the answer was dropped and takes the interception away.
 */
async function loseNextAnswer(page: Page, stack: Stack): Promise<{ done(): Promise<void> }> {
  const url = stack.url("order", "/order");
  let dropped: () => void;
  const droppedOnce = new Promise<void>((resolve) => dropped = resolve);
  let first = true;
  await page.route(url, async (route) => {
    if (!first || route.request().method() !== "POST") return await route.continue();
    first = false;
    const answer = await route.fetch();
    if (answer.status() !== 201) {
      throw new Error(`POST /order answered ${answer.status()}: ${await answer.text()}`);
    }
    await route.abort("connectionreset");
    dropped();
  });
  return {
    async done() {
      await droppedOnce;
      await page.unroute(url);
    },
  };
}

async function ordersOf(stack: Stack, student: string): Promise<OrderView[]> {
  const query = `/orders?student_id=${encodeURIComponent(student)}`;
  return (await getJson<OrderView[]>(stack.url("order", query))).body;
}

/** Sends a move (`cancel`, or `status` with its body) of an order to a replica; its answer. */
async function postMove(
  stack: Stack,
  id: string,
  move: "cancel" | "status",
  body?: unknown,
  replica = 0,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(stack.url("order", `/orders/${id}/${move}`, replica), {
    method: "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** The stock of `item` that inventory reports. */
async function stockOf(stack: Stack, item: string): Promise<number | undefined> {
  const levels = (await getJson<{ item: string; quantity: number }[]>(
    stack.url("inventory", "/inventory"),
  )).body;
  return levels.find((level) => level.item === item)?.quantity;
}

/** The ticket of order `id` in the board's column `column` (`RESERVED`, `PREPARING`, `READY`). */
function ticketIn(board: Page, column: string, id: string) {
  return board.locator(`[data-tickets="${column}"] [data-order-id="${id}"]`);
}

/** Waits until order `id` has its ticket in `column` of the board, and only there. */
async function waitForTicket(board: Page, column: string, id: string, what = ""): Promise<void> {
  await waitFor(async () => {
    const here = await ticketIn(board, column, id).count();
    const anywhere = await board.locator(`[data-tickets] [data-order-id="${id}"]`).count();
    return here === 1 && anywhere === 1;
  }, { what: `the ticket of ${id} in the board's ${column} column${what}` });
}

/** Waits until the student page shows order `id` at `status`; returns its text. */
async function waitForStatus(page: Page, id: string, status: string, what = ""): Promise<string> {
  return await waitFor(async () => {
    const element = page.locator(`[data-order-id="${id}"]`);
    if ((await element.count()) !== 1) return undefined;
    return (await element.getAttribute("data-status")) === status
      ? await element.innerText()
      : undefined;
  }, { what: `order ${id} to show ${status} on the student page${what}` });
}

/** The browser's `document` and `getComputedStyle`, which Deno's types do not know. */
type StyleWindow = {
  document: { querySelector(selector: string): unknown };
  getComputedStyle(element: unknown): { getPropertyValue(name: string): string };
};

/**
 * The computed `property` of the first element matching `selector`, e.g. `font-size`, or ""
 * while there is none. Found and read in one task of the page: the board redraws its tickets, and
 * an element read after it was replaced has no style.
 */
async function styleOf(page: Page, selector: string, property: string): Promise<string> {
  return await page.evaluate(([selector, property]) => {
    const browser = globalThis as unknown as StyleWindow;
    const element = browser.document.querySelector(selector);
    return element ? browser.getComputedStyle(element).getPropertyValue(property) : "";
  }, [selector, property]);
}

/** Whether the computed style of the first element matching `selector` strikes its text. */
async function struckThrough(page: Page, selector: string): Promise<boolean> {
  return (await styleOf(page, selector, "text-decoration-line")).includes("line-through");
}

/** The board's number in the cell `selector`, or undefined while it shows none. */
async function boardNumber(board: Page, selector: string): Promise<number | undefined> {
  const text = (await board.locator(selector).first().innerText()).trim();
  const n = Number.parseInt(text, 10);
  return Number.isNaN(n) ? undefined : n;
}

Deno.test({
  name: "the student page and the kitchen board, live in a real browser",
  ...INTEGRATION,
  fn: async (t) => {
    const stack = await Stack.start();
    let browser: Browser | undefined;
    try {
      browser = await launchBrowser();
      const context = await browser.newContext({ viewport: PHONE });
      const page = await context.newPage();
      const navigations = countNavigations(page);
      await page.goto(stack.url("order", "/"));
      const student = "S-page";
      const seen: string[] = [];

      await t.step(
        "a Coffee order shows RESERVED and its confirmation, without navigating",
        async () => {
          // The menu comes from inventory, with the stock left.
          await waitFor(
            async () =>
              (await page.getByLabel("Item 1", { exact: true }).innerText()).includes(
                "Coffee (100 left)",
              ),
            {
              what: "the Item list to offer Coffee with its stock",
            },
          );
          const id = await orderFromPage(
            page,
            { item: "Coffee", qty: "1", student_id: student },
            seen,
          );
          seen.push(id);
          const text = await waitFor(async () => {
            const text = await orderText(page, id);
            return text.includes("RESERVED") && text.includes("is confirmed") ? text : undefined;
          }, { what: `order ${id} to show RESERVED and the confirmation on the page` });
          assert.match(text, new RegExp(`Hi ${student}, your order of 1 x Coffee is confirmed`));
          assert.equal(navigations(), 1, "only the first load navigated");
          // The page shows the very words the notification service recorded.
          const [notification] = await waitFor(
            () => listNotifications(stack, id).then((n) => n.length ? n : undefined),
            {
              what: `the notification of ${id}`,
            },
          );
          assert.ok(
            text.includes(notification.message),
            `${text} includes ${notification.message}`,
          );
          await screenshot(page, "student-reserved");
        },
      );

      await t.step("an order the kitchen cannot serve shows FAILED with the reason", async () => {
        const id = await orderFromPage(
          page,
          { item: "Sushi", qty: "60", student_id: student },
          seen,
        );
        seen.push(id);
        const text = await waitFor(async () => {
          const text = await orderText(page, id);
          return text.includes("FAILED") ? text : undefined;
        }, { what: `order ${id} to show FAILED` });
        assert.match(text, /Cannot reserve "Sushi": 60 requested, 50 in stock/);
        assert.match(text, /Sorry S-page, your order of 60 x Sushi could not be completed/);
      });

      await t.step(
        "with inventory stopped an order shows PLACED, then RESERVED once it is back",
        async () => {
          await stack.stop("inventory");
          const id = await orderFromPage(
            page,
            { item: "Pizza", qty: "2", student_id: student },
            seen,
          );
          seen.push(id);
          await waitFor(async () => (await orderText(page, id)).includes("PLACED"), {
            what: `order ${id} to show PLACED`,
          });
          await screenshot(page, "student-placed");
          await stack.start("inventory");
          const text = await waitFor(async () => {
            const text = await orderText(page, id);
            return text.includes("RESERVED") ? text : undefined;
          }, { timeoutMs: 30_000, what: `the same element of ${id} to turn RESERVED` });
          assert.ok(!text.includes("PLACED"), text);
          assert.match(text, /your order of 2 x Pizza is confirmed/);
          assert.equal(navigations(), 1, "the page was not reloaded");
        },
      );

      await t.step(
        "quantity 0 shows the API's message beside the field and orders nothing",
        async () => {
          const before = (await ordersOf(stack, student)).length;
          await page.getByLabel("Quantity 1", { exact: true }).fill("0");
          await page.getByRole("button", { name: "Place order" }).click();
          const error = page.locator("#qty-0-error");
          await waitFor(async () =>
            (await error.isVisible()) &&
            (await error.innerText()).includes("qty must be at least 1"), {
            what: "the Quantity error beside the field",
          });
          assert.equal(
            await page.getByLabel("Quantity 1", { exact: true }).getAttribute("aria-invalid"),
            "true",
          );
          assert.equal(
            await page.locator("[data-order-id]").count(),
            seen.length,
            "no new element",
          );
          assert.equal((await ordersOf(stack, student)).length, before, "no order was created");
          await screenshot(page, "student-invalid");
        },
      );

      await t.step("after a reload the page shows the student's earlier orders", async () => {
        await page.reload();
        for (const id of seen) {
          await waitFor(async () => /RESERVED|FAILED/.test(await orderText(page, id)), {
            what: `order ${id} listed with its final status after the reload`,
          });
        }
        assert.equal(await page.getByLabel("Student ID").inputValue(), student);
      });

      await t.step("the form works from the keyboard alone", async () => {
        await page.getByLabel("Item 1", { exact: true }).focus();
        await page.keyboard.type("Burger");
        await page.keyboard.press("Tab");
        assert.equal(await page.evaluate("document.activeElement?.id"), "qty-0");
        await page.keyboard.press("ControlOrMeta+A");
        await page.keyboard.type("2");
        // Remove is off while the cart has one line; Add another item comes next.
        await page.keyboard.press("Tab");
        assert.equal(await page.evaluate("document.activeElement?.id"), "add-line");
        await page.keyboard.press("Tab");
        assert.equal(await page.evaluate("document.activeElement?.id"), "student_id");
        await page.keyboard.press("Tab");
        await page.keyboard.press("Enter");
        const id = await waitFor(async () => {
          const ids = await page.locator("[data-order-id]").evaluateAll((els) =>
            els.map((el) => el.getAttribute("data-order-id") ?? "")
          );
          return ids.find((id) => !seen.includes(id));
        }, { what: "the order placed from the keyboard" });
        seen.push(id);
        await waitFor(async () => /2 × Burger[\s\S]*RESERVED/.test(await orderText(page, id)), {
          what: `the keyboard's order ${id} of 2 Burgers to be RESERVED`,
        });
        // Orders reserved and one refused, on a phone: the picture README shows.
        await screenshot(page, "student-page");
      });

      await t.step(
        "the board shows counts and stock, and both change when an order completes",
        async () => {
          const boardPage = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
          await boardPage.goto(stack.url("order", "/board"));
          const reserved = await waitFor(() => boardNumber(boardPage, '[data-count="RESERVED"]'), {
            what: "the board's RESERVED count",
          });
          assert.equal(reserved, 3, "the three orders reserved from the page");
          assert.equal(await boardNumber(boardPage, '[data-count="FAILED"]'), 1);
          const coffeeCell = '[data-item="Coffee"] td';
          const coffee = await waitFor(() => boardNumber(boardPage, coffeeCell), {
            what: "the board's Coffee stock",
          });
          assert.equal(coffee, 99);
          assert.equal(
            await boardPage.locator("[data-queue]").count(),
            WORK_QUEUES.length,
            "every work queue listed",
          );
          const order = await placeOrder(stack, { item: "Coffee", qty: 3, student_id: "S-board" });
          await waitFor(
            async () => (await boardNumber(boardPage, '[data-count="RESERVED"]')) === 4,
            {
              what: "the RESERVED count to reach 4",
            },
          );
          await waitFor(async () => (await boardNumber(boardPage, coffeeCell)) === 96, {
            what: "Coffee stock on the board to drop to 96",
          });
          await waitFor(
            async () =>
              (await boardPage.locator(`tr[data-order-id="${order.order_id}"]`).innerText())
                .includes("RESERVED"),
            {
              what: `order ${order.order_id} listed RESERVED on the board`,
            },
          );
          await screenshot(boardPage, "board");
          await boardPage.close();
        },
      );

      await t.step("a cart of two lines shows RESERVED with both lines", async () => {
        const id = await cartFromPage(
          page,
          [{ item: "Burger", qty: "2" }, { item: "Coffee", qty: "1" }],
          "S-cart",
          seen,
        );
        seen.push(id);
        const text = await waitForStatus(page, id, "RESERVED");
        assert.match(text, /2 × Burger/);
        assert.match(text, /1 × Coffee/);
        const stored = (await getJson<{ lines: CartLine[] }>(stack.url("order", `/orders/${id}`)))
          .body;
        assert.deepEqual(
          stored.lines.map((line) => `${line.qty} x ${line.item}`).sort(),
          ["1 x Coffee", "2 x Burger"],
        );
        await screenshot(page, "student-cart");
      });

      await t.step(
        "Cancel on the student page cancels the order, and its stock comes back",
        async () => {
          const before = await stockOf(stack, "Salad");
          const id = await orderFromPage(
            page,
            { item: "Salad", qty: "3", student_id: "S-cancel" },
            seen,
          );
          seen.push(id);
          await waitForStatus(page, id, "RESERVED");
          await waitFor(async () => (await stockOf(stack, "Salad")) === before! - 3, {
            what: "3 Salads taken from stock",
          });
          const element = page.locator(`[data-order-id="${id}"]`);
          await element.getByRole("button", { name: "Cancel order" }).click();
          const text = await waitForStatus(page, id, "CANCELLED", " after Cancel");
          assert.match(text, /Cancelled/);
          assert.equal(
            await element.getByRole("button", { name: "Cancel order" }).count(),
            0,
            "no Cancel button on a cancelled order",
          );
          const stored = await getJson<OrderView>(stack.url("order", `/orders/${id}`));
          assert.equal(stored.body.status, "CANCELLED");
          await waitFor(async () => (await stockOf(stack, "Salad")) === before, {
            what: `Salad stock back at ${before} once inventory released the cancelled order`,
          });
          await screenshot(page, "student-cancelled");
        },
      );

      await t.step(
        "the board moves a ticket start, ready, recall, ready, collected; the student page follows",
        async () => {
          const boardPage = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
          try {
            await boardPage.goto(stack.url("order", "/board"));
            const id = await orderFromPage(
              page,
              { item: "Pizza", qty: "1", student_id: "S-kitchen" },
              seen,
            );
            seen.push(id);
            await waitForStatus(page, id, "RESERVED");
            await waitForTicket(boardPage, "RESERVED", id);
            const reserved = ticketIn(boardPage, "RESERVED", id);
            assert.match(await reserved.innerText(), /1 × Pizza/);
            await waitFor(
              async () => /\d+ (s|min)/.test(await reserved.locator(".age").innerText()),
              {
                what: "the ticket's age",
              },
            );

            const press = async (column: string, label: string) =>
              await ticketIn(boardPage, column, id).getByRole("button", { name: label }).click();

            await press("RESERVED", "Start");
            await waitForTicket(boardPage, "PREPARING", id, " after Start");
            const preparing = await waitForStatus(page, id, "PREPARING");
            assert.match(preparing, /The kitchen is preparing your order/);
            assert.equal(
              await page.locator(`[data-order-id="${id}"]`)
                .getByRole("button", { name: "Cancel order" }).count(),
              0,
              "no Cancel once cooking started",
            );

            await press("PREPARING", "Ready");
            await waitForTicket(boardPage, "READY", id, " after Ready");
            const ready = await waitForStatus(page, id, "READY");
            assert.match(ready, /Ready for pickup/);
            // In the words the notification service records for READY.
            const told = await waitFor(async () => {
              const notifications = await listNotifications(stack, id);
              return notifications.find((n) => (n.outcome as string) === "READY");
            }, { what: `the READY notification of ${id}` });
            await waitFor(async () => (await orderText(page, id)).includes(told.message), {
              what: `the student page to show "${told.message}"`,
            });
            // READY stands out: its banner is an alert, larger than the rest of the card.
            const card = `[data-order-id="${id}"]`;
            assert.equal(await page.locator(`${card} .standing`).getAttribute("role"), "alert");
            const banner = parseFloat(await styleOf(page, `${card} .standing`, "font-size"));
            const meta = parseFloat(await styleOf(page, `${card} .meta`, "font-size"));
            assert.ok(banner > meta * 1.3, `banner ${banner}px, meta ${meta}px`);
            await screenshot(page, "student-ready");
            await screenshot(boardPage, "board-ready");

            await press("READY", "Recall");
            await waitForTicket(boardPage, "PREPARING", id, " after Recall");
            await waitForStatus(page, id, "PREPARING", " after the recall");

            await press("PREPARING", "Ready");
            await waitForTicket(boardPage, "READY", id, " after Ready again");
            await waitForStatus(page, id, "READY", " again");
            await press("READY", "Collected");
            await waitFor(
              async () =>
                (await boardPage.locator(`[data-tickets] [data-order-id="${id}"]`).count()) === 0,
              { what: `the ticket of ${id} to leave the board once collected` },
            );
            const collected = await waitForStatus(page, id, "COLLECTED");
            assert.match(collected, /Collected/);
            const again = await postMove(stack, id, "status", { status: "PREPARING" });
            assert.equal(again.status, 409, "a collected order cannot be recalled");
            assert.equal(again.body.status, "COLLECTED");
          } finally {
            await boardPage.close();
          }
        },
      );

      await t.step("a cancelled order leaves its column and shows struck through", async () => {
        const boardPage = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
        try {
          await boardPage.goto(stack.url("order", "/board"));
          const order = await placeOrder(stack, { item: "Taco", qty: 2, student_id: "S-struck" });
          await waitForTicket(boardPage, "RESERVED", order.order_id);
          const cancel = await postMove(stack, order.order_id, "cancel", {
            reason: "the grill is down",
          });
          assert.equal(cancel.status, 200);
          const ended = boardPage.locator(`#ended [data-order-id="${order.order_id}"]`);
          await waitFor(async () => (await ended.count()) === 1, {
            what: `order ${order.order_id} in the board's cancelled and expired list`,
          });
          assert.equal(
            await boardPage.locator(`[data-tickets] [data-order-id="${order.order_id}"]`).count(),
            0,
            "no ticket left in a column",
          );
          const text = await ended.innerText();
          assert.match(text, /CANCELLED/);
          assert.match(text, /2 × Taco/);
          assert.match(text, /the grill is down/);
          assert.ok(
            await struckThrough(boardPage, `#ended [data-order-id="${order.order_id}"] .lines`),
            "its lines struck through",
          );
          assert.ok(
            await struckThrough(boardPage, `tr[data-order-id="${order.order_id}"] td.items`),
            "struck through among the latest orders too",
          );
          await screenshot(boardPage, "board-cancelled");
        } finally {
          await boardPage.close();
        }
      });

      await t.step(
        "Try again after an answer lost on the way places the order once",
        async () => {
          const retrying = "S-retry";
          const form = { item: "Salad", qty: "1", student_id: retrying };
          const lost = await loseNextAnswer(page, stack);
          await fillOrder(page, form);
          await page.getByRole("button", { name: "Place order" }).click();
          await waitFor(async () => (await ordersOf(stack, retrying)).length === 1, {
            what: `the first attempt's order of ${retrying} committed though its answer was lost`,
          });
          await waitFor(async () => (await formError(page)).includes("Try again"), {
            what: 'the page to say "Try again" after the lost answer',
          });
          await lost.done();
          await page.getByRole("button", { name: "Place order" }).click();
          const [order] = await ordersOf(stack, retrying);
          await waitFor(async () => (await orderText(page, order.order_id)).includes("Salad"), {
            what: `the page to show order ${order.order_id} once the retry is answered`,
          });
          const orders = await ordersOf(stack, retrying);
          assert.equal(
            orders.length,
            1,
            `one order for one intended order, got ${
              orders.map((o) => `${o.order_id} (${o.qty} x ${o.item})`).join(", ")
            }`,
          );
          // The page now follows the student it ordered for: their one order, listed once.
          assert.deepEqual(
            await page.locator("[data-order-id]").evaluateAll((els) =>
              els.map((el) => el.getAttribute("data-order-id"))
            ),
            [order.order_id],
          );
        },
      );

      await t.step(
        "after a lost answer a changed form is a new order, and so is the next one",
        async () => {
          const changing = "S-change";
          const lost = await loseNextAnswer(page, stack);
          await fillOrder(page, { item: "Taco", qty: "1", student_id: changing });
          await page.getByRole("button", { name: "Place order" }).click();
          await waitFor(async () => (await formError(page)).includes("Try again"), {
            what: 'the page to say "Try again" after the lost answer',
          });
          await lost.done();
          // Two Tacos, not one: a different order, so it must not be taken for a retry.
          await page.getByLabel("Quantity 1", { exact: true }).fill("2");
          await page.getByRole("button", { name: "Place order" }).click();
          await waitFor(async () => (await ordersOf(stack, changing)).length === 2, {
            what: `the changed form to place a second order for ${changing}`,
          });
          // An answered order is done with: the same form again is another order.
          await page.getByRole("button", { name: "Place order" }).click();
          await waitFor(async () => (await ordersOf(stack, changing)).length === 3, {
            what: `the same form after an answer to place a third order for ${changing}`,
          });
          const orders = await ordersOf(stack, changing);
          const quantities = orders.map((o) => o.qty).sort();
          assert.deepEqual(quantities, [1, 2, 2], JSON.stringify(orders));
        },
      );

      await t.step(
        "a page refused a stream (too many open) asks again and catches up once one closes",
        async () => {
          const crowded = "S-crowd";
          const order = await placeOrder(stack, { item: "Pasta", qty: 1, student_id: crowded });
          // STREAMS_PER_STUDENT (5) streams of this student, held open elsewhere.
          const held = await Promise.all(
            Array.from(
              { length: 5 },
              () => fetch(stack.url("order", `/events?student_id=${crowded}`)),
            ),
          );
          try {
            assert.deepEqual(held.map((res) => res.status), [200, 200, 200, 200, 200]);
            const studentId = page.getByLabel("Student ID");
            await studentId.fill(crowded);
            await studentId.blur();
            const connection = page.locator("#connection");
            await waitFor(async () => (await connection.innerText()).includes("trying again"), {
              what: "the page to say it will ask again for the refused stream",
            });
            await held.shift()!.body!.cancel();
            await waitFor(
              async () => (await orderText(page, order.order_id)).includes("1 × Pasta"),
              { timeoutMs: 30_000, what: `the page to list ${crowded}'s order once a slot freed` },
            );
            await waitFor(async () => (await connection.getAttribute("data-state")) === "live", {
              what: "the page to say it is live again",
            });
          } finally {
            await Promise.all(held.map((res) => res.body?.cancel()));
          }
        },
      );
    } finally {
      await browser?.close();
      await stack.dispose();
    }
  },
});

Deno.test({
  name: "pages on one order replica see the moves made on another",
  ...INTEGRATION,
  fn: async (t) => {
    // A short pickup window, so that an order left READY expires within the suite.
    const stack = await Stack.start({
      store: "postgres",
      replicas: { order: 2 },
      env: { PICKUP_WINDOW_MS: "8000" },
    });
    let browser: Browser | undefined;
    try {
      browser = await launchBrowser();
      const page = await browser.newPage({ viewport: PHONE });
      const desk = { width: 1280, height: 900 };
      const boards = [
        await browser.newPage({ viewport: desk }),
        await browser.newPage({
          viewport: desk,
        }),
      ];
      await page.goto(stack.url("order", "/", 0));
      await boards[0].goto(stack.url("order", "/board", 0));
      await boards[1].goto(stack.url("order", "/board", 1));
      const student = "S-replica";
      const seen: string[] = [];
      let id = "";

      await t.step("a ticket started on one replica moves on the other's pages", async () => {
        await waitFor(
          async () =>
            (await page.getByLabel("Item 1", { exact: true }).innerText()).includes("Coffee ("),
          { what: "the Item list to offer Coffee with its stock" },
        );
        id = await cartFromPage(
          page,
          [{ item: "Coffee", qty: "1" }, { item: "Pizza", qty: "1" }],
          student,
          seen,
        );
        seen.push(id);
        await waitForStatus(page, id, "RESERVED");
        await waitForTicket(boards[1], "RESERVED", id, " on replica 1");
        await ticketIn(boards[1], "RESERVED", id).getByRole("button", { name: "Start" }).click();
        await waitForStatus(page, id, "PREPARING", " on replica 0, started on replica 1");
        await waitForTicket(boards[0], "PREPARING", id, " on replica 0");
        await ticketIn(boards[0], "PREPARING", id).getByRole("button", { name: "Ready" }).click();
        await waitForTicket(boards[1], "READY", id, " on replica 1, made ready on replica 0");
        await waitForStatus(page, id, "READY");
      });

      await t.step("an order never collected expires, struck through on both boards", async () => {
        for (const [replica, board] of boards.entries()) {
          const ended = board.locator(`#ended [data-order-id="${id}"]`);
          await waitFor(async () => (await ended.count()) === 1, {
            timeoutMs: 40_000,
            what: `order ${id} in the expired list of the board on replica ${replica}`,
          });
          assert.match(await ended.innerText(), /EXPIRED/);
          assert.ok(await struckThrough(board, `#ended [data-order-id="${id}"] .lines`));
          assert.equal(await board.locator(`[data-tickets] [data-order-id="${id}"]`).count(), 0);
        }
        const text = await waitForStatus(page, id, "EXPIRED");
        assert.match(text, /Not collected in time/);
      });

      await t.step("a cancel on one replica is struck through on the other's board", async () => {
        const order = await placeOrder(stack, { item: "Sushi", qty: 1, student_id: student }, 1);
        // The student page on replica 0 hears of the order through its feed.
        await waitForStatus(page, order.order_id, "RESERVED", " heard from replica 1");
        await waitForTicket(boards[1], "RESERVED", order.order_id, " on replica 1");
        await page.locator(`[data-order-id="${order.order_id}"]`)
          .getByRole("button", { name: "Cancel order" }).click();
        await waitForStatus(page, order.order_id, "CANCELLED");
        const ended = boards[1].locator(`#ended [data-order-id="${order.order_id}"]`);
        await waitFor(async () => (await ended.count()) === 1, {
          what: `order ${order.order_id}, cancelled on replica 0, listed on replica 1's board`,
        });
        assert.match(await ended.innerText(), /CANCELLED/);
        assert.ok(
          await struckThrough(boards[1], `#ended [data-order-id="${order.order_id}"] .lines`),
        );
        await screenshot(boards[1], "board-replica");
      });
    } finally {
      await browser?.close();
      await stack.dispose();
    }
  },
});
