import assert from "node:assert/strict";
import type { Database } from "@campus/shared/database";
import { openOutboxStore } from "@campus/shared/outbox_store";
import { drainOutbox, storeContract } from "@campus/testing/store_contract";
import type { PostgresDatabase } from "@campus/shared/postgres";
import type { Reservation } from "./stock.ts";
import { openStockStore, type StockStore } from "./stock_store.ts";
import { waitFor } from "../../tests/poll.ts";

const order = (order_id: string, item = "Coffee", qty = 1) => ({
  order_id,
  lines: [{ item, qty }],
  student_id: "S1",
});

async function openStock(db: Database, menu: Record<string, number> = { Coffee: 3, Pizza: 1 }) {
  const outbox = await openOutboxStore(db);
  return { outbox, stock: await openStockStore(db, outbox, menu) };
}

const quantityOf = async (stock: StockStore, item: string) =>
  (await stock.levels()).find((l) => l.item === item)?.quantity;

const reasonOf = (reservation: Reservation) =>
  reservation.outcome === "FAILED" ? reservation.event.reason : "(reserved)";

storeContract("reserve() takes stock and announces InventoryReserved", async ({ db }) => {
  const { stock, outbox } = await openStock(db);
  const result = await stock.reserve(order("o1", "Coffee", 2));
  assert.equal(result.outcome, "RESERVED");
  assert.equal(result.duplicate, false);
  assert.deepEqual(await stock.levels(), [
    { item: "Coffee", quantity: 1 },
    { item: "Pizza", quantity: 1 },
  ]);
  const [event, ...more] = await drainOutbox(outbox);
  assert.deepEqual(more, []);
  assert.equal(event.type, "InventoryReserved");
  assert.equal(event.routingKey, "inventory.reserved");
  assert.deepEqual(event.body, {
    ...order("o1", "Coffee", 2),
    lines: [{ item: "Coffee", qty: 2, remaining: 1 }],
    item: "Coffee",
    qty: 2,
    remaining: 1,
  });
});

storeContract("reserve() refuses more than the stock and says so", async ({ db }) => {
  const { stock, outbox } = await openStock(db);
  const result = await stock.reserve(order("o1", "Pizza", 2));
  assert.equal(reasonOf(result), 'Cannot reserve "Pizza": 2 requested, 1 in stock');
  assert.equal(await quantityOf(stock, "Pizza"), 1);
  assert.deepEqual((await drainOutbox(outbox)).map((e) => e.type), ["InventoryFailed"]);
});

storeContract(
  "reserve() matches items as people type them, and names close ones",
  async ({ db }) => {
    const { stock, outbox } = await openStock(db, { Coffee: 3, "Crème brûlée": 2, Toffee: 1 });
    const coffee = await stock.reserve(order("o1", "coffee "));
    assert.equal(coffee.outcome, "RESERVED");
    assert.equal(coffee.event.item, "Coffee");
    const creme = await stock.reserve(order("o2", "CRÈME BRÛLÉE", 3));
    assert.equal(reasonOf(creme), 'Cannot reserve "Crème brûlée": 3 requested, 2 in stock');
    const typo = await stock.reserve(order("o3", "Cofee"));
    assert.equal(reasonOf(typo), '"Cofee" is not on the menu; did you mean "Coffee" or "Toffee"?');
    const far = await stock.reserve(order("o4", "Caviar"));
    assert.equal(reasonOf(far), '"Caviar" is not on the menu');
    assert.deepEqual((await drainOutbox(outbox)).map((e) => e.body.item), [
      "Coffee",
      "Crème brûlée",
      "Cofee",
      "Caviar",
    ]);
  },
);

storeContract(
  "reserve() of an order seen before changes nothing and re-announces it",
  async ({ db }) => {
    const { stock, outbox } = await openStock(db);
    await stock.reserve(order("o1", "Coffee", 2));
    const again = await stock.reserve(order("o1", "COFFEE", 2));
    assert.equal(again.duplicate, true);
    assert.equal(again.outcome, "RESERVED");
    assert.equal(again.event.item, "Coffee");
    assert.equal(await quantityOf(stock, "Coffee"), 1, "charged once");
    const events = await drainOutbox(outbox);
    assert.equal(events.length, 2);
    assert.deepEqual(events[1].body, events[0].body);
    assert.notEqual(events[1].messageId, events[0].messageId);
  },
);

