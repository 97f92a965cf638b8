/**
 * How long a service's database work has been waiting: transactions still under way, and work
 * set aside because a row it needs stays locked by another transaction and tried again later.
 * `/ready` says the database is stalled once the longest of these waits passes `DB_STALL_MS`;
 * a single lock wait is cut short by `lock_timeout`, so only the time since the work first
 * waited, carried across its attempts, shows a row held for long.
 * @module
 */

interface HeldBack {
  /** When the work first waited (ms since the epoch). */
  since: number;
  /** After this, the work is assumed done elsewhere (another replica took it) and forgotten. */
  expires: number;
}

/** Smallest number of set-aside entries at which expired ones are swept out. */
const SWEEP_AT = 1024;

/** The database work of one process that is waiting, and since when. */
export class DatabaseWaits {
  #running = new Map<symbol, number>();
  #held = new Map<string, HeldBack>();
  #sweepAt = SWEEP_AT;

  /**
   * Nothing waiting yet.
   * @param now the clock (ms since the epoch), replaceable in tests
   */
  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Notes that a transaction starts; call the function it returns when it ends, however it
   * ends.
   */
  begin(): () => void {
    const token = Symbol();
    this.#running.set(token, this.now());
    return () => this.#running.delete(token);
  }

  /**
   * Notes that the work `key` (a message id) was set aside because a lock it needs is held,
   * waiting since `since`, and is expected back within `expectedWithinMs`; unless it is noted
   * again or {@linkcode DatabaseWaits.done} by then, it is forgotten.
   */
  heldBack(key: string, since: number, expectedWithinMs: number): void {
    this.#held.set(key, { since, expires: this.now() + expectedWithinMs });
    if (this.#held.size >= this.#sweepAt) {
      this.#sweep();
      // Sweeping again only once the entries have doubled keeps each note O(1) on average.
      this.#sweepAt = Math.max(SWEEP_AT, 2 * this.#held.size);
    }
  }

  /** The work `key` went through (or failed for another reason): it waits no more. */
  done(key: string): void {
    this.#held.delete(key);
  }

  /** Pieces of work noted as set aside for a lock (overdue ones included until swept out). */
  get heldBackCount(): number {
    return this.#held.size;
  }

  /** How long the longest-waiting work has waited, in ms; 0 when nothing waits. */
  longestWaitMs(): number {
    const now = this.now();
    this.#sweep();
    let oldest = now;
    // Insertion order is start order: the first running transaction is the oldest.
    for (const started of this.#running.values()) {
      oldest = started;
      break;
    }
    for (const { since } of this.#held.values()) oldest = Math.min(oldest, since);
    return Math.max(0, now - oldest);
  }

  #sweep(): void {
    const now = this.now();
    for (const [key, { expires }] of this.#held) {
      if (expires <= now) this.#held.delete(key);
    }
  }
}
