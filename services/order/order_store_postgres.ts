/**
 * Orders in PostgreSQL, shared by the order replicas: an order placed through one is read
 * through any. An idempotency key is claimed with a unique insert before its order is made, so
 * two replicas given the same key at once make one order between them.
 * @module
 */
import type { InventoryReleased, InventoryResult, OutgoingEvent } from "@campus/shared/events";
import type { PlaceOrderRequest } from "./place_order_request.ts";
import type { OutboxStore } from "@campus/shared/outbox_store";
import {
  arrayText,
  BatchMemory,
  pagesOf,
  type PostgresDatabase,
  type Row,
  type Sql,
} from "@campus/shared/postgres";
import {
  canonical,
  IDEMPOTENCY_KEY_TTL_MS,
  PRUNE_BATCH,
  PRUNE_EVERY_MS,
  requestOf,
} from "./idempotency_keys.ts";
import {
  awaitsInventory,
  cancelledFrom,
  decideMove,
  linesAfter,
  moved,
  moveEvent,
  type MoveOutcome,
  type MoveRequest,
  type NewOrder,
  newOrder,
  noOrders,
  type Order,
  orderCancelled,
  type OrderLine,
  orderPlaced,
  type OrderQuery,
  type OrderStatus,
  orderStatusChanged,
  type Placement,
  type Reask,
  type ReaskRequest,
  type ReleaseOutcome,
  releaseRefused,
  sameRequest,
  withLines,
} from "./order.ts";

const SCHEMA = [
  `CREATE TABLE orders (
    -- The order of the listings: the order in which the rows were written.
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    order_id text PRIMARY KEY,
    item text NOT NULL,
    qty integer NOT NULL,
    student_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('PLACED', 'RESERVED', 'FAILED')),
    reason text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
  );
  CREATE INDEX orders_by_student ON orders (student_id, seq);`,
  `CREATE TABLE idempotency_keys (
    key text PRIMARY KEY,
    request text NOT NULL,
    order_id text NOT NULL,
    expires_at bigint NOT NULL
  );
  CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);`,
  // Only the orders still waiting: the age of the oldest is read at every metrics scrape, and
  // this keeps that read one index step however many orders the table holds.
  `CREATE INDEX orders_placed ON orders (created_at) WHERE status = 'PLACED'`,
  // How often an order was asked about again, and when it is overdue next (null: not yet
  // asked, overdue OUTCOME_TIMEOUT_MS after created_at).
  `ALTER TABLE orders ADD COLUMN asks integer NOT NULL DEFAULT 0,
    ADD COLUMN ask_at timestamptz`,
  // The kitchen: every status, the lines of a cart (JSON text; null in rows from before carts,
  // whose one line is item and qty) and when each step happened. item and qty keep the first
  // line, so a row always reads as an order of at least one line.
  `ALTER TABLE orders DROP CONSTRAINT orders_status_check,
    ADD CONSTRAINT orders_status_check CHECK (status IN ('PLACED', 'RESERVED', 'FAILED',
      'CANCELLED', 'PREPARING', 'READY', 'COLLECTED', 'EXPIRED')),
    ADD COLUMN lines text,
    ADD COLUMN reserved_at timestamptz,
    ADD COLUMN ready_at timestamptz,
    ADD COLUMN cancelled_by text CHECK (cancelled_by IN ('student', 'staff')),
    ADD COLUMN stock_released_at timestamptz;
  -- Only the orders waiting to be collected: the expiry sweep walks these, oldest first.
  CREATE INDEX orders_ready ON orders (ready_at) WHERE status = 'READY';`,
  // How often inventory was asked again to give back a cancelled order's stock, and when next
  // (null: not yet, overdue OUTCOME_TIMEOUT_MS after the cancel, its updated_at). The index
  // holds only the cancelled orders still waiting for their release.
  `ALTER TABLE orders ADD COLUMN release_asks integer NOT NULL DEFAULT 0,
    ADD COLUMN release_ask_at timestamptz;
  CREATE INDEX orders_unreleased ON orders (updated_at)
    WHERE status = 'CANCELLED' AND stock_released_at IS NULL;`,
];

