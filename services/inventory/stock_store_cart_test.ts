/**
 * The stock store's contract for carts and cancels, on both engines: every line or none, a
 * refusal naming every short line, stock given back once per cancelled order, a cancel decided
 * before its order takes nothing, decisions kept from before carts, and two replicas racing
 * carts and cancels over scarce items without a deadlock or a unit sold twice.
 */
import assert from "node:assert/strict";
import type { Database } from "@campus/shared/database";
import {
  InvalidMessage,
  type OrderCancelled,
  type OrderLine,
  type OrderPlaced,
} from "@campus/shared/events";
import { openOutboxStore } from "@campus/shared/outbox_store";
import type { PostgresDatabase } from "@campus/shared/postgres";
import type { SqliteDatabase } from "@campus/shared/sqlite";
import {
  drainOutbox,
  postgresTest,
  storeContract,
  withTestDatabase,
} from "@campus/testing/store_contract";
import type { Reservation } from "./stock.ts";
import { openStockStore, type StockStore } from "./stock_store.ts";

const cart = (order_id: string, lines: OrderLine[]): OrderPlaced => ({
  order_id,
  student_id: "S1",
  lines,
});

const cancelOf = (order: OrderPlaced, previous: "PLACED" | "RESERVED"): OrderCancelled => ({
  ...order,
  cancelled_by: "student",
  previous,
});

const MENU = { Burger: 5, Coffee: 10, Soup: 3 };

async function openStock(db: Database, menu: Record<string, number> = MENU) {
  const outbox = await openOutboxStore(db);
  return { outbox, stock: await openStockStore(db, outbox, menu) };
}

const stockOf = async (stock: StockStore) =>
  Object.fromEntries((await stock.levels()).map((l) => [l.item, l.quantity]));

const reasonOf = (reservation: Reservation) =>
  reservation.outcome === "FAILED" ? reservation.event.reason : `(${reservation.outcome})`;

storeContract("reserve() takes every line of a cart, merging lines of one item", async ({ db }) => {
  const { stock, outbox } = await openStock(db);
  const order = cart("c1", [
    { item: "soup", qty: 1 },
    { item: "Burger", qty: 2 },
    { item: "SOUP ", qty: 1 },
  ]);
  const result = await stock.reserve(order);
  assert.equal(result.outcome, "RESERVED");
  assert.deepEqual(await stockOf(stock), { Burger: 3, Coffee: 10, Soup: 1 });
  const events = await drainOutbox(outbox);
  assert.deepEqual(events.map((e) => e.type), ["InventoryReserved"]);
  assert.deepEqual(events[0].body, {
    order_id: "c1",
    student_id: "S1",
    lines: [{ item: "Soup", qty: 2, remaining: 1 }, { item: "Burger", qty: 2, remaining: 3 }],
  }, "a cart's lines carry their own remaining, in the menu's spelling, and nothing flat");
});

storeContract("reserve() refuses a short cart whole, naming every short line", async ({ db }) => {
  const { stock, outbox } = await openStock(db);
  const short = await stock.reserve(cart("c1", [
    { item: "Soup", qty: 5 },
    { item: "Coffee", qty: 2 },
    { item: "burger", qty: 6 },
  ]));
  assert.equal(reasonOf(short), "Soup: 5 requested, 3 left; Burger: 6 requested, 5 left");
  const unknown = await stock.reserve(cart("c2", [
    { item: "Coffee", qty: 1 },
    { item: "Cofee", qty: 1 },
    { item: "Caviar", qty: 1 },
  ]));
  assert.equal(
    reasonOf(unknown),
    '"Cofee" is not on the menu; did you mean "Coffee"?; "Caviar" is not on the menu',
  );
  const single = await stock.reserve(
    cart("c3", [{ item: "soup", qty: 2 }, { item: "Soup", qty: 2 }]),
  );
  assert.equal(
    reasonOf(single),
    'Cannot reserve "Soup": 4 requested, 3 in stock',
    "lines of one item are one line: today's words",
  );
  // Burger comes first in lock order and is there; Soup, after it, is short.
  const lastShort = await stock.reserve(cart("c4", [
    { item: "Soup", qty: 4 },
    { item: "Burger", qty: 2 },
  ]));
  assert.equal(reasonOf(lastShort), "Soup: 4 requested, 3 left");
  assert.deepEqual(await stockOf(stock), MENU, "nothing moved, the Burgers taken first included");
  const events = await drainOutbox(outbox);
  assert.deepEqual(events.map((e) => e.type), Array(4).fill("InventoryFailed"));
  assert.deepEqual(events[0].body.lines, [
    { item: "Soup", qty: 5 },
    { item: "Coffee", qty: 2 },
    { item: "Burger", qty: 6 },
  ]);
  assert.equal(events[0].body.item, undefined);
  assert.deepEqual(
    { lines: events[2].body.lines, item: events[2].body.item, qty: events[2].body.qty },
    { lines: [{ item: "Soup", qty: 4 }], item: "Soup", qty: 4 },
    "a one-line order is also flat",
  );
});

