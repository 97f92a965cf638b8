/**
 * Stock and reservations in the inventory service's database. A reservation, the stock change
 * and the result event are committed together, keyed by order id, so an order is charged at
 * most once however often its `OrderPlaced` arrives, and by however many replicas.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Database } from "@campus/shared/database";
import {
  envelopeFor,
  fitReason,
  type InventoryResult,
  type OrderPlaced,
  type OutgoingEvent,
} from "@campus/shared/events";
import { closestItems, menuKey } from "@campus/shared/menu";
import type { Outbox } from "@campus/shared/outbox";
import type { OutboxStore } from "@campus/shared/outbox_store";
import type { SqliteOutboxStore } from "@campus/shared/outbox_store_sqlite";
import type { PostgresDatabase } from "@campus/shared/postgres";
import { type SqliteDatabase, transaction } from "@campus/shared/sqlite";
import { SqliteStockStore } from "./stock_store_sqlite.ts";
import { PostgresStockStore } from "./stock_store_postgres.ts";

/** Stock of one menu item. */
export interface StockLevel {
  item: string;
  quantity: number;
}

/** What {@linkcode StockStore.reserve} decided, and whether it was decided before. */
export type Reservation = InventoryResult & { duplicate: boolean };

/** The inventory service's store. */
export interface StockStore {
  /**
   * Reserves stock for an order, or records why it can't, and queues the result event. For an
   * order seen before it changes nothing and queues the recorded result again.
   */
  reserve(order: OrderPlaced): Promise<Reservation>;
  /**
   * Fails an order that could not be processed (it was dead-lettered), so the student still
   * learns an outcome; an order decided before keeps, and re-announces, its outcome.
   */
  setAside(order: OrderPlaced, reason: string): Promise<Reservation>;
  /** Stock of every item, by name. */
  levels(): Promise<StockLevel[]>;
  /**
   * Takes the stock rows of the items `names` mean for the rest of the current transaction,
   * always in the same order. A batch that does this first waits for another batch holding
   * one of its items instead of deadlocking with it; a no-op where one process owns the data.
   */
  lockItems(names: readonly string[]): Promise<void>;
}

/** The stock of `db`, its schema brought up to date and the items of `menu` added if new. */
export async function openStockStore(
  db: Database,
  outbox: OutboxStore,
  menu: Readonly<Record<string, number>>,
): Promise<StockStore> {
  return db.engine === "postgres"
    ? await PostgresStockStore.open(db as PostgresDatabase, outbox, menu)
    : await SqliteStockStore.open(db as SqliteDatabase, outbox as SqliteOutboxStore, menu);
}

/**
 * The menu as orders name it: every item in stock, matched trimmed and without regard to case,
 * in the menu's own spelling.
 */
export class MenuItems {
  #items: string[] = [];
  /** Menu spelling of each item by {@linkcode menuKey}: "coffee" finds "Coffee". */
  #spelling = new Map<string, string>();

  /** @param items every item in stock */
  constructor(items: readonly string[]) {
    this.update(items);
  }