const COLUMNS = [
  "order_id",
  "item",
  "qty",
  "student_id",
  "status",
  "reason",
  "created_at",
  "updated_at",
  "lines",
  "reserved_at",
  "ready_at",
  "cancelled_by",
  "stock_released_at",
] as const;

/** A move from `PLACED` on an inventory result, as {@linkcode writeMoves} writes it. */
type ResultMove = {
  order_id: string;
  status: string;
  reason: string | null;
  reserved_at: string | null;
  updated_at: string;
  item: string;
  lines: string;
};

/**
 * What a transaction without savepoints (a consumer's batch) did with inventory's results: the
 * rows it holds, as results left them (null: no such order), and the moves not written yet.
 */
class ResultBatch {
  /** The rows held, by order id, their status as the batch's results left it. */
  readonly rows = new Map<string, Row | null>();
  /** Moves made and not written yet. */
  moves: ResultMove[] = [];
}

/** Writes a batch's moves in one statement. */
async function writeMoves(batch: ResultBatch, sql: Sql): Promise<void> {
  const moves = batch.moves;
  batch.moves = [];
  if (moves.length === 0) return;
  const moved = await sql`UPDATE orders SET status = m.status, reason = m.reason,
      reserved_at = m.reserved_at, updated_at = m.updated_at, item = m.item, lines = m.lines
    FROM jsonb_to_recordset(${sql.json(moves)}) AS m (order_id text, status text, reason text,
      reserved_at timestamptz, updated_at timestamptz, item text, lines text)
    WHERE orders.order_id = m.order_id AND orders.status = 'PLACED'`;
  // The rows are held since they were read: this would be a bug, and undoes it all.
  if (moved.count !== moves.length) {
    throw new Error(`${moves.length - moved.count} orders left PLACED under a held lock`);
  }
}

/** The order store in a PostgreSQL database. */
export class PostgresOrderStore {
  #prunedAt = -Infinity;
  /** The results applied in each open transaction without savepoints. */
  #batches: BatchMemory<ResultBatch>;

  private constructor(
    private readonly db: PostgresDatabase,
    private readonly outbox: OutboxStore,
    private readonly now: () => number,
  ) {
    this.#batches = new BatchMemory(db, () => new ResultBatch());
  }

  /**
   * The orders of `db`, its schema brought up to date.
   * @param now the clock of idempotency keys, in ms since the epoch (tests move it)
   */
  static async open(
    db: PostgresDatabase,
    outbox: OutboxStore,
    now: () => number = Date.now,
  ): Promise<PostgresOrderStore> {
    await db.migrate("orders", SCHEMA);
    return new PostgresOrderStore(db, outbox, now);
  }

  /** Stores new orders with their events and keys in one transaction. */
  placeAll(orders: readonly NewOrder[]): Promise<Placement[]> {
    return this.db.transaction(async () => {
      await this.#pruneExpired();
      const now = new Date().toISOString();
      const placed: Order[] = [];
      /** The outbox events of the placed orders, each with its own request's trace. */
      const events: OutgoingEvent[] = [];
      /** Keys used earlier in this group, with what they were used for. */
      const group = new Map<string, { request: PlaceOrderRequest; order: Order }>();
      const placements: Placement[] = [];
      for (const { request, idempotencyKey: key, traceparent } of orders) {
        const order = newOrder(request, now);
        if (key !== undefined) {
          const earlier = group.get(key);
          if (earlier) {
            placements.push(replay(key, earlier.request, earlier.order, request));
            continue;
          }
          const seen = await this.#claim(key, request, order.order_id);
          if (seen) {
            const made = sameRequest(seen.request, request)
              ? (await this.get(seen.orderId))!
              : undefined;
            placements.push(
              made
                ? { kind: "replayed", order: made }
                : { kind: "conflict", key, orderId: seen.orderId, previous: seen.request },
            );
            continue;
          }
          group.set(key, { request, order });
        }
        placed.push(order);
        events.push({ ...orderPlaced(order), traceparent });
        placements.push({ kind: "placed", order });
      }
      if (placed.length > 0) {
        const sql = this.db.sql;
        const column = (value: (order: Order) => string | number) => arrayText(placed.map(value));
        // In the order placed (their `seq`), one statement text for any number of orders (see
        // the outbox's insert).
        await sql`INSERT INTO orders
            (order_id, item, qty, lines, student_id, status, created_at, updated_at)
          SELECT order_id, item, qty, lines, student_id, status, created_at, updated_at
          FROM unnest(
              ${column((o) => o.order_id)}::text[],
              ${column((o) => o.lines[0].item)}::text[],
              ${column((o) => o.lines[0].qty)}::integer[],
              ${column((o) => JSON.stringify(o.lines))}::text[],
              ${column((o) => o.student_id)}::text[],
              ${column((o) => o.status)}::text[],
              ${column((o) => o.created_at)}::timestamptz[],
              ${column((o) => o.updated_at)}::timestamptz[]
            ) WITH ORDINALITY
            AS given (order_id, item, qty, lines, student_id, status, created_at, updated_at, n)
          ORDER BY n`;
        await this.outbox.insert(...events);
      }
      return placements;
    });
  }