storeContract(
  "reserve() dead-letters lines adding up past one order's limit; setAside() fails it",
  async ({ db }) => {
    const { stock, outbox } = await openStock(db, { Coffee: 500 });
    const order = cart("c1", [{ item: "Coffee", qty: 60 }, { item: "coffee", qty: 60 }]);
    await assert.rejects(
      stock.reserve(order),
      (err: Error) =>
        err instanceof InvalidMessage &&
        err.message === 'lines[1].qty: qty must be at most 100 (lines of "Coffee" add up to 120)',
    );
    const aside = await stock.setAside(order, "set aside for staff");
    assert.equal(aside.outcome, "FAILED");
    assert.deepEqual(await stockOf(stock), { Coffee: 500 });
    const events = await drainOutbox(outbox);
    assert.deepEqual(events.map((e) => [e.type, e.body.lines]), [
      ["InventoryFailed", [{ item: "Coffee", qty: 60 }, { item: "Coffee", qty: 60 }]],
    ]);
  },
);

storeContract("cancel() gives a reservation back once, however often it comes", async ({ db }) => {
  const { stock, outbox } = await openStock(db);
  const order = cart("c1", [{ item: "Burger", qty: 2 }, { item: "Soup", qty: 3 }]);
  await stock.reserve(order);
  assert.deepEqual(await stockOf(stock), { Burger: 3, Coffee: 10, Soup: 0 });
  const first = await stock.cancel(cancelOf(order, "RESERVED"));
  assert.equal(first.duplicate, false);
  assert.deepEqual(first.giveBack, [{ item: "Burger", qty: 2 }, { item: "Soup", qty: 3 }]);
  assert.deepEqual(await stockOf(stock), MENU, "every line back");
  const again = await stock.cancel(cancelOf(order, "RESERVED"));
  assert.equal(again.duplicate, true);
  assert.deepEqual(again.giveBack, []);
  const replay = await stock.reserve(order);
  assert.equal(replay.duplicate, true, "a late order.placed re-announces the recorded decision");
  assert.deepEqual(await stockOf(stock), MENU, "stock moved once");
  const events = await drainOutbox(outbox);
  assert.deepEqual(events.map((e) => e.type), [
    "InventoryReserved",
    "InventoryReleased",
    "InventoryReleased",
    "InventoryReserved",
  ]);
  const released = {
    order_id: "c1",
    student_id: "S1",
    lines: [{ item: "Burger", qty: 2 }, { item: "Soup", qty: 3 }],
  };
  assert.deepEqual(events[1].body, released);
  assert.deepEqual(events[2].body, released, "the second cancel announces the same release");
  assert.equal(events[1].routingKey, "inventory.released");
});

storeContract(
  "cancel() before the decision makes the later order.placed take nothing",
  async ({ db }) => {
    const { stock, outbox } = await openStock(db);
    const order = cart("c1", [{ item: "coffee", qty: 4 }]);
    const release = await stock.cancel(cancelOf(order, "PLACED"));
    assert.equal(release.recordCancelled, true);
    const placed = await stock.reserve(order);
    assert.equal(placed.outcome, "CANCELLED");
    assert.equal(placed.duplicate, true);
    assert.equal((await stock.setAside(order, "crashed")).outcome, "CANCELLED");
    assert.equal((await stock.cancel(cancelOf(order, "PLACED"))).duplicate, true);
    assert.deepEqual(await stockOf(stock), MENU, "nothing taken");
    const events = await drainOutbox(outbox);
    assert.deepEqual(events.map((e) => e.type), ["InventoryReleased", "InventoryReleased"]);
    assert.deepEqual(events[0].body, {
      order_id: "c1",
      student_id: "S1",
      lines: [{ item: "coffee", qty: 4 }],
      item: "coffee",
      qty: 4,
      nothing_reserved: true,
    });
  },
);

