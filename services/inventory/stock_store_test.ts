import assert from "node:assert/strict";
import { Outbox } from "@campus/shared/outbox";
import { openDatabase } from "@campus/shared/sqlite";
import { StockStore } from "./stock_store.ts";

function setup(menu: Record<string, number> = { Coffee: 3, Pizza: 1 }) {
  const db = openDatabase(":memory:", "inventory");
  const outbox = new Outbox(db);
  return { db, outbox, stock: new StockStore(db, outbox, menu) };
}

const order = (order_id: string, item = "Coffee", qty = 1) => ({
  order_id,
  item,
  qty,
  student_id: "S1",
});

Deno.test("reserve() takes stock and queues InventoryReserved", () => {
  const { stock, outbox } = setup();
  const result = stock.reserve(order("o1", "Coffee", 2));
  assert.equal(result.outcome, "RESERVED");
  assert.equal(result.duplicate, false);
  assert.deepEqual(stock.levels(), [{ item: "Coffee", quantity: 1 }, {
    item: "Pizza",
    quantity: 1,
  }]);
  const [{ event }] = outbox.pending(10);
  assert.equal(event.type, "InventoryReserved");
  assert.equal(event.routingKey, "inventory.reserved");
  assert.deepEqual(event.body, { ...order("o1", "Coffee", 2), remaining: 1 });
});

Deno.test("reserve() refuses more than the stock and says so", () => {
  const { stock, outbox } = setup();
  const result = stock.reserve(order("o1", "Pizza", 2));
  assert.equal(result.outcome, "FAILED");
  assert.equal(
    result.outcome === "FAILED" && result.event.reason,
    'Cannot reserve "Pizza": 2 requested, 1 in stock',
  );
  assert.equal(stock.levels().find((l) => l.item === "Pizza")?.quantity, 1);
  assert.equal(outbox.pending(10)[0].event.type, "InventoryFailed");
});

Deno.test("reserve() fails an item that is not on the menu", () => {
  const { stock } = setup();
  const result = stock.reserve(order("o1", "Caviar"));
  assert.equal(result.outcome, "FAILED");
  assert.match(
    result.outcome === "FAILED" ? result.event.reason : "",
    /"Caviar" is not on the menu/,
  );
});

Deno.test("reserve() matches items trimmed and case-insensitively, in the menu's spelling", () => {
  const { stock, outbox } = setup({ Coffee: 3, "Crème brûlée": 2 });
  const coffee = stock.reserve(order("o1", "coffee "));
  assert.equal(coffee.outcome, "RESERVED");
  assert.equal(coffee.event.item, "Coffee");
  const creme = stock.reserve(order("o2", "CRÈME BRÛLÉE", 3));
  assert.equal(creme.outcome, "FAILED");
  assert.equal(
    creme.outcome === "FAILED" && creme.event.reason,
    'Cannot reserve "Crème brûlée": 3 requested, 2 in stock',
  );
  assert.deepEqual(outbox.pending(10).map((r) => r.event.body.item), ["Coffee", "Crème brûlée"]);
  assert.equal(stock.levels().find((l) => l.item === "Coffee")?.quantity, 2);
  assert.equal(stock.reserve(order("o1", "COFFEE")).event.item, "Coffee", "a replay keeps it");
});

Deno.test("an unknown item fails naming a few close matches, not a menu of 300", () => {
  const menu: Record<string, number> = { Coffee: 5, Toffee: 5, Coffea: 5, Cofe: 5 };
  for (let i = 0; i < 300; i++) menu[`Specialty dish number ${i}`] = 1;
  const { stock, outbox } = setup(menu);
  const result = stock.reserve(order("o1", "Cofee"));
  assert.equal(result.outcome, "FAILED");
  const reason = result.outcome === "FAILED" ? result.event.reason : "";
  assert.equal(reason, '"Cofee" is not on the menu; did you mean "Cofe", "Coffee" or "Coffea"?');
  const far = stock.reserve(order("o2", "Caviar"));
  assert.equal(far.outcome === "FAILED" && far.event.reason, '"Caviar" is not on the menu');
  assert.deepEqual(outbox.pending(10).map((r) => r.event.type), [
    "InventoryFailed",
    "InventoryFailed",
  ]);
});

Deno.test("setAside() cuts a huge reason so its InventoryFailed still fits", () => {
  const { stock, outbox } = setup();
  const aside = stock.setAside(order("o1", "coffee"), `crashed: ${"x".repeat(50_000)}`);
  assert.equal(aside.outcome, "FAILED");
  const reason = aside.outcome === "FAILED" ? aside.event.reason : "";
  assert.equal(reason.length, 1000);
  assert.ok(reason.endsWith("…"));
  assert.equal(aside.event.item, "Coffee", "the menu's spelling");
  assert.equal(outbox.pending(10)[0].event.type, "InventoryFailed");
});

Deno.test("reserve() of an order seen before changes nothing and re-announces its outcome", () => {
  const { stock, outbox } = setup();
  stock.reserve(order("o1", "Coffee", 2));
  const again = stock.reserve(order("o1", "Coffee", 2));
  assert.equal(again.duplicate, true);
  assert.equal(again.outcome, "RESERVED");
  assert.equal(stock.levels().find((l) => l.item === "Coffee")?.quantity, 1, "charged once");
  const events = outbox.pending(10).map((r) => r.event);
  assert.equal(events.length, 2);
  assert.deepEqual(events[1].body, events[0].body);
  assert.notEqual(events[1].messageId, events[0].messageId);
});

Deno.test("a restart does not refill stock that was sold", () => {
  const { db, outbox, stock } = setup({ Coffee: 3 });
  stock.reserve(order("o1", "Coffee", 3));
  const reopened = new StockStore(db, outbox, { Coffee: 3, Tea: 5 });
  assert.deepEqual(reopened.levels(), [{ item: "Coffee", quantity: 0 }, {
    item: "Tea",
    quantity: 5,
  }]);
});

Deno.test("setAside() fails an undecided order once and keeps a decided one", () => {
  const { stock, outbox } = setup();
  const reason = "Inventory could not process this order; it was set aside for staff (crashed)";
  const aside = stock.setAside(order("o1", "Coffee", 1), reason);
  assert.equal(aside.outcome, "FAILED");
  assert.equal(stock.levels().find((l) => l.item === "Coffee")?.quantity, 3, "no stock taken");
  assert.equal(stock.reserve(order("o1", "Coffee", 1)).outcome, "FAILED", "a replay keeps it");
  stock.reserve(order("o2", "Coffee", 1));
  assert.equal(stock.setAside(order("o2", "Coffee", 1), reason).outcome, "RESERVED");
  assert.deepEqual(
    outbox.pending(10).map((r) => r.event.type),
    ["InventoryFailed", "InventoryFailed", "InventoryReserved", "InventoryReserved"],
  );
});
