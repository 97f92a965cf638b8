/**
 * Stock and reservations in SQLite. One process owns the file, so each decision is a few
 * synchronous statements in one savepoint (or transaction): nothing can come between the
 * read of the stock and its update, nor between a cancel's check and its release.
 * @module
 */
import type { StatementSync } from "node:sqlite";
import type { OrderCancelled, OrderPlaced } from "@campus/shared/events";
import type { OutboxStore } from "@campus/shared/outbox_store";
import type { SqliteDatabase } from "@campus/shared/sqlite";
import {
  announcement,
  cancellation,
  decide,
  lockOrder,
  MenuItems,
  recordedDecision,
  refused,
  type Release,
  releaseAnnouncement,
  type Reservation,
  reserved,
  type StockLevel,
  type WantedLine,
  wantedLines,
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
  // Carts: a decision keeps every line (JSON, with `remaining` when reserved), a cancel may be
  // decided first (CANCELLED), and `released_at` marks the stock given back. SQLite cannot
  // change a CHECK in place, so the table is made anew and the decisions copied, one line each.
  `CREATE TABLE reservations_v2 (
    order_id TEXT PRIMARY KEY,
    student_id TEXT NOT NULL,
    lines TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('RESERVED', 'FAILED', 'CANCELLED')),
    reason TEXT,
    decided_at TEXT NOT NULL,
    released_at TEXT
  );
  INSERT INTO reservations_v2 (order_id, student_id, lines, outcome, reason, decided_at)
    SELECT order_id, student_id,
      json_array(CASE WHEN remaining IS NULL THEN json_object('item', item, 'qty', qty)
        ELSE json_object('item', item, 'qty', qty, 'remaining', remaining) END),
      outcome, reason, decided_at
    FROM reservations;
  DROP TABLE reservations;
  ALTER TABLE reservations_v2 RENAME TO reservations;`,
];

/** The stock store in a SQLite database. */
export class SqliteStockStore {
  #stockOf: StatementSync;
  #take: StatementSync;
  #giveBack: StatementSync;
  #recorded: StatementSync;
  #insertReservation: StatementSync;
  #markReleased: StatementSync;
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
    this.#giveBack = sql.prepare(`UPDATE stock SET quantity = quantity + ? WHERE item = ?`);
    this.#recorded = sql.prepare(`SELECT * FROM reservations WHERE order_id = ?`);
    this.#insertReservation = sql.prepare(`INSERT INTO reservations
      (order_id, student_id, lines, outcome, reason, decided_at, released_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)`);
    this.#markReleased = sql.prepare(`UPDATE reservations SET released_at = ?
      WHERE order_id = ? AND released_at IS NULL`);
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

  /** Reserves every line of an order or none, or records why not; announces the decision. */
  reserve(order: OrderPlaced): Promise<Reservation> {
    return this.#settle(order, () => this.#decide(order));
  }

  /** Fails an order that could not be processed; announces the decision. */
  setAside(order: OrderPlaced, reason: string): Promise<Reservation> {
    return this.#settle(order, () => {
      // Line by line, unmerged: the order may be set aside because its lines add up to too much.
      const lines = order.lines.map(({ item, qty }) => ({
        item: this.menu.find(item) ?? item,
        qty,
      }));
      return this.#record(refused({ ...order, lines }, reason));
    });
  }

  /** Gives back what a cancelled order holds, exactly once; announces the release. */
  cancel(cancel: OrderCancelled): Promise<Release> {
    return this.db.write(() => {
      const row = this.#recorded.get(cancel.order_id);
      const release = cancellation(cancel, row ? recordedDecision(row) : undefined);
      const now = new Date().toISOString();
      if (release.recordCancelled) {
        this.#insertReservation.run(
          cancel.order_id,
          cancel.student_id,
          JSON.stringify(release.event.lines),
          "CANCELLED",
          null,
          now,
          now,
        );
      } else if (!release.duplicate) {
        const back = new Map(release.giveBack.map((line) => [line.item, line.qty]));
        for (const item of lockOrder(back.keys())) this.#giveBack.run(back.get(item)!, item);
        this.#markReleased.run(now, cancel.order_id);
      }
      this.outbox.insert(releaseAnnouncement(release));
      return release;
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
    // One process owns the file and runs one transaction at a time: nothing to wait for.
    return Promise.resolve();
  }

  /** Readies a batch of reservations: nothing to do, each is decided in memory already. */
  prepareReservations(): Promise<void> {
    return Promise.resolve();
  }

  /** Announces the recorded decision on `order`, or `decide`s and announces it. */
  #settle(order: OrderPlaced, decide: () => Reservation): Promise<Reservation> {
    return this.db.write(() => {
      const recorded = this.#recorded.get(order.order_id);
      const reservation = recorded ? recordedDecision(recorded).reservation : decide();
      const event = announcement(reservation);
      if (event) this.outbox.insert(event);
      return reservation;
    });
  }

  #decide(order: OrderPlaced): Reservation {
    const wanted = wantedLines(order.lines, this.menu);
    if (wanted.every((line) => line.onMenu)) {
      const remaining = this.#takeAll(wanted);
      if (remaining) {
        return this.#record(
          reserved(
            order,
            wanted.map(({ item, qty }) => ({ item, qty, remaining: remaining.get(item)! })),
          ),
        );
      }
    }
    // Refused: read what is left of each item, to say which lines fall short and by how much.
    const inStock = new Map<string, number>();
    for (const { item, onMenu } of wanted) {
      const row = onMenu ? this.#stockOf.get(item) : undefined;
      if (row) inStock.set(item, Number(row.quantity));
    }
    const reservation = decide(order, wanted, inStock, this.menu);
    if (reservation.outcome === "RESERVED") {
      // The stock read just now covers every line that could not be taken a moment ago.
      throw new Error(`Stock of order ${order.order_id} changed while it was decided`);
    }
    return this.#record(reservation);
  }

  /**
   * Takes every line, in lock order, and returns what each leaves; or, when one line finds too
   * little, gives back the lines taken before it and returns undefined. Taking first is one
   * statement per line on the way nearly every order goes, where reading first was two; the
   * transaction is this process's alone, so giving back undoes the taking exactly.
   */
  #takeAll(wanted: readonly WantedLine[]): Map<string, number> | undefined {
    const qtyOf = new Map(wanted.map((line) => [line.item, line.qty]));
    const items = wanted.length === 1 ? [wanted[0].item] : lockOrder(qtyOf.keys());
    const remaining = new Map<string, number>();
    for (const item of items) {
      const qty = qtyOf.get(item)!;
      const row = this.#take.get(qty, item, qty);
      if (!row) {
        for (const [taken] of remaining) this.#giveBack.run(qtyOf.get(taken)!, taken);
        return undefined;
      }
      remaining.set(item, Number(row.quantity));
    }
    return remaining;
  }

  #record(reservation: Reservation): Reservation {
    const { order_id, student_id, lines } = reservation.event;
    this.#insertReservation.run(
      order_id,
      student_id,
      JSON.stringify(lines),
      reservation.outcome,
      reservation.outcome === "FAILED" ? reservation.event.reason : null,
      new Date().toISOString(),
      null,
    );
    return reservation;
  }
}