storeContract("cancel() of a refused order has nothing to give back", async ({ db }) => {
  const { stock, outbox } = await openStock(db);
  const order = cart("c1", [{ item: "Soup", qty: 9 }, { item: "Coffee", qty: 1 }]);
  assert.equal((await stock.reserve(order)).outcome, "FAILED");
  const release = await stock.cancel(cancelOf(order, "PLACED"));
  assert.deepEqual([release.giveBack, release.duplicate], [[], false]);
  assert.equal((await stock.cancel(cancelOf(order, "PLACED"))).duplicate, true);
  assert.deepEqual(await stockOf(stock), MENU);
  const events = await drainOutbox(outbox);
  assert.deepEqual(events.map((e) => [e.type, e.body.nothing_reserved]), [
    ["InventoryFailed", undefined],
    ["InventoryReleased", true],
    ["InventoryReleased", true],
  ]);
});

storeContract("decisions recorded before carts keep their outcome and lines", async ({ db }) => {
  await db.migrate("stock", [db.engine === "postgres" ? V1_POSTGRES : V1_SQLITE]);
  await insertV1Decisions(db);
  const { stock, outbox } = await openStock(db, { Coffee: 8, Pizza: 1 });
  const coffee = cart("old1", [{ item: "Coffee", qty: 2 }]);
  const replay = await stock.reserve(coffee);
  assert.equal(replay.duplicate, true);
  assert.equal(replay.outcome, "RESERVED");
  const failed = await stock.reserve(cart("old2", [{ item: "Pizza", qty: 3 }]));
  assert.equal(reasonOf(failed), 'Cannot reserve "Pizza": 3 requested, 1 in stock');
  await stock.cancel(cancelOf(coffee, "RESERVED"));
  await stock.cancel(cancelOf(coffee, "RESERVED"));
  assert.deepEqual(await stockOf(stock), { Coffee: 10, Pizza: 1 }, "the old reservation back once");
  const [reserved, refused] = await drainOutbox(outbox);
  assert.deepEqual(reserved.body, {
    order_id: "old1",
    student_id: "S1",
    lines: [{ item: "Coffee", qty: 2, remaining: 8 }],
    item: "Coffee",
    qty: 2,
    remaining: 8,
  });
  assert.deepEqual(refused.body.lines, [{ item: "Pizza", qty: 3 }]);
});

storeContract("a decision read back is announced again as it was first", async ({ db }) => {
  const { stock, outbox } = await openStock(db);
  const reserved = cart("k1", [{ item: "Soup", qty: 1 }, { item: "burger", qty: 2 }]);
  const refused = cart("k2", [{ item: "Soup", qty: 9 }]);
  const setAside = cart("k3", [{ item: "Coffee", qty: 1 }]);
  await stock.reserve(reserved);
  await stock.reserve(refused);
  await stock.setAside(setAside, "waited too long");
  await stock.cancel(cancelOf(cart("k4", [{ item: "Coffee", qty: 2 }]), "PLACED"));
  const first = (await drainOutbox(outbox)).filter((e) => e.type !== "InventoryReleased");
  for (const order of [reserved, refused, setAside]) await stock.reserve(order);
  const again = await drainOutbox(outbox);
  // Byte for byte, key order included: a consumer comparing bodies sees one announcement.
  assert.deepEqual(
    again.map((e) => JSON.stringify(e.body)),
    first.map((e) => JSON.stringify(e.body)),
  );
  if (db.engine === "postgres") {
    const kinds = await (db as PostgresDatabase).pool`SELECT order_id,
      jsonb_typeof(lines) AS kind FROM reservations ORDER BY order_id`;
    assert.deepEqual(
      kinds.map((row) => `${row.order_id} ${row.kind}`),
      ["k1 array", "k2 array", "k3 array", "k4 array"],
      "every decision keeps its lines as a JSON array",
    );
  }
});