  /** When the oldest order still `PLACED` was placed (ms since the epoch). */
  async oldestPlacedAt(): Promise<number | undefined> {
    const [row] = await this.db.sql`SELECT min(created_at) AS at FROM orders
      WHERE status = 'PLACED'`;
    return row?.at ? (row.at as Date).getTime() : undefined;
  }

  /** The order with `orderId`, or undefined. */
  async get(orderId: string): Promise<Order | undefined> {
    const [row] = await this.db.sql`SELECT ${this.db.sql(COLUMNS)} FROM orders
      WHERE order_id = ${orderId}`;
    return row ? toOrder(row) : undefined;
  }

  /** The `limit` most recent orders, newest first. */
  async latest(limit: number, student_id?: string): Promise<Order[]> {
    const sql = this.db.sql;
    const rows = student_id === undefined
      ? await sql`SELECT ${sql(COLUMNS)} FROM orders ORDER BY seq DESC LIMIT ${limit}`
      : await sql`SELECT ${sql(COLUMNS)} FROM orders WHERE student_id = ${student_id}
          ORDER BY seq DESC LIMIT ${limit}`;
    return rows.map(toOrder);
  }

  /** How many orders stand at each status. */
  async statusCounts(): Promise<Record<OrderStatus, number>> {
    const counts = noOrders();
    const rows = await this.db.sql`SELECT status, count(*)::int AS n FROM orders GROUP BY status`;
    for (const row of rows) counts[row.status as OrderStatus] = Number(row.n);
    return counts;
  }

  /** Records oldest first, a batch (one read) at a time. */
  async *batches(query: OrderQuery = {}): AsyncGenerator<Order[]> {
    const { student_id, status, limit } = query;
    for await (
      const rows of pagesOf(this.db, {
        table: "orders",
        columns: COLUMNS,
        key: "seq",
        where: { student_id, status },
        limit,
      })
    ) yield rows.map(toOrder);
  }

  /** Records an inventory outcome; false when the order no longer waited for one. */
  async applyResult(result: InventoryResult): Promise<boolean> {
    const batch = this.#batches.current();
    if (batch) return await this.#applyInBatch(result, batch);
    const { event, outcome } = result;
    const reason = result.outcome === "FAILED" ? result.event.reason : null;
    const now = new Date();
    const reservedAt = outcome === "RESERVED" ? now : null;
    const sql = this.db.sql;
    // Only one of several replicas given the result (or a cancel racing it) moves the order
    // on from PLACED. The move and the read of the lines it respells are one round trip.
    const [stored] = await sql`UPDATE orders
      SET status = ${outcome}, reason = ${reason}, reserved_at = ${reservedAt},
        updated_at = ${now}
      WHERE order_id = ${event.order_id} AND status = 'PLACED'
      RETURNING order_id, item, qty, lines`;
    if (stored) {
      const before = linesOf(stored);
      const lines = linesAfter(before, result);
      // The result names the items in the menu's spelling; an order typed otherwise (rare)
      // takes it in a second statement.
      if (lines.some((line, i) => line.item !== before[i].item)) {
        await sql`UPDATE orders SET item = ${lines[0].item}, lines = ${JSON.stringify(lines)}
          WHERE order_id = ${event.order_id}`;
      }
      return true;
    }
    // Not moved: the order is unknown here (its row is made), or no longer waits (the insert
    // finds its key taken).
    return await this.#recordUnknown(result);
  }

