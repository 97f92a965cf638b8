/**
 * Stock and reservations in PostgreSQL, shared by the inventory replicas. A decision first
 * locks the stock rows of every item of its order, in one order for every replica (byte order
 * of the name, `COLLATE "C"`), so two carts wait for each other instead of deadlocking; then it
 * reads them, and takes stock with conditional updates (`quantity >= qty`), so no unit is ever
 * sold twice. The order id is the key of its reservation: of two replicas deciding one order at
 * once, the second finds the first's decision and gives back what it took. A cancel locks the
 * order's decision row, so its stock goes back once, however many replicas see the cancel.
 * @module
 */
import type { OrderCancelled, OrderPlaced } from "@campus/shared/events";
import type { OutboxStore } from "@campus/shared/outbox_store";
import { TransactionConflict } from "@campus/shared/database";
import { arrayText, BatchMemory, type PostgresDatabase, type Sql } from "@campus/shared/postgres";
import {
  announcement,
  cancellation,
  decide,
  MenuItems,
  type OrderItems,
  type RecordedDecision,
  recordedDecision,
  refused,
  type Release,
  releaseAnnouncement,
  type Reservation,
  type StockLevel,
  wantedLines,
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
  // Carts: a decision keeps every line (with `remaining` when reserved), a cancel may be
  // decided first (CANCELLED), and `released_at` marks the stock given back.
  `ALTER TABLE reservations ADD COLUMN lines jsonb, ADD COLUMN released_at timestamptz;
  UPDATE reservations SET lines = jsonb_build_array(jsonb_strip_nulls(
    jsonb_build_object('item', item, 'qty', qty, 'remaining', remaining)));
  ALTER TABLE reservations ALTER COLUMN lines SET NOT NULL,
    DROP COLUMN item, DROP COLUMN qty, DROP COLUMN remaining,
    DROP CONSTRAINT reservations_outcome_check,
    ADD CONSTRAINT reservations_outcome_check
      CHECK (outcome IN ('RESERVED', 'FAILED', 'CANCELLED'));`,
  // Decisions made one at a time were stored with their lines as a JSON string (the text of
  // the array) rather than the array itself; readers took both. Every row holds the array now.
  `UPDATE reservations SET lines = (lines #>> '{}')::jsonb WHERE jsonb_typeof(lines) = 'string';
  ALTER TABLE reservations ADD CONSTRAINT reservations_lines_array
    CHECK (jsonb_typeof(lines) = 'array');`,
];

/**
 * What a transaction without savepoints (a consumer's batch) decided, and what it decided from:
 * the stock left of each item whose row it holds, and the decision recorded on each order it
 * read or decided.
 */
class DecisionBatch {
  /** Stock left of each item whose row the transaction holds, after its decisions. */
  readonly left = new Map<string, number>();
  /** The decision on each order read or decided, marked duplicate; null: none yet. */
  readonly recorded = new Map<string, RecordedDecision | null>();
  /** Decisions made and not written yet. */
  decided: Reservation[] = [];
}

/**
 * Records a batch's decisions and takes the stock they reserve, in one statement. Another
 * replica deciding one of the orders first (a set-aside, which holds no stock rows) makes the
 * whole transaction collide: it runs again and finds that decision.
 */
async function writeDecisions(batch: DecisionBatch, sql: Sql): Promise<void> {
  const decided = batch.decided;
  batch.decided = [];
  if (decided.length === 0) return;
  const rows = decided.map((reservation) => ({
    order_id: reservation.event.order_id,
    student_id: reservation.event.student_id,
    lines: reservation.event.lines,
    outcome: reservation.outcome,
    reason: reservation.outcome === "FAILED" ? reservation.event.reason : null,
  }));
  const take = new Map<string, number>();
  for (const reservation of decided) {
    if (reservation.outcome !== "RESERVED") continue;
    for (const { item, qty } of reservation.event.lines) {
      take.set(item, (take.get(item) ?? 0) + qty);
    }
  }
  const takes = [...take].map(([item, qty]) => ({ item, qty }));
  const [done] = await sql`WITH recorded AS (
      INSERT INTO reservations (order_id, student_id, lines, outcome, reason, decided_at)
      SELECT order_id, student_id, lines, outcome, reason, now()
      FROM jsonb_to_recordset(${sql.json(rows)})
        AS decided (order_id text, student_id text, lines jsonb, outcome text, reason text)
      ON CONFLICT (order_id) DO NOTHING
      RETURNING order_id
    ), taken AS (
      UPDATE stock SET quantity = stock.quantity - take.qty
      FROM jsonb_to_recordset(${sql.json(takes)}) AS take (item text, qty integer)
      WHERE stock.item = take.item AND stock.quantity >= take.qty
      RETURNING stock.item
    )
    SELECT (SELECT count(*) FROM recorded)::int AS recorded,
      (SELECT count(*) FROM taken)::int AS taken`;
  if (done.recorded !== rows.length) {
    throw new TransactionConflict(
      `${rows.length - done.recorded} of a batch's ${rows.length} orders were decided meanwhile`,
    );
  }
  // The rows are held since they were read: this would be a bug, and undoes it all.
  if (done.taken !== takes.length) throw new Error("Stock of a batch changed under its lock");
}

