/**
 * Reservations decided in a batch, as the consumer runs them: in one transaction without
 * savepoints, readied by `prepareReservations`. On PostgreSQL the batch decides in memory and
 * writes its decisions at the commit; what it decides must be what one order at a time would.
 */
import assert from "node:assert/strict";
import type { Database } from "@campus/shared/database";
import { openOutboxStore } from "@campus/shared/outbox_store";
import {
  drainOutbox,
  postgresTest,
  storeContract,
  withTestDatabase,
} from "@campus/testing/store_contract";
import type { Reservation } from "./stock.ts";
import { openStockStore, type StockStore } from "./stock_store.ts";

const order = (order_id: string, item: string, qty: number) => ({
  order_id,
  lines: [{ item, qty }],
  student_id: "S1",
});

async function openStock(db: Database) {
  const outbox = await openOutboxStore(db);
  return { outbox, stock: await openStockStore(db, outbox, { Coffee: 3, Pizza: 1 }) };
}

const stockOf = async (stock: StockStore) =>
  Object.fromEntries((await stock.levels()).map((l) => [l.item, l.quantity]));

/** What a reservation says, in a line. */
const told = (r: Reservation) =>
  `${r.event.order_id} ${r.outcome}${r.duplicate ? " again" : ""}: ` +
  (r.outcome === "FAILED" ? r.event.reason : JSON.stringify(r.event.lines));

storeContract(
  "a batch without savepoints decides each order as one at a time would",
  async ({ db }) => {
    const { stock, outbox } = await openStock(db);
    await stock.reserve(order("before", "Pizza", 1));
    await drainOutbox(outbox);
    const orders = [
      order("o1", "Coffee", 2),
      order("o2", "coffee", 2),
      order("o1", "Coffee", 2),
      order("before", "Pizza", 1),
      order("unprepared", "Coffee", 1),
      order("o3", "Caviar", 1),
    ];
    const results = await db.transaction(async () => {
      await stock.prepareReservations(
        orders.filter((o) => o.order_id !== "unprepared").map((o) => ({
          order_id: o.order_id,
          items: [o.lines[0].item],
        })),
      );
      const decided: Reservation[] = [];
      for (const o of orders) decided.push(await stock.reserve(o));
      return decided;
    }, { savepoints: false });
    assert.deepEqual(results.map(told), [
      'o1 RESERVED: [{"item":"Coffee","qty":2,"remaining":1}]',
      'o2 FAILED: Cannot reserve "Coffee": 2 requested, 1 in stock',
      'o1 RESERVED again: [{"item":"Coffee","qty":2,"remaining":1}]',
      'before RESERVED again: [{"item":"Pizza","qty":1,"remaining":0}]',
      'unprepared RESERVED: [{"item":"Coffee","qty":1,"remaining":0}]',
      'o3 FAILED: "Caviar" is not on the menu',
    ]);
    assert.deepEqual(await stockOf(stock), { Coffee: 0, Pizza: 0 });
    assert.deepEqual(
      (await drainOutbox(outbox)).map((e) =>
        `${e.type} ${(e.body as { order_id: string }).order_id}`
      ),
      [
        "InventoryReserved o1",
        "InventoryFailed o2",
        "InventoryReserved o1",
        "InventoryReserved before",
        "InventoryReserved unprepared",
        "InventoryFailed o3",
      ],
    );
    // Each decision was recorded: delivered again, each is announced as it was decided.
    const again = await Promise.all(orders.map((o) => stock.reserve(o)));
    assert.deepEqual(
      again.map((r) => `${r.event.order_id} ${r.outcome} ${r.duplicate}`),
      results.map((r) => `${r.event.order_id} ${r.outcome} true`),
    );
  },
);

storeContract("a batch that fails keeps none of its decisions", async ({ db }) => {
  const { stock, outbox } = await openStock(db);
  await assert.rejects(
    db.transaction(async () => {
      await stock.prepareReservations([{ order_id: "o1", items: ["Coffee"] }]);
      await stock.reserve(order("o1", "Coffee", 3));
      throw new Error("a later message of the batch failed");
    }, { savepoints: false }),
    /a later message of the batch failed/,
  );
  assert.deepEqual(await stockOf(stock), { Coffee: 3, Pizza: 1 });
  assert.deepEqual(await drainOutbox(outbox), []);
  const decided = await stock.reserve(order("o1", "Coffee", 1));
  assert.equal(told(decided), 'o1 RESERVED: [{"item":"Coffee","qty":1,"remaining":2}]');
});

postgresTest(
  "a batch whose order another replica set aside meanwhile runs again and announces that",
  () =>
    withTestDatabase("postgres", async ({ db, replica }) => {
      const { stock, outbox } = await openStock(db);
      const other = await openStock(replica());
      let attempts = 0;
      const result = await db.transaction(async () => {
        attempts++;
        await stock.prepareReservations([{ order_id: "o1", items: ["Coffee"] }]);
        const decided = await stock.reserve(order("o1", "Coffee", 2));
        // Between this batch's read and its commit: a set-aside holds no stock rows.
        if (attempts === 1) await other.stock.setAside(order("o1", "Coffee", 2), "set aside");
        return decided;
      }, { savepoints: false });
      assert.equal(attempts, 2, "the batch collided once and ran again");
      assert.equal(told(result), "o1 FAILED again: set aside");
      assert.deepEqual(await stockOf(stock), { Coffee: 3, Pizza: 1 }, "no stock taken");
      // The replicas share one outbox table: the set-aside's announcement, and the batch's.
      assert.deepEqual((await drainOutbox(outbox)).map((e) => e.type), [
        "InventoryFailed",
        "InventoryFailed",
      ]);
    }),
);

storeContract("a cancel in a batch of decisions sees them, and they see it", async ({ db }) => {
  const { stock, outbox } = await openStock(db);
  const results = await db.transaction(async () => {
    await stock.prepareReservations([{ order_id: "o1", items: ["Coffee"] }]);
    const first = await stock.reserve(order("o1", "Coffee", 2));
    const release = await stock.cancel({
      ...order("o1", "Coffee", 2),
      cancelled_by: "student",
      previous: "RESERVED",
    });
    const second = await stock.reserve(order("o2", "Coffee", 3));
    return [told(first), release.giveBack, told(second)];
  }, { savepoints: false });
  assert.deepEqual(results, [
    'o1 RESERVED: [{"item":"Coffee","qty":2,"remaining":1}]',
    [{ item: "Coffee", qty: 2 }],
    'o2 RESERVED: [{"item":"Coffee","qty":3,"remaining":0}]',
  ]);
  assert.deepEqual(await stockOf(stock), { Coffee: 0, Pizza: 1 });
  assert.deepEqual((await drainOutbox(outbox)).map((e) => e.type), [
    "InventoryReserved",
    "InventoryReleased",
    "InventoryReserved",
  ]);
});
