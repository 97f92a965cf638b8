/**
 * The `Idempotency-Key`s clients sent with `POST /order`, each with the request it came with and
 * the order it made, kept at least a day so that a retried request finds its order again.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { PlaceOrderRequest } from "./place_order_request.ts";

/** How long a key is kept at least. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;

/** Expired keys are pruned at most this often, a bounded batch at a time. */
export const PRUNE_EVERY_MS = 60 * 1000;
/** Most expired keys one prune deletes. */
export const PRUNE_BATCH = 1000;

/** A key seen before: the request it came with and the order it made. */
export interface RememberedKey {
  /** The request the key came with. */
  request: PlaceOrderRequest;
  /** The order it made. */
  orderId: string;
}

/**
 * The order service's idempotency keys in SQLite; written in the transaction that stores the
 * order.
 */
export class IdempotencyKeys {
  #find: StatementSync;
  #insert: StatementSync;
  #prune: StatementSync;
  #prunedAt = -Infinity;

  /**
   * The keys of `db`, whose `idempotency_keys` table the order store's migrations made.
   * @param now the clock, in ms since the epoch (tests move it)
   */
  constructor(db: DatabaseSync, private readonly now: () => number = Date.now) {
    this.#find = db.prepare(`SELECT request, order_id FROM idempotency_keys WHERE key = ?`);
    this.#insert = db.prepare(`INSERT INTO idempotency_keys (key, request, order_id, expires_at)
      VALUES (?, ?, ?, ?)`);
    this.#prune = db.prepare(`DELETE FROM idempotency_keys WHERE rowid IN
      (SELECT rowid FROM idempotency_keys WHERE expires_at < ? LIMIT ${PRUNE_BATCH})`);
  }

  /** What `key` was used for, or undefined for a new key. Kept until pruned, past its day. */
  find(key: string): RememberedKey | undefined {
    const row = this.#find.get(key);
    if (!row) return undefined;
    return { request: requestOf(String(row.request)), orderId: String(row.order_id) };
  }

  /** Records that `key` made order `orderId` from `request`; call it in the order's transaction. */
  remember(key: string, request: PlaceOrderRequest, orderId: string): void {
    this.#insert.run(key, canonical(request), orderId, this.now() + IDEMPOTENCY_KEY_TTL_MS);
  }

  /**
   * Deletes a batch of expired keys, at most once a minute, so the table stays about a day of
   * keys long without a job of its own. Returns how many were deleted.
   */
  pruneExpired(): number {
    const now = this.now();
    if (now - this.#prunedAt < PRUNE_EVERY_MS) return 0;
    this.#prunedAt = now;
    return Number(this.#prune.run(now).changes);
  }
}

/**
 * The request in a fixed form, so equal requests are equal text: what an idempotency key
 * remembers.
 * @example
 * ```ts
 * import { canonical } from "./idempotency_keys.ts";
 * canonical({ item: "Tea", qty: 1, student_id: "S1", lines: [{ item: "Tea", qty: 1 }] });
 * ```
 */
export function canonical(request: PlaceOrderRequest): string {
  const { item, qty, student_id, lines } = request;
  return JSON.stringify({
    item,
    qty,
    student_id,
    lines: lines.map(({ item, qty }) => ({ item, qty })),
  });
}

/**
 * A request an idempotency key remembered, read back: one remembered before carts (no
 * `lines`) gets its single line.
 * @example
 * ```ts
 * import { requestOf } from "./idempotency_keys.ts";
 * requestOf('{"item":"Tea","qty":1,"student_id":"S1"}').lines; // [{ item: "Tea", qty: 1 }]
 * ```
 */
export function requestOf(text: string): PlaceOrderRequest {
  const stored = JSON.parse(text) as PlaceOrderRequest;
  if (Array.isArray(stored.lines)) return stored;
  return { ...stored, lines: [{ item: stored.item!, qty: stored.qty! }] };
}