  /** Records a result for an order this service never took; false if it has the order. */
  async #recordUnknown(result: InventoryResult): Promise<boolean> {
    const { event, outcome } = result;
    const reason = result.outcome === "FAILED" ? result.event.reason : null;
    const now = new Date();
    const reservedAt = outcome === "RESERVED" ? now : null;
    const lines = event.lines.map(({ item, qty }) => ({ item, qty }));
    const inserted = await this.db.sql`INSERT INTO orders
      (order_id, item, qty, lines, student_id, status, reason, created_at, updated_at,
        reserved_at)
      VALUES (${event.order_id}, ${lines[0].item}, ${lines[0].qty}, ${JSON.stringify(lines)},
        ${event.student_id}, ${outcome}, ${reason}, ${now}, ${now}, ${reservedAt})
      ON CONFLICT (order_id) DO NOTHING`;
    return inserted.count > 0;
  }

  /**
   * Readies the current transaction for the results of `orderIds`: in a transaction without
   * savepoints, takes their rows in one order (that of the key) and keeps them in memory,
   * where `applyResult` decides; its moves are written at the commit.
   */
  async prepareResults(orderIds: readonly string[]): Promise<void> {
    const batch = this.#batches.current();
    if (!batch) return;
    await this.#hold(batch, orderIds.filter((id) => !batch.rows.has(id)));
  }

  /** Takes the rows of `ids` for the rest of the transaction, and keeps what they hold. */
  async #hold(batch: ResultBatch, ids: readonly string[]): Promise<void> {
    const wanted = [...new Set(ids)];
    if (wanted.length === 0) return;
    const sql = this.db.sql;
    const rows = await sql`SELECT order_id, item, qty, status, lines FROM orders
      WHERE order_id = ANY(${arrayText(wanted)}::text[]) ORDER BY order_id FOR UPDATE`;
    for (const id of wanted) batch.rows.set(id, null);
    for (const row of rows) batch.rows.set(row.order_id, row);
  }

  /**
   * Writes the moves of the current transaction's batch now, and forgets what it kept: a
   * release reads and changes the rows itself.
   */
  async #endBatch(): Promise<void> {
    const batch = this.#batches.forget();
    if (batch) await writeMoves(batch, this.db.sql);
  }

  /**
   * Applies `result` in memory, to the row its batch holds; a row `prepareResults` was not
   * given is taken when met, and an order never seen is recorded at once. The move is written
   * with the batch's others, just before the commit.
   */
  async #applyInBatch(result: InventoryResult, batch: ResultBatch): Promise<boolean> {
    const id = result.event.order_id;
    if (!batch.rows.has(id)) await this.#hold(batch, [id]);
    const row = batch.rows.get(id);
    if (!row) {
      const recorded = await this.#recordUnknown(result);
      // Held from here on by the insert: a second result of it in the batch finds it decided.
      if (recorded) batch.rows.set(id, { order_id: id, status: result.outcome });
      return recorded;
    }
    if (!awaitsInventory(row.status)) return false;
    const lines = linesAfter(linesOf(row), result);
    const now = new Date().toISOString();
    row.status = result.outcome;
    if (batch.moves.length === 0) this.db.defer(this.#moveWriter, batch);
    batch.moves.push({
      order_id: id,
      status: result.outcome,
      reason: result.outcome === "FAILED" ? result.event.reason : null,
      reserved_at: result.outcome === "RESERVED" ? now : null,
      updated_at: now,
      item: lines[0].item,
      lines: JSON.stringify(lines),
    });
    return true;
  }

  /** Writes the moves of a transaction's batch, just before it commits. */
  #moveWriter = {
    async write(batches: ResultBatch[], sql: Sql): Promise<void> {
      for (const batch of batches) await writeMoves(batch, sql);
    },
  };

  /** Makes a move with its event, in one transaction; see {@linkcode MoveOutcome}. */
  move(request: MoveRequest): Promise<MoveOutcome> {
    return this.db.transaction(async (): Promise<MoveOutcome> => {
      const sql = this.db.sql;
      // The row is held to the commit: a replica asked for another move of the same order at
      // once waits, then decides on what this one made of it.
      const [row] = await sql`SELECT ${sql(COLUMNS)} FROM orders
        WHERE order_id = ${request.orderId} FOR UPDATE`;
      if (!row) return { kind: "missing" };
      const order = toOrder(row);
      const decision = decideMove(order.status, request.to);
      if (decision !== "move") return { kind: decision, order };
      const next = moved(order, request, new Date().toISOString());
      const changed = await sql`UPDATE orders SET status = ${next.status},
          reason = ${next.reason ?? null}, cancelled_by = ${next.cancelled_by ?? null},
          ready_at = ${next.ready_at ?? null}, updated_at = ${next.updated_at}
        WHERE order_id = ${order.order_id} AND status = ${order.status}`;
      if (changed.count === 0) {
        throw new Error(`order ${order.order_id} left ${order.status} under a held lock`);
      }
      await this.outbox.insert({ ...moveEvent(next, order), traceparent: request.traceparent });
      return { kind: "moved", order: next, previous: order };
    });
  }

  /** Records that a cancelled order's stock is back; see {@linkcode ReleaseOutcome}. */
  async released(event: InventoryReleased): Promise<ReleaseOutcome> {
    await this.#endBatch();
    const sql = this.db.sql;
    const done = await sql`UPDATE orders SET stock_released_at = ${new Date()}
      WHERE order_id = ${event.order_id} AND status = 'CANCELLED'
        AND stock_released_at IS NULL`;
    if (done.count > 0) return { kind: "released" };
    const [row] = await sql`SELECT ${sql(COLUMNS)} FROM orders
      WHERE order_id = ${event.order_id}`;
    return releaseRefused(row && toOrder(row));
  }

  /** Expires orders `READY` for longer than `windowMs` at `now`, oldest first, with events. */
  expireOverdue(now: number, windowMs: number, limit: number): Promise<Order[]> {
    return this.db.transaction(async () => {
      const sql = this.db.sql;
      const at = new Date(now);
      // Rows another replica is expiring (or staff are collecting) are skipped, not waited
      // for; once that commits they are no longer READY.
      const rows = await sql`SELECT ${sql(COLUMNS)} FROM orders
        WHERE status = 'READY' AND ready_at <= ${new Date(now - windowMs)}
        ORDER BY ready_at LIMIT ${limit}
        FOR UPDATE SKIP LOCKED`;
      if (rows.length === 0) return [];
      const expired = rows.map((row): Order => ({
        ...toOrder(row),
        status: "EXPIRED",
        updated_at: at.toISOString(),
      }));
      await sql`UPDATE orders SET status = 'EXPIRED', updated_at = ${at}
        WHERE status = 'READY'
          AND order_id = ANY(${arrayText(expired.map((o) => o.order_id))}::text[])`;
      await this.outbox.insert(...expired.map((order) => orderStatusChanged(order, "READY")));
      return expired;
    });
  }

  /** Asks again about overdue orders, oldest first. */
  reaskOverdue({ now, timeoutMs, nextAskAfter, limit }: ReaskRequest): Promise<Reask[]> {
    return this.db.transaction(async () => {
      const sql = this.db.sql;
      // Rows another replica is asking about (or an outcome is moving on) are skipped, not
      // waited for; once that commits they are no longer overdue, or no longer PLACED.
      const rows = await sql`SELECT ${sql(COLUMNS)}, asks FROM orders
        WHERE status = 'PLACED'
          AND ((ask_at IS NULL AND created_at <= ${new Date(now - timeoutMs)})
            OR ask_at <= ${new Date(now)})
        ORDER BY created_at LIMIT ${limit}
        FOR UPDATE SKIP LOCKED`;
      if (rows.length === 0) return [];
      const reasks = rows.map((row) => ({ order: toOrder(row), asks: Number(row.asks) + 1 }));
      // One statement for the whole batch, its rows as one JSON parameter (the pool does not
      // fetch array types: see shared/postgres.ts).
      const due = reasks.map(({ order, asks }) => ({
        id: order.order_id,
        at: new Date(now + nextAskAfter(asks)).toISOString(),
      }));
      await sql`UPDATE orders SET asks = asks + 1, ask_at = due.at
        FROM jsonb_to_recordset(${sql.json(due)}) AS due (id text, at timestamptz)
        WHERE orders.order_id = due.id`;
      await this.outbox.insert(...reasks.map(({ order }) => orderPlaced(order)));
      return reasks;
    });
  }

  /** Asks inventory again to release cancelled orders still holding stock, oldest first. */
  reaskUnreleased({ now, timeoutMs, nextAskAfter, limit }: ReaskRequest): Promise<Reask[]> {
    return this.db.transaction(async () => {
      const sql = this.db.sql;
      // Rows another replica is asking about (or a release is being recorded on) are skipped,
      // not waited for; once that commits they are asked about later, or released.
      const rows = await sql`SELECT ${sql(COLUMNS)}, release_asks FROM orders
        WHERE status = 'CANCELLED' AND stock_released_at IS NULL
          AND ((release_ask_at IS NULL AND updated_at <= ${new Date(now - timeoutMs)})
            OR release_ask_at <= ${new Date(now)})
        ORDER BY updated_at LIMIT ${limit}
        FOR UPDATE SKIP LOCKED`;
      if (rows.length === 0) return [];
      const reasks = rows.map((row) => ({
        order: toOrder(row),
        asks: Number(row.release_asks) + 1,
      }));
      const due = reasks.map(({ order, asks }) => ({
        id: order.order_id,
        at: new Date(now + nextAskAfter(asks)).toISOString(),
      }));
      await sql`UPDATE orders SET release_asks = release_asks + 1, release_ask_at = due.at
        FROM jsonb_to_recordset(${sql.json(due)}) AS due (id text, at timestamptz)
        WHERE orders.order_id = due.id`;
      await this.outbox.insert(
        ...reasks.map(({ order }) => orderCancelled(order, cancelledFrom(order))),
      );
      return reasks;
    });
  }

  /**
   * Claims `key` for a new order `orderId`. Resolves undefined when the claim is ours; else
   * what the key was used for before, once that use is committed (the insert waits for it).
   */
  async #claim(
    key: string,
    request: PlaceOrderRequest,
    orderId: string,
  ): Promise<{ request: PlaceOrderRequest; orderId: string } | undefined> {
    const sql = this.db.sql;
    const expires = this.now() + IDEMPOTENCY_KEY_TTL_MS;
    const claimed = await sql`INSERT INTO idempotency_keys (key, request, order_id, expires_at)
      VALUES (${key}, ${canonical(request)}, ${orderId}, ${expires})
      ON CONFLICT (key) DO NOTHING`;
    if (claimed.count > 0) return undefined;
    const [row] = await sql`SELECT request, order_id FROM idempotency_keys WHERE key = ${key}`;
    return { request: requestOf(row.request), orderId: row.order_id };
  }

  /** Deletes a batch of expired keys, at most once a minute per replica. */
  async #pruneExpired(): Promise<void> {
    const now = this.now();
    if (now - this.#prunedAt < PRUNE_EVERY_MS) return;
    this.#prunedAt = now;
    await this.db.sql`DELETE FROM idempotency_keys WHERE key IN (
      SELECT key FROM idempotency_keys WHERE expires_at < ${now} LIMIT ${PRUNE_BATCH})`;
  }
}

