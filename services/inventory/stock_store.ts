/**
 * Stock and reservations in the inventory service's database. A reservation (every line of an
 * order, or none), the stock change and the result event are committed together, keyed by order
 * id, so an order is charged at most once however often its `OrderPlaced` arrives, and by however
 * many replicas; a cancel gives the stock back once, in the same way. The store's interface, and
 * the engine that keeps it; the decisions themselves are in `stock.ts`.
 * @module
 */
import type { Database } from "@campus/shared/database";
import type { OrderCancelled, OrderPlaced } from "@campus/shared/events";
import type { OutboxStore } from "@campus/shared/outbox_store";
import type { PostgresDatabase } from "@campus/shared/postgres";
import type { SqliteDatabase } from "@campus/shared/sqlite";
import type { OrderItems, Release, Reservation, StockLevel } from "./stock.ts";

/** The inventory service's store. */
export interface StockStore {
  /**
   * Reserves stock for every line of an order, or for none and records why, and queues the
   * result event. For an order seen before it changes nothing and queues the recorded result
   * again; for an order cancelled before it was decided it takes nothing and queues nothing.
   */
  reserve(order: OrderPlaced): Promise<Reservation>;
  /**
   * Gives back every line a cancelled order holds, once, marking its decision released, and
   * queues `InventoryReleased`. An order not decided yet gets a `CANCELLED` decision, so that
   * its `order.placed` takes nothing whenever it comes; a refused order has nothing to give
   * back. A cancel seen before changes nothing and queues the release again.
   */
  cancel(cancel: OrderCancelled): Promise<Release>;
  /**
   * Fails an order that could not be processed (it was dead-lettered), so the student still
   * learns an outcome; an order decided before keeps, and re-announces, its outcome.
   */
  setAside(order: OrderPlaced, reason: string): Promise<Reservation>;
  /** Stock of every item, by name. */
  levels(): Promise<StockLevel[]>;
  /**
   * Takes the stock rows of the items `names` mean for the rest of the current transaction,
   * always in the same order (byte order of the name). A batch that does this first waits for
   * another batch holding one of its items instead of deadlocking with it; a no-op where one
   * process owns the data.
   */
  lockItems(names: readonly string[]): Promise<void>;
  /**
   * Readies the current transaction for {@linkcode StockStore.reserve} of `orders` (a batch):
   * takes their items' stock rows as {@linkcode StockStore.lockItems} does and, where a round
   * trip per order would cost most (PostgreSQL, in a transaction without savepoints), reads what
   * was decided on them, so that each `reserve` decides in memory and the batch's decisions are
   * written together just before the commit.
   */
  prepareReservations(orders: readonly OrderItems[]): Promise<void>;
}

/** The stock of `db`, its schema brought up to date and the items of `menu` added if new. */
export async function openStockStore(
  db: Database,
  outbox: OutboxStore,
  menu: Readonly<Record<string, number>>,
): Promise<StockStore> {
  // Only the engine in use is loaded: the PostgreSQL driver stays out of a SQLite service.
  if (db.engine === "postgres") {
    const { PostgresStockStore } = await import("./stock_store_postgres.ts");
    return await PostgresStockStore.open(db as PostgresDatabase, outbox, menu);
  }
  const { SqliteStockStore } = await import("./stock_store_sqlite.ts");
  return await SqliteStockStore.open(db as SqliteDatabase, outbox, menu);
}