  /** Takes the items in stock anew (another replica may have added some). */
  update(items: readonly string[]): void {
    this.#items = [...items];
    this.#spelling.clear();
    for (const item of items) {
      if (!this.#spelling.has(menuKey(item))) this.#spelling.set(menuKey(item), item);
    }
  }

  /** The item `name` means, in the menu's spelling; exact matches first. */
  find(name: string): string | undefined {
    return this.#items.includes(name) ? name : this.#spelling.get(menuKey(name));
  }

  /** Why `item` fails: names a few close matches, never the whole menu (it must fit the event). */
  notOnMenu(item: string): string {
    const close = closestItems(item, this.#items).map((c) => `"${c}"`);
    const hint = close.length === 0
      ? ""
      : `; did you mean ${
        close.length === 1 ? close[0] : `${close.slice(0, -1).join(", ")} or ${close.at(-1)}`
      }?`;
    return fitReason(`"${item}" is not on the menu${hint}`);
  }
}

/** A new reservation of `qty` of `item`, `remaining` left after it. */
export function reserved(order: OrderPlaced, item: string, remaining: number): Reservation {
  const { order_id, qty, student_id } = order;
  return {
    outcome: "RESERVED",
    event: { order_id, item, qty, student_id, remaining },
    duplicate: false,
  };
}

/** A new refusal of `order`, for `reason`. */
export function failed(order: OrderPlaced, reason: string): Reservation {
  const { order_id, item, qty, student_id } = order;
  return {
    outcome: "FAILED",
    event: { order_id, item, qty, student_id, reason },
    duplicate: false,
  };
}

/** Why `qty` of `item` can't be had. */
export function notEnough(item: string, qty: number, inStock: number): string {
  return `Cannot reserve "${item}": ${qty} requested, ${inStock} in stock`;
}

/** The event that announces a reservation. */
export function announcement(reservation: Reservation): OutgoingEvent {
  return reservation.outcome === "RESERVED"
    ? envelopeFor("InventoryReserved", reservation.event)
    : envelopeFor("InventoryFailed", reservation.event);
}

/** A reservation as recorded before (a row of `reservations`). */
export function recordedReservation(row: Record<string, unknown>): Reservation {
  const base = {
    order_id: String(row.order_id),
    item: String(row.item),
    qty: Number(row.qty),
    student_id: String(row.student_id),
  };
  return row.outcome === "RESERVED"
    ? {
      outcome: "RESERVED",
      event: { ...base, ...(row.remaining == null ? {} : { remaining: Number(row.remaining) }) },
      duplicate: true,
    }
    : { outcome: "FAILED", event: { ...base, reason: String(row.reason) }, duplicate: true };
}

/** The inventory service's store on a SQLite connection, for synchronous handlers. */
export class SyncStockStore {
  #stockOf: StatementSync;
  #take: StatementSync;
  #recorded: StatementSync;
  #insertReservation: StatementSync;
  #levels: StatementSync;
  /** Every item in stock, by name; fixed once the menu is seeded. */
  #items: string[];
  /** Menu spelling of each item by {@linkcode menuKey}: "coffee" finds "Coffee". */
  #spelling = new Map<string, string>();

  constructor(
    private readonly db: DatabaseSync,
    private readonly outbox: Outbox,
    menu: Readonly<Record<string, number>>,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS stock (
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
    );`);
    // Seeding only adds missing items: a restart must not refill stock that was sold.
    const seed = db.prepare(`INSERT OR IGNORE INTO stock (item, quantity) VALUES (?, ?)`);
    transaction(db, () => {
      for (const [item, quantity] of Object.entries(menu)) seed.run(item, quantity);
    });
    this.#stockOf = db.prepare(`SELECT quantity FROM stock WHERE item = ?`);
    this.#take = db.prepare(`UPDATE stock SET quantity = quantity - ? WHERE item = ?
      RETURNING quantity`);
    this.#recorded = db.prepare(`SELECT * FROM reservations WHERE order_id = ?`);
    this.#insertReservation = db.prepare(`INSERT INTO reservations
      (order_id, item, qty, student_id, outcome, reason, remaining, decided_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#levels = db.prepare(`SELECT item, quantity FROM stock ORDER BY item`);
    this.#items = db.prepare(`SELECT item FROM stock ORDER BY item`).all().map((r) =>
      String(r.item)
    );
    for (const item of this.#items) {
      if (!this.#spelling.has(menuKey(item))) this.#spelling.set(menuKey(item), item);
    }
  }

  /**
   * Reserves stock for an order, or records why it can't, and queues the result event. For an
   * order seen before it changes nothing and queues the recorded result again.
   */
  reserve(order: OrderPlaced): Reservation {
    return this.#settle(order, () => this.#decide(order));
  }

  /**
   * Fails an order that could not be processed (it was dead-lettered), so the student still
   * learns an outcome; an order decided before keeps, and re-announces, its outcome.
   */
  setAside(order: OrderPlaced, reason: string): Reservation {
    return this.#settle(order, () => {
      const item = this.#find(order.item)?.item ?? order.item;
      return this.#record(failed({ ...order, item }, fitReason(reason)));
    });
  }

  #settle(order: OrderPlaced, decide: () => Reservation): Reservation {
    return transaction(this.db, () => {
      const recorded = this.#recorded.get(order.order_id);
      const reservation = recorded ? recordedReservation(recorded) : decide();
      this.outbox.add(
        reservation.outcome === "RESERVED"
          ? envelopeFor("InventoryReserved", reservation.event)
          : envelopeFor("InventoryFailed", reservation.event),
      );
      return reservation;
    });
  }

  /** Stock of every item, by name. */
  levels(): StockLevel[] {
    return this.#levels.all().map((r) => ({ item: String(r.item), quantity: Number(r.quantity) }));
  }

  #decide(order: OrderPlaced): Reservation {
    const { order_id, qty, student_id } = order;
    const found = this.#find(order.item);
    let reservation: Reservation;
    if (!found) {
      reservation = failed(order, this.#notOnMenu(order.item));
    } else if (found.inStock < qty) {
      reservation = failed(
        { ...order, item: found.item },
        `Cannot reserve "${found.item}": ${qty} requested, ${found.inStock} in stock`,
      );
    } else {
      const { item } = found;
      const remaining = Number(this.#take.get(qty, item)?.quantity);
      reservation = {
        outcome: "RESERVED",
        event: { order_id, item, qty, student_id, remaining },
        duplicate: false,
      };
    }
    return this.#record(reservation);
  }

  /** The item `name` means, in the menu's own spelling, with its stock; exact matches first. */
  #find(name: string): { item: string; inStock: number } | undefined {
    const exact = this.#stockOf.get(name);
    if (exact) return { item: name, inStock: Number(exact.quantity) };
    const item = this.#spelling.get(menuKey(name));
    const row = item === undefined ? undefined : this.#stockOf.get(item);
    return row ? { item: item!, inStock: Number(row.quantity) } : undefined;
  }

  /** Names a few close matches, never the whole menu: a long menu would not fit the event. */
  #notOnMenu(item: string): string {
    const close = closestItems(item, this.#items).map((c) => `"${c}"`);
    const hint = close.length === 0
      ? ""
      : `; did you mean ${
        close.length === 1 ? close[0] : `${close.slice(0, -1).join(", ")} or ${close.at(-1)}`
      }?`;
    return fitReason(`"${item}" is not on the menu${hint}`);
  }

  #record(reservation: Reservation): Reservation {
    const { order_id, item, qty, student_id } = reservation.event;
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