function replay(
  key: string,
  previous: PlaceOrderRequest,
  order: Order,
  request: PlaceOrderRequest,
): Placement {
  return sameRequest(previous, request)
    ? { kind: "replayed", order }
    : { kind: "conflict", key, orderId: order.order_id, previous };
}

/** The lines of an order's row; null in rows from before carts, whose one line is item and qty. */
function linesOf(row: Row): OrderLine[] {
  return row.lines == null ? [{ item: row.item, qty: row.qty }] : JSON.parse(row.lines);
}

function toOrder(row: Row): Order {
  const lines = linesOf(row);
  const order: Order = {
    order_id: row.order_id,
    ...withLines(lines),
    student_id: row.student_id,
    status: row.status,
    created_at: (row.created_at as Date).toISOString(),
    updated_at: (row.updated_at as Date).toISOString(),
  };
  if (row.reason != null) order.reason = row.reason;
  if (row.reserved_at != null) order.reserved_at = (row.reserved_at as Date).toISOString();
  if (row.ready_at != null) order.ready_at = (row.ready_at as Date).toISOString();
  if (row.cancelled_by != null) order.cancelled_by = row.cancelled_by;
  if (row.stock_released_at != null) {
    order.stock_released_at = (row.stock_released_at as Date).toISOString();
  }
  return order;
}