postgresTest(
  "decisions stored with their lines as a JSON string are read back as arrays",
  () =>
    withTestDatabase("postgres", async ({ db }) => {
      const pool = (db as PostgresDatabase).pool;
      await openStock(db, { Coffee: 8 });
      // As a decision made one at a time was stored before: the text of the array, as a string.
      await pool.unsafe(`ALTER TABLE reservations DROP CONSTRAINT reservations_lines_array;
      DELETE FROM schema_migrations WHERE component = 'stock' AND version = 3;
      INSERT INTO reservations (order_id, student_id, lines, outcome, reason, decided_at)
      VALUES ('old', 'S1', to_jsonb('[{"item":"Coffee","qty":2,"remaining":8}]'::text),
        'RESERVED', NULL, now())`);
      const { stock, outbox } = await openStock(db, { Coffee: 8 });
      const [row] = await pool`SELECT jsonb_typeof(lines) AS kind, lines FROM reservations`;
      assert.deepEqual([row.kind, row.lines], ["array", [{
        item: "Coffee",
        qty: 2,
        remaining: 8,
      }]]);
      const replay = await stock.reserve(cart("old", [{ item: "Coffee", qty: 2 }]));
      assert.deepEqual([replay.outcome, replay.duplicate], ["RESERVED", true]);
      const [event] = await drainOutbox(outbox);
      assert.equal(
        JSON.stringify(event.body.lines),
        '[{"item":"Coffee","qty":2,"remaining":8}]',
      );
      await assert.rejects(
        pool`INSERT INTO reservations (order_id, student_id, lines, outcome, decided_at)
        VALUES ('text', 'S1', to_jsonb('[]'::text), 'FAILED', now())`,
        /reservations_lines_array/,
        "a string in place of the array is refused",
      );
    }),
);

for (const savepoints of [true, false]) {
  storeContract(
    "replicas racing 200 carts over scarce items sell each unit once, without deadlock" +
      (savepoints ? "" : " (batches without savepoints, decided in memory)"),
    ({ db, replica }) => raceCarts(db, replica(), savepoints),
  );
}

/** Two replicas deciding the same 200 carts, in batches of 10 (`savepoints` as given). */
async function raceCarts(db: Database, other: Database, savepoints: boolean) {
  const menu = { Burger: 40, Coffee: 60, Pie: 30, Soup: 50 };
  const databases = [db, other];
  const replicas = [await openStock(db, menu), await openStock(databases[1], menu)];
  const items = Object.keys(menu);
  // Lines of 1 to 4 items in a random order, so carts meet their items in different orders.
  const carts = Array.from({ length: 200 }, (_, i) => {
    const chosen = shuffled(items).slice(0, 1 + (i % 4));
    return cart(`r${i}`, chosen.map((item) => ({ item, qty: 1 + ((i * 7) % 3) })));
  });
  // Each replica takes the carts in batches of 10, as its consumer does (all their items
  // locked first), and every cart reaches both replicas, as a redelivery would have it.
  const batches = Array.from({ length: 20 }, (_, b) => carts.slice(b * 10, b * 10 + 10));
  const runs = [0, 1].flatMap((r) =>
    batches.map((batch) =>
      databases[r].transaction(async () => {
        const { stock } = replicas[r];
        await stock.prepareReservations(
          shuffled(batch).map((c) => ({
            order_id: c.order_id,
            items: c.lines.map((l) => l.item),
          })),
        );
        const results: Reservation[] = [];
        for (const order of shuffled(batch)) results.push(await stock.reserve(order));
        return results;
      }, { savepoints })
    )
  );
  const settled = await Promise.allSettled(runs);
  const errors = settled.flatMap((s) => s.status === "rejected" ? [String(s.reason)] : []);
  assert.deepEqual(errors, [], "no batch failed (a deadlock would fail it)");
  const results = settled.flatMap((s) => s.status === "fulfilled" ? s.value : []);
  const decided = results.filter((r) => !r.duplicate);
  assert.equal(decided.length, 200, "each cart decided once");
  const reserved = decided.filter((r) => r.outcome === "RESERVED");
  assert.ok(reserved.length > 0 && reserved.length < 200, "some carts reserved, some refused");
  const taken = Object.fromEntries(items.map((item) => [item, 0]));
  for (const r of reserved) for (const line of r.event.lines) taken[line.item] += line.qty;
  const levels = await stockOf(replicas[1].stock);
  for (const item of items) {
    assert.ok(levels[item] >= 0, `${item} never negative`);
    assert.equal(menu[item as keyof typeof menu] - levels[item], taken[item], `${item} ledger`);
  }
  for (const r of decided.filter((r) => r.outcome === "FAILED")) {
    assert.match(reasonOf(r), /requested/, `${r.event.order_id} refused for want of stock`);
  }
  await assertNoDeadlock(db);
}

