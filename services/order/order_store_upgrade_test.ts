/**
 * A database the order service kept before carts and the kitchen (its schema as version 4 of
 * the migrations left it, written out here as it was) is brought up to date in place: its
 * orders read as one-line orders, move like new ones, and its idempotency keys still replay.
 */
import assert from "node:assert/strict";
import type { Database } from "@campus/shared/database";
import { openOutboxStore } from "@campus/shared/outbox_store";
import type { PostgresDatabase } from "@campus/shared/postgres";
import type { SqliteDatabase } from "@campus/shared/sqlite";
import { drainOutbox, storeContract } from "@campus/testing/store_contract";
import { openOrderStore } from "./order_store.ts";

const SQLITE_V4 = [
  `CREATE TABLE orders (order_id TEXT PRIMARY KEY, item TEXT NOT NULL, qty INTEGER NOT NULL,
    student_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PLACED', 'RESERVED', 'FAILED')),
    reason TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
  CREATE INDEX orders_by_student ON orders (student_id);`,
  `CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, request TEXT NOT NULL,
    order_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
  CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);`,
  `CREATE INDEX orders_placed ON orders (created_at) WHERE status = 'PLACED'`,
  `ALTER TABLE orders ADD COLUMN asks INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE orders ADD COLUMN ask_at TEXT;`,
];

const POSTGRES_V4 = [
  `CREATE TABLE orders (seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    order_id text PRIMARY KEY, item text NOT NULL, qty integer NOT NULL,
    student_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('PLACED', 'RESERVED', 'FAILED')),
    reason text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
  CREATE INDEX orders_by_student ON orders (student_id, seq);`,
  `CREATE TABLE idempotency_keys (key text PRIMARY KEY, request text NOT NULL,
    order_id text NOT NULL, expires_at bigint NOT NULL);
  CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);`,
  `CREATE INDEX orders_placed ON orders (created_at) WHERE status = 'PLACED'`,
  `ALTER TABLE orders ADD COLUMN asks integer NOT NULL DEFAULT 0,
    ADD COLUMN ask_at timestamptz`,
];

const AT = "2026-01-05T12:00:00.000Z";
const ROWS: [string, string, number, string, string][] = [
  ["old-1", "Coffee", 2, "S1", "RESERVED"],
  ["old-2", "Tea", 1, "S1", "PLACED"],
];

/** The database as the previous version of the service left it, with two orders and a key. */
async function previousVersion(db: Database): Promise<void> {
  const key = ["k-old", JSON.stringify({ item: "Tea", qty: 1, student_id: "S1" }), "old-2"];
  const expires = Date.now() + 3_600_000;
  if (db.engine === "sqlite") {
    const sqlite = db as SqliteDatabase;
    await sqlite.migrate("orders", SQLITE_V4);
    await sqlite.write(() => {
      const insert = sqlite.db.prepare(`INSERT INTO orders
        (order_id, item, qty, student_id, status, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`);
      for (const row of ROWS) insert.run(...row, AT, AT);
      sqlite.db.prepare(`INSERT INTO idempotency_keys VALUES (?, ?, ?, ?)`).run(...key, expires);
    });
    return;
  }
  const pg = db as PostgresDatabase;
  await pg.migrate("orders", POSTGRES_V4);
  for (const [order_id, item, qty, student_id, status] of ROWS) {
    await pg.sql`INSERT INTO orders (order_id, item, qty, student_id, status, created_at,
      updated_at) VALUES (${order_id}, ${item}, ${qty}, ${student_id}, ${status}, ${AT}, ${AT})`;
  }
  await pg.sql`INSERT INTO idempotency_keys VALUES (${key[0]}, ${key[1]}, ${key[2]}, ${expires})`;
}

storeContract("orders kept before carts read as one-line orders and move on", async ({ db }) => {
  await previousVersion(db);
  const outbox = await openOutboxStore(db);
  const orders = await openOrderStore(db, outbox);

  const reserved = await orders.get("old-1");
  assert.deepEqual(reserved, {
    order_id: "old-1",
    lines: [{ item: "Coffee", qty: 2 }],
    item: "Coffee",
    qty: 2,
    student_id: "S1",
    status: "RESERVED",
    created_at: AT,
    updated_at: AT,
  });
  assert.deepEqual(
    (await orders.latest(10)).map((o) => o.order_id),
    ["old-2", "old-1"],
    "the listings keep their order",
  );
  const started = await orders.move({ orderId: "old-1", to: "PREPARING", by: "staff" });
  assert.equal(started.kind, "moved");
  const cancelled = await orders.move({ orderId: "old-2", to: "CANCELLED", by: "student" });
  assert.equal(cancelled.kind, "moved");
  assert.deepEqual(
    (await drainOutbox(outbox)).map((e) => [e.type, e.body.lines]),
    [
      ["OrderStatusChanged", [{ item: "Coffee", qty: 2 }]],
      ["OrderCancelled", [{ item: "Tea", qty: 1 }]],
    ],
  );

  const request = { item: "Tea", qty: 1, student_id: "S1", lines: [{ item: "Tea", qty: 1 }] };
  const [replayed] = await orders.placeAll([{ request, idempotencyKey: "k-old" }]);
  assert.equal(replayed.kind, "replayed", "a key remembered before carts still replays");
  assert.equal(replayed.kind === "replayed" && replayed.order.order_id, "old-2");
});
