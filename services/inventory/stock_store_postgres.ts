/**
 * Stock and reservations in PostgreSQL, shared by the inventory replicas. Stock is taken with
 * a conditional update (`quantity >= qty`), so two replicas can never sell the same unit; the
 * order id is the key of its reservation, so of two replicas deciding one order at once, the
 * second finds the first's decision and gives back what it took.
 * @module
 */
import { fitReason, type OrderPlaced } from "@campus/shared/events";
import type { OutboxStore } from "@campus/shared/outbox_store";
import type { PostgresDatabase } from "@campus/shared/postgres";
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
  `CREATE TABLE stock (
    item text PRIMARY KEY,
    quantity integer NOT NULL CHECK (quantity >= 0)
  );
  CREATE TABLE reservations (
    order_id text PRIMARY KEY,
    item text NOT NULL,
    qty integer NOT NULL,
    student_id text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('RESERVED', 'FAILED')),
    reason text,
    remaining integer,
    decided_at timestamptz NOT NULL
  );`,
];

/** The stock store in a PostgreSQL database. */
export class PostgresStockStore {
  private constructor(
    private readonly db: PostgresDatabase,
    private readonly outbox: OutboxStore,
    private readonly menu: MenuItems,
  ) {}

  /** The stock of `db`; the items of `menu` not in it yet are added with their stock. */
  static async open(
    db: PostgresDatabase,
    outbox: OutboxStore,
    menu: Readonly<Record<string, number>>,
  ): Promise<PostgresStockStore> {
    await db.migrate("stock", SCHEMA);
    const rows = Object.entries(menu).map(([item, quantity]) => ({ item, quantity }));
    // Seeding only adds missing items: a restart, or another replica, must not refill stock.
    if (rows.length > 0) {
      await db.sql`INSERT INTO stock ${db.sql(rows, "item", "quantity")}
        ON CONFLICT (item) DO NOTHING`;
    }
    const store = new PostgresStockStore(db, outbox, new MenuItems([]));
    await store.#readMenu();
    return store;
  }

  /** Reserves stock for an order, or records why it can't; announces the decision. */
  reserve(order: OrderPlaced): Promise<Reservation> {
    return this.#settle(order, () => this.#decide(order));
  }

  /** Fails an order that could not be processed; announces the decision. */
  setAside(order: OrderPlaced, reason: string): Promise<Reservation> {
    return this.#settle(order, async () => {
      const item = await this.#find(order.lines[0].item) ?? order.lines[0].item;
      const reservation = refused(
        { ...order, lines: [{ ...order.lines[0], item }] },
        fitReason(reason),
      );
      return await this.#record(reservation) ? reservation : undefined;
    });
  }

  /** Stock of every item, by name. */
  async levels(): Promise<StockLevel[]> {
    // Byte order, as SQLite sorts, whatever the database's locale.
    const rows = await this.db.sql`SELECT item, quantity FROM stock ORDER BY item COLLATE "C"`;
    return rows.map((r) => ({ item: r.item, quantity: r.quantity }));
  }

  /** Takes the stock rows of the items `names` mean, always in the same order. */
  async lockItems(names: readonly string[]): Promise<void> {
    const items = new Set<string>();
    for (const name of names) {
      const item = this.menu.find(name);
      if (item !== undefined) items.add(item);
    }
    if (items.size === 0) return;
    // Rows are locked in the order they are returned: the same order for every batch.
    await this.db.sql`SELECT item FROM stock WHERE item IN ${this.db.sql([...items])}
      ORDER BY item COLLATE "C" FOR UPDATE`;
  }

  /**
   * Announces the recorded decision on `order`, or `decide`s and announces it. `decide`
   * resolves undefined when another replica recorded a decision first: that one is announced.
   */
  #settle(
    order: OrderPlaced,
    decide: () => Promise<Reservation | undefined>,
  ): Promise<Reservation> {
    return this.db.transaction(async () => {
      const reservation = await this.#recorded(order.order_id) ?? await decide() ??
        await this.#recorded(order.order_id);
      if (!reservation) throw new Error(`The reservation of ${order.order_id} vanished`);
      await this.outbox.insert(announcement(reservation));
      return reservation;
    });
  }

  async #decide(order: OrderPlaced): Promise<Reservation | undefined> {
    const { qty } = order.lines[0];
    const item = await this.#find(order.lines[0].item);
    if (item === undefined) {
      const reservation = refused(order, this.menu.notOnMenu(order.lines[0].item));
      return await this.#record(reservation) ? reservation : undefined;
    }
    const sql = this.db.sql;
    const [taken] = await sql`UPDATE stock SET quantity = quantity - ${qty}
      WHERE item = ${item} AND quantity >= ${qty} RETURNING quantity`;
    if (!taken) {
      const [row] = await sql`SELECT quantity FROM stock WHERE item = ${item}`;
      const reservation = refused(
        { ...order, lines: [{ item, qty }] },
        notEnough(item, qty, Number(row?.quantity)),
      );
      return await this.#record(reservation) ? reservation : undefined;
    }
    const reservation = reserved(order, item, taken.quantity);
    if (await this.#record(reservation)) return reservation;
    // Another replica decided this order meanwhile: the stock taken here goes back.
    await sql`UPDATE stock SET quantity = quantity + ${qty} WHERE item = ${item}`;
    return undefined;
  }

  /** Records a decision; false when the order already had one (its key is taken). */
  async #record(reservation: Reservation): Promise<boolean> {
    const { order_id, student_id } = reservation.event;
    const { item, qty } = reservation.event.lines[0];
    const reason = reservation.outcome === "FAILED" ? reservation.event.reason : null;
    const remaining = reservation.outcome === "RESERVED" ? reservation.event.remaining : null;
    const inserted = await this.db.sql`INSERT INTO reservations
      (order_id, item, qty, student_id, outcome, reason, remaining, decided_at)
      VALUES (${order_id}, ${item}, ${qty}, ${student_id}, ${reservation.outcome}, ${reason},
        ${remaining ?? null}, ${new Date()})
      ON CONFLICT (order_id) DO NOTHING`;
    return inserted.count > 0;
  }

  async #recorded(orderId: string): Promise<Reservation | undefined> {
    const [row] = await this.db.sql`SELECT * FROM reservations WHERE order_id = ${orderId}`;
    return row ? recordedReservation(row) : undefined;
  }

  /** The item `name` means; the menu is read again when it names none (another replica's). */
  async #find(name: string): Promise<string | undefined> {
    const item = this.menu.find(name);
    if (item !== undefined) return item;
    await this.#readMenu();
    return this.menu.find(name);
  }

  async #readMenu(): Promise<void> {
    const rows = await this.db.sql`SELECT item FROM stock ORDER BY item COLLATE "C"`;
    this.menu.update(rows.map((r) => r.item));
  }
}