storeContract(
  "cancels racing decisions on two replicas leave no stock taken for a cancelled order",
  async ({ db, replica }) => {
    const menu = { Burger: 30, Soup: 30 };
    const other = replica();
    const replicas = [await openStock(db, menu), await openStock(other, menu)];
    const orders = Array.from(
      { length: 100 },
      (_, i) =>
        cart(`p${i}`, shuffled([{ item: "Burger", qty: 1 }, { item: "Soup", qty: 1 + (i % 2) }])),
    );
    // Each pair: the order placed on one replica while it is cancelled on the other, both twice.
    const runs = orders.flatMap((order, i) => {
      const [placing, cancelling] = i % 2 ? replicas : [replicas[1], replicas[0]];
      return [
        placing.stock.reserve(order),
        cancelling.stock.cancel(cancelOf(order, "PLACED")),
        cancelling.stock.reserve(order),
        placing.stock.cancel(cancelOf(order, "PLACED")),
      ];
    });
    const settled = await Promise.allSettled(runs);
    const errors = settled.flatMap((s) => s.status === "rejected" ? [String(s.reason)] : []);
    assert.deepEqual(errors, [], "no call failed");
    assert.deepEqual(await stockOf(replicas[0].stock), menu, "every unit back or never taken");
    const events = [
      ...await drainOutbox(replicas[0].outbox),
      ...(other === db ? [] : await drainOutbox(replicas[1].outbox)),
    ];
    for (const order of orders) {
      const released = events.filter((e) =>
        e.type === "InventoryReleased" && e.body.order_id === order.order_id
      );
      assert.equal(released.length, 2, `${order.order_id}: each cancel announces its release`);
      assert.deepEqual(released[0].body, released[1].body, `${order.order_id}: the same release`);
    }
    await assertNoDeadlock(db);
  },
);

/** A copy of `values` in random order. */
function shuffled<T>(values: readonly T[]): T[] {
  const copy = [...values];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

/** PostgreSQL counts the deadlocks it broke in each database; SQLite cannot have one. */
async function assertNoDeadlock(db: Database): Promise<void> {
  if (db.engine !== "postgres") return;
  const [{ deadlocks }] = await (db as PostgresDatabase).pool`SELECT deadlocks::int AS deadlocks
    FROM pg_stat_database WHERE datname = current_database()`;
  assert.equal(deadlocks, 0, "PostgreSQL broke no deadlock");
}

// The schema as it was before carts (version 1 of the "stock" migrations), with two decisions.
const V1_SQLITE = `CREATE TABLE stock (item TEXT PRIMARY KEY,
    quantity INTEGER NOT NULL CHECK (quantity >= 0));
  CREATE TABLE reservations (order_id TEXT PRIMARY KEY, item TEXT NOT NULL, qty INTEGER NOT NULL,
    student_id TEXT NOT NULL, outcome TEXT NOT NULL CHECK (outcome IN ('RESERVED', 'FAILED')),
    reason TEXT, remaining INTEGER, decided_at TEXT NOT NULL);`;
const V1_POSTGRES = V1_SQLITE.replaceAll("TEXT", "text").replace(
  "decided_at text",
  "decided_at timestamptz",
);

async function insertV1Decisions(db: Database): Promise<void> {
  const rows = [
    `INSERT INTO stock VALUES ('Coffee', 8), ('Pizza', 1)`,
    `INSERT INTO reservations VALUES
      ('old1', 'Coffee', 2, 'S1', 'RESERVED', NULL, 8, '2026-01-01T00:00:00Z'),
      ('old2', 'Pizza', 3, 'S1', 'FAILED', 'Cannot reserve "Pizza": 3 requested, 1 in stock',
        NULL, '2026-01-01T00:00:00Z')`,
  ];
  if (db.engine === "postgres") {
    for (const sql of rows) await (db as PostgresDatabase).pool.unsafe(sql);
  } else {
    await (db as SqliteDatabase).write(() => {
      for (const sql of rows) (db as SqliteDatabase).db.exec(sql);
    });
  }
}