/**
 * The stock rows of `names` (menu spelling) and their quantities, locked in byte order: every
 * transaction takes them in the same order, so that two never wait for each other in a circle.
 * A statement of its own, or a subquery of another.
 */
function lockedStock(sql: Sql, names: readonly string[]) {
  return sql`SELECT item, quantity FROM stock WHERE item = ANY(${arrayText(names)}::text[])
    ORDER BY item COLLATE "C" FOR UPDATE`;
}

/** The stock store in a PostgreSQL database. */
export class PostgresStockStore {
  /** The decisions of each open transaction without savepoints. */
  #batches: BatchMemory<DecisionBatch>;

  private constructor(
    private readonly db: PostgresDatabase,
    private readonly outbox: OutboxStore,
    private readonly menu: MenuItems,
  ) {
    this.#batches = new BatchMemory(db, () => new DecisionBatch());
  }

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

  /** Reserves every line of an order or none, or records why not; announces the decision. */
  reserve(order: OrderPlaced): Promise<Reservation> {
    return this.db.transaction(async () => {
      const batch = this.#batches.current();
      if (batch) return await this.#reserveInBatch(order, batch);
      const items = await this.#knowItems(order.lines.map((line) => line.item));
      // One round trip reads the decision recorded before, if any, and takes the stock rows a
      // new one needs (a recorded decision changes no stock, but the rows are few, and a batch
      // holds them already).
      const { recorded, inStock } = await this.#recordedAndStock(order.order_id, items);
      const reservation = recorded?.reservation ?? await this.#decide(order, inStock) ??
        (await this.#recorded(order.order_id))?.reservation;
      return await this.#announce(order, reservation);
    });
  }

  /**
   * Readies the current transaction for the reservations of `orders`: takes their stock rows
   * and, in a transaction without savepoints, keeps their levels and the orders' recorded
   * decisions in memory, where `reserve` decides; its decisions are written at the commit.
   */
  async prepareReservations(orders: readonly OrderItems[]): Promise<void> {
    const inStock = await this.#lockStock(
      await this.#knowItems(orders.flatMap((order) => order.items)),
    );
    const batch = this.#batches.current();
    if (!batch) return;
    for (const [item, quantity] of inStock) {
      if (!batch.left.has(item)) batch.left.set(item, quantity);
    }
    const ids = [...new Set(orders.map((order) => order.order_id))]
      .filter((id) => !batch.recorded.has(id));
    if (ids.length === 0) return;
    // Read after the stock rows are held: a decision on one of these orders, which holds the
    // same rows, is committed by now or waits for this batch.
    const rows = await this.db.sql`SELECT * FROM reservations
      WHERE order_id = ANY(${arrayText(ids)}::text[])`;
    for (const id of ids) batch.recorded.set(id, null);
    for (const row of rows) batch.recorded.set(String(row.order_id), recordedDecision(row));
  }

