/**
 * Stock and reservations in SQLite. One process owns the file, so each decision is a few
 * synchronous statements in one savepoint (or transaction): nothing can come between the
 * read of the stock and its update.
 * @module
 */
import type { StatementSync } from "node:sqlite";
import { fitReason, type OrderPlaced } from "@campus/shared/events";
import type { OutboxStore } from "@campus/shared/outbox_store";
import type { SqliteDatabase } from "@campus/shared/sqlite";
import {
  announcement,
  MenuItems,
  notEnough,
  recordedReservation,
  refused,
  type Reservation,
  reserved,
  type StockLevel,
} from "./stock.ts";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS stock (
    item TEXT PRIMARY KEY,
    quantity INTEGER NOT NULL CHECK (quantity >= 0)
  );
  CREATE TABLE IF NOT EXISTS reservations (
    order_id TEXT PRIMARY KEY,
    item TEXT NOT NULL,
    qty INTEGER NOT NULL,
    student_id TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('RESERVED', 'FAILED')),
    reason TEXT,
    remaining INTEGER,
    decided_at TEXT NOT NULL
  );`,
];

/** The stock store in a SQLite database. */
export class SqliteStockStore {
  #stockOf: StatementSync;
  #take: StatementSync;
  #recorded: StatementSync;
  #insertReservation: StatementSync;
  #levels: StatementSync;

  private constructor(
    private readonly db: SqliteDatabase,
    private readonly outbox: OutboxStore,
    private readonly menu: MenuItems,
  ) {
    const sql = db.db;
    this.#stockOf = sql.prepare(`SELECT quantity FROM stock WHERE item = ?`);
    this.#take = sql.prepare(`UPDATE stock SET quantity = quantity - ?
      WHERE item = ? AND quantity >= ? RETURNING quantity`);
    this.#recorded = sql.prepare(`SELECT * FROM reservations WHERE order_id = ?`);
    this.#insertReservation = sql.prepare(`INSERT INTO reservations
      (order_id, item, qty, student_id, outcome, reason, remaining, decided_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#levels = sql.prepare(`SELECT item, quantity FROM stock ORDER BY item`);
  }

  /** The stock of `db`; the items of `menu` not in it yet are added with their stock. */
  static async open(
    db: SqliteDatabase,
    outbox: OutboxStore,
    menu: Readonly<Record<string, number>>,
  ): Promise<SqliteStockStore> {
    await db.migrate("stock", SCHEMA);
    const items = await db.write(() => {
      // Seeding only adds missing items: a restart must not refill stock that was sold.
      const seed = db.db.prepare(`INSERT INTO stock (item, quantity) VALUES (?, ?)
        ON CONFLICT (item) DO NOTHING`);
      for (const [item, quantity] of Object.entries(menu)) seed.run(item, quantity);
      return db.db.prepare(`SELECT item FROM stock ORDER BY item`).all().map((r) => String(r.item));
    });
    return new SqliteStockStore(db, outbox, new MenuItems(items));
  }

  /** Reserves stock for an order, or records why it can't; announces the decision. */
  reserve(order: OrderPlaced): Promise<Reservation> {
    return this.#settle(order, () => this.#decide(order));
  }

  /** Fails an order that could not be processed; announces the decision. */
  setAside(order: OrderPlaced, reason: string): Promise<Reservation> {
    return this.#settle(order, () => {
      const item = this.menu.find(order.lines[0].item) ?? order.lines[0].item;
      return this.#record(
        refused({ ...order, lines: [{ ...order.lines[0], item }] }, fitReason(reason)),
      );
    });
  }

  /** Stock of every item, by name. */
  levels(): Promise<StockLevel[]> {
    return this.db.read(() =>
      this.#levels.all().map((r) => ({ item: String(r.item), quantity: Number(r.quantity) }))
    );
  }

  /** Takes the stock rows of the items `names` mean, always in the same order. */
  lockItems(): Promise<void> {
    return Promise.resolve();
  }

  #settle(order: OrderPlaced, decide: () => Reservation): Promise<Reservation> {
    return this.db.write(() => {
      const recorded = this.#recorded.get(order.order_id);
      const reservation = recorded ? recordedReservation(recorded) : decide();
      this.outbox.insert(announcement(reservation));
      return reservation;
    });
  }

  #decide(order: OrderPlaced): Reservation {
    const { qty } = order.lines[0];
    const item = this.menu.find(order.lines[0].item);
    if (item === undefined) {
      return this.#record(refused(order, this.menu.notOnMenu(order.lines[0].item)));
    }
    const taken = this.#take.get(qty, item, qty);
    if (taken) return this.#record(reserved(order, item, Number(taken.quantity)));
    const inStock = Number(this.#stockOf.get(item)?.quantity);
    return this.#record(
      refused({ ...order, lines: [{ item, qty }] }, notEnough(item, qty, inStock)),
    );
  }

  #record(reservation: Reservation): Reservation {
    const { order_id, student_id } = reservation.event;
    const { item, qty } = reservation.event.lines[0];
    const reason = reservation.outcome === "FAILED" ? reservation.event.reason : null;
    const remaining = reservation.outcome === "RESERVED" ? reservation.event.remaining : null;
    this.#insertReservation.run(
      order_id,
      item,
      qty,
      student_id,
      reservation.outcome,
      reason,
      remaining ?? null,
      new Date().toISOString(),
    );
    return reservation;
  }
}
