/**
 * Stock and reservations in the inventory service's database. A reservation, the stock change
 * and the result event are committed together, keyed by order id, so an order is charged at
 * most once however often its `OrderPlaced` arrives, and by however many replicas.
 * @module
 */
import type { Database } from "@campus/shared/database";
import {
  envelopeFor,
  fitReason,
  type InventoryResult,
  type OrderPlaced,
  type OutgoingEvent,
} from "@campus/shared/events";
import { closestItems, menuKey } from "@campus/shared/menu";
import type { OutboxStore } from "@campus/shared/outbox_store";
import type { SqliteOutboxStore } from "@campus/shared/outbox_store_sqlite";
import type { PostgresDatabase } from "@campus/shared/postgres";
import type { SqliteDatabase } from "@campus/shared/sqlite";
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