  /** Fails an order that could not be processed; announces the decision. */
  setAside(order: OrderPlaced, reason: string): Promise<Reservation> {
    return this.#settle(order, async () => {
      await this.#knowItems(order.lines.map((line) => line.item));
      // Line by line, unmerged: the order may be set aside because its lines add up to too much.
      const lines = order.lines.map(({ item, qty }) => ({
        item: this.menu.find(item) ?? item,
        qty,
      }));
      const reservation = refused({ ...order, lines }, reason);
      return await this.#record(reservation) ? reservation : undefined;
    });
  }

  /** Gives back what a cancelled order holds, exactly once; announces the release. */
  cancel(cancel: OrderCancelled): Promise<Release> {
    return this.db.transaction(async () => {
      await this.#endBatch();
      // Stock rows first, then the decision row: the order a decision takes them in.
      await this.lockItems(cancel.lines.map((line) => line.item));
      let recorded = await this.#recorded(cancel.order_id, { lock: true });
      let release = cancellation(cancel, recorded);
      if (release.recordCancelled) {
        const inserted = await this.db.sql`INSERT INTO reservations
          (order_id, student_id, lines, outcome, reason, decided_at, released_at)
          VALUES (${cancel.order_id}, ${cancel.student_id},
            ${this.db.sql.json(release.event.lines)}, 'CANCELLED', NULL, now(), now())
          ON CONFLICT (order_id) DO NOTHING`;
        if (inserted.count === 0) {
          // A replica decided the order meanwhile (the insert waited for its commit).
          recorded = await this.#recorded(cancel.order_id, { lock: true });
          release = cancellation(cancel, recorded);
        }
      }
      if (!release.recordCancelled && !release.duplicate) {
        await this.#giveBack(release);
        await this.db.sql`UPDATE reservations SET released_at = now()
          WHERE order_id = ${cancel.order_id} AND released_at IS NULL`;
      }
      await this.outbox.insert(releaseAnnouncement(release));
      return release;
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
    await this.#lockStock(await this.#knowItems(names));
  }

  /**
   * Locks the stock rows of `items` (menu spelling) in byte order, and reads them. Rows are
   * locked in the order they are returned: the same order for every transaction.
   */
  async #lockStock(items: Iterable<string>): Promise<Map<string, number>> {
    const names = [...new Set(items)];
    if (names.length === 0) return new Map();
    const rows = await lockedStock(this.db.sql, names);
    return new Map(rows.map((r) => [r.item as string, Number(r.quantity)]));
  }

  /**
   * Writes the decisions of the current transaction's batch now, and forgets what it kept: a
   * cancel or a set-aside reads and changes the rows itself.
   */
  async #endBatch(): Promise<void> {
    const batch = this.#batches.forget();
    if (batch) await writeDecisions(batch, this.db.sql);
  }

  /**
   * Decides on `order` in memory, from the stock its batch holds and the decisions it read or
   * made; what it did not read yet (an order or an item `prepareReservations` was not given),
   * it reads now. The decision is written with the batch's others, just before the commit.
   */
  async #reserveInBatch(order: OrderPlaced, batch: DecisionBatch): Promise<Reservation> {
    const items = await this.#knowItems(order.lines.map((line) => line.item));
    const unread = items.filter((item) => !batch.left.has(item));
    if (unread.length > 0) {
      for (const [item, quantity] of await this.#lockStock(unread)) batch.left.set(item, quantity);
    }
    const id = order.order_id;
    if (!batch.recorded.has(id)) batch.recorded.set(id, (await this.#recorded(id)) ?? null);
    const recorded = batch.recorded.get(id);
    if (recorded) return await this.#announce(order, recorded.reservation);
    const reservation = decide(order, wantedLines(order.lines, this.menu), batch.left, this.menu);
    if (reservation.outcome === "RESERVED") {
      for (const { item, qty } of reservation.event.lines) {
        batch.left.set(item, batch.left.get(item)! - qty);
      }
    }
    batch.recorded.set(id, { reservation: { ...reservation, duplicate: true } });
    if (batch.decided.length === 0) this.db.defer(this.#decisionWriter, batch);
    batch.decided.push(reservation);
    return await this.#announce(order, reservation);
  }

  /** Writes the decisions of a transaction's batch, just before it commits. */
  #decisionWriter = {
    async write(batches: DecisionBatch[], sql: Sql): Promise<void> {
      for (const batch of batches) await writeDecisions(batch, sql);
    },
  };

  /**
   * Announces the recorded decision on `order`, or `decide`s and announces it. `decide`
   * resolves undefined when another replica recorded a decision first: that one is announced.
   */
  #settle(
    order: OrderPlaced,
    decide: () => Promise<Reservation | undefined>,
  ): Promise<Reservation> {
    return this.db.transaction(async () => {
      await this.#endBatch();
      const reservation = (await this.#recorded(order.order_id))?.reservation ??
        await decide() ?? (await this.#recorded(order.order_id))?.reservation;
      return await this.#announce(order, reservation);
    });
  }

  /** Announces `reservation`, the decision on `order`, in the outbox. */
  async #announce(order: OrderPlaced, reservation?: Reservation): Promise<Reservation> {
    if (!reservation) throw new Error(`The reservation of ${order.order_id} vanished`);
    const event = announcement(reservation);
    if (event) await this.outbox.insert(event);
    return reservation;
  }

  /**
   * Decides on `order` given the stock of its items (`inStock`, their rows locked), records the
   * decision and takes the stock it reserves, in one statement: the stock is taken only when
   * the decision is recorded, so an order another replica decided meanwhile takes nothing.
   * Resolves undefined in that case.
   */
  async #decide(
    order: OrderPlaced,
    inStock: ReadonlyMap<string, number>,
  ): Promise<Reservation | undefined> {
    const wanted = wantedLines(order.lines, this.menu);
    const reservation = decide(order, wanted, inStock, this.menu);
    const take = reservation.outcome === "RESERVED"
      ? reservation.event.lines.map(({ item, qty }) => ({ item, qty }))
      : [];
    const { order_id, student_id, lines } = reservation.event;
    const reason = reservation.outcome === "FAILED" ? reservation.event.reason : null;
    const sql = this.db.sql;
    const [done] = await sql`WITH recorded AS (
        INSERT INTO reservations (order_id, student_id, lines, outcome, reason, decided_at)
        VALUES (${order_id}, ${student_id}, ${sql.json(lines)},
          ${reservation.outcome}, ${reason}, now())
        ON CONFLICT (order_id) DO NOTHING
        RETURNING order_id
      ), taken AS (
        UPDATE stock SET quantity = stock.quantity - take.qty
        FROM jsonb_to_recordset(${sql.json(take)}) AS take (item text, qty integer)
        WHERE stock.item = take.item AND stock.quantity >= take.qty
          AND EXISTS (SELECT FROM recorded)
        RETURNING stock.item
      )
      SELECT (SELECT count(*) FROM recorded)::int AS recorded,
        (SELECT count(*) FROM taken)::int AS taken`;
    if (done.recorded === 0) return undefined;
    // The rows are locked since they were read: this would be a bug, and undoes it all.
    if (done.taken !== take.length) {
      throw new Error(`Stock of order ${order_id} changed under its lock`);
    }
    return reservation;
  }

  /**
   * The decision recorded on `orderId`, and the stock of `items` (menu spelling), their rows
   * locked in the one order ({@linkcode PostgresStockStore.lockItems}), in one round trip.
   */
  async #recordedAndStock(
    orderId: string,
    items: readonly string[],
  ): Promise<{ recorded?: RecordedDecision; inStock: Map<string, number> }> {
    const names = [...new Set(items)];
    if (names.length === 0) return { recorded: await this.#recorded(orderId), inStock: new Map() };
    const sql = this.db.sql;
    const [row] = await sql`SELECT reservations.*, (
        SELECT jsonb_agg(jsonb_build_array(locked.item, locked.quantity))
        FROM (${lockedStock(sql, names)}) AS locked
      ) AS in_stock
      FROM (SELECT ${orderId}::text AS id) AS wanted
      LEFT JOIN reservations ON reservations.order_id = wanted.id`;
    const inStock = new Map(
      ((row.in_stock ?? []) as [string, number][]).map(([item, n]) => [item, Number(n)]),
    );
    return { recorded: row.order_id == null ? undefined : recordedDecision(row), inStock };
  }

  /** Puts the stock of `giveBack` back, its rows locked in the one order first. */
  async #giveBack({ giveBack }: Pick<Release, "giveBack">): Promise<void> {
    await this.#lockStock(giveBack.map((line) => line.item));
    for (const { item, qty } of giveBack) {
      await this.db.sql`UPDATE stock SET quantity = quantity + ${qty} WHERE item = ${item}`;
    }
  }

  /** Records a decision; false when the order already had one (its key is taken). */
  async #record(reservation: Reservation): Promise<boolean> {
    const { order_id, student_id, lines } = reservation.event;
    const reason = reservation.outcome === "FAILED" ? reservation.event.reason : null;
    const sql = this.db.sql;
    const inserted = await sql`INSERT INTO reservations
      (order_id, student_id, lines, outcome, reason, decided_at)
      VALUES (${order_id}, ${student_id}, ${sql.json(lines)},
        ${reservation.outcome}, ${reason}, now())
      ON CONFLICT (order_id) DO NOTHING`;
    return inserted.count > 0;
  }

  async #recorded(
    orderId: string,
    { lock = false } = {},
  ): Promise<RecordedDecision | undefined> {
    const sql = this.db.sql;
    const [row] = lock
      ? await sql`SELECT * FROM reservations WHERE order_id = ${orderId} FOR UPDATE`
      : await sql`SELECT * FROM reservations WHERE order_id = ${orderId}`;
    return row ? recordedDecision(row) : undefined;
  }

  /**
   * The items `names` mean, in the menu's spelling; the menu is read again when one names
   * none (another replica may have added it).
   */
  async #knowItems(names: readonly string[]): Promise<string[]> {
    if (names.some((name) => this.menu.find(name) === undefined)) await this.#readMenu();
    return names.flatMap((name) => this.menu.find(name) ?? []);
  }

  async #readMenu(): Promise<void> {
    const rows = await this.db.sql`SELECT item FROM stock ORDER BY item COLLATE "C"`;
    this.menu.update(rows.map((r) => r.item));
  }
}
