/**
 * The student page and the kitchen board in a real browser (Debian's chromium, headless) against
 * a real stack: orders placed from the page, statuses that change live, errors beside the field,
 * and a board whose counts and stock follow the orders.
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

/** Fills the form and presses Place order; returns the id of the element that appeared. */
async function orderFromPage(
  page: Page,
  order: { item: string; qty: string; student_id: string },
  known: readonly string[],
): Promise<string> {
  await page.getByLabel("Student ID").fill(order.student_id);
  await page.getByLabel("Item").selectOption(order.item);
  await page.getByLabel("Quantity").fill(order.qty);
  await page.getByRole("button", { name: "Place order" }).click();
  return await waitFor(async () => {
    const ids = await page.locator("[data-order-id]").evaluateAll((els) =>
      els.map((el) => el.getAttribute("data-order-id") ?? "")
    );
    return ids.find((id) => !known.includes(id));
  }, { what: `a new order element for ${order.qty} x ${order.item}` });
}

/** Fills the order form without sending it. */
async function fillOrder(
  page: Page,
  order: { item: string; qty: string; student_id: string },
): Promise<void> {
  await page.getByLabel("Student ID").fill(order.student_id);
  await page.getByLabel("Item").selectOption(order.item);
  await page.getByLabel("Quantity").fill(order.qty);
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
            async () => (await page.getByLabel("Item").innerText()).includes("Coffee (100 left)"),
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
          await page.getByLabel("Quantity").fill("0");
          await page.getByRole("button", { name: "Place order" }).click();
          const error = page.locator("#qty-error");
          await waitFor(async () =>
            (await error.isVisible()) &&
            (await error.innerText()).includes("qty must be at least 1"), {
            what: "the Quantity error beside the field",
          });
          assert.equal(await page.getByLabel("Quantity").getAttribute("aria-invalid"), "true");
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
        await page.getByLabel("Item").focus();
        await page.keyboard.type("Burger");
        await page.keyboard.press("Tab");
        assert.equal(await page.evaluate("document.activeElement?.id"), "qty");
        await page.keyboard.press("ControlOrMeta+A");
        await page.keyboard.type("2");
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
              (await boardPage.locator(`[data-order-id="${order.order_id}"]`).innerText()).includes(
                "RESERVED",
              ),
            {
              what: `order ${order.order_id} listed RESERVED on the board`,
            },
          );
          await screenshot(boardPage, "board");
          await boardPage.close();
        },
      );

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
          await page.getByLabel("Quantity").fill("2");
          await page.getByRole("button", { name: "Place order" }).click();
          await waitFor(async () => (await ordersOf(stack, changing)).length === 2, {
            what: `the changed form to place a second order for ${changing}`,
          });
          // An answered order is done with: the same form again is another order.
          await page.getByRole("button", { name: "Place order" }).click();
          await waitFor(async () => (await ordersOf(stack, changing)).length === 3, {
            what: `the same form after an answer to place a third order for ${changing}`,
          });
          const quantities = (await ordersOf(stack, changing)).map((o) => o.qty).sort();
          assert.deepEqual(quantities, [1, 2, 2]);
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