storeContract("opening again adds new items and never refills sold ones", async ({ db }) => {
  const { stock, outbox } = await openStock(db, { Coffee: 3 });
  await stock.reserve(order("o1", "Coffee", 3));
  const reopened = await openStockStore(db, outbox, { Coffee: 3, Tea: 5 });
  assert.deepEqual(await reopened.levels(), [
    { item: "Coffee", quantity: 0 },
    { item: "Tea", quantity: 5 },
  ]);
});

storeContract(
  "setAside() fails an undecided order once and keeps a decided one",
  async ({ db }) => {
    const { stock, outbox } = await openStock(db);
    const reason = "Inventory could not process this order; it was set aside for staff (crashed)";
    const aside = await stock.setAside(order("o1", "coffee", 1), reason);
    assert.equal(reasonOf(aside), reason);
    assert.equal(aside.event.item, "Coffee", "the menu's spelling");
    assert.equal(await quantityOf(stock, "Coffee"), 3, "no stock taken");
    assert.equal(
      (await stock.reserve(order("o1", "Coffee", 1))).outcome,
      "FAILED",
      "a replay keeps it",
    );
    await stock.reserve(order("o2", "Coffee", 1));
    assert.equal((await stock.setAside(order("o2", "Coffee", 1), reason)).outcome, "RESERVED");
    const huge = await stock.setAside(order("o3", "Coffee"), `crashed: ${"x".repeat(50_000)}`);
    assert.equal(reasonOf(huge).length, 1000, "cut to fit an InventoryFailed");
    assert.deepEqual((await drainOutbox(outbox)).map((e) => e.type), [
      "InventoryFailed",
      "InventoryFailed",
      "InventoryReserved",
      "InventoryReserved",
      "InventoryFailed",
    ]);
  },
);

storeContract("replicas reserving at once never sell a unit twice", async ({ db, replica }) => {
  const one = await openStock(db, { Coffee: 30 });
  const other = await openStock(replica(), { Coffee: 30 });
  const stores = [one.stock, other.stock];
  // 50 orders for 30 units, plus every order delivered to both replicas.
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) => stores[i % 2].reserve(order(`o${i >> 1}`))),
  );
  const decided = results.filter((r) => !r.duplicate);
  assert.equal(decided.length, 50, "each order decided once");
  assert.equal(decided.filter((r) => r.outcome === "RESERVED").length, 30);
  assert.equal(await quantityOf(other.stock, "Coffee"), 0);
  const byOrder = Map.groupBy(results, (r) => r.event.order_id);
  for (const [id, pair] of byOrder) {
    assert.equal(pair[0].outcome, pair[1].outcome, `both replicas announce one outcome for ${id}`);
  }
});

storeContract(
  "lockItems() holds an item's stock until the transaction ends",
  async ({ db, replica }) => {
    const one = await openStock(db);
    const other = await openStock(replica());
    let release!: () => void;
    let locked!: () => void;
    const held = new Promise<void>((resolve) => release = resolve);
    const isLocked = new Promise<void>((resolve) => locked = resolve);
    const batch = db.transaction(async () => {
      await one.stock.lockItems(["coffee", "Pizza", "Caviar"]);
      locked();
      await held;
      await one.stock.reserve(order("o1", "Coffee", 1));
    });
    await isLocked;
    let done = false;
    const waiting = other.stock.reserve(order("o2", "Coffee", 3)).then((r) => (done = true, r));
    await blockedOnALock(db);
    assert.equal(done, false, "the other replica waits for the batch");
    release();
    await batch;
    assert.equal(reasonOf(await waiting), 'Cannot reserve "Coffee": 3 requested, 2 in stock');
  },
);

/**
 * Resolves once another transaction waits for a lock: PostgreSQL shows its backend waiting on
 * one; SQLite's lock is this process's own, so a wait that did not happen would have ended by the
 * time everything ready to run has run.
 */
async function blockedOnALock(db: Database): Promise<void> {
  if (db.engine !== "postgres") {
    await new Promise((resolve) => setTimeout(resolve, 0));
    return;
  }
  const { pool } = db as PostgresDatabase;
  await waitFor(async () => {
    const [{ n }] = await pool`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`;
    return n > 0;
  }, { what: "the other replica's reserve to wait for the row lock" });
}
