/**
 * The limit on orders per student (`ORDER_RATE_LIMIT` a minute while authentication is on):
 * a sliding window per student, exact, in this process's memory. Each replica counts its own
 * orders, so behind a load balancer a student may place up to the limit on every replica.
 * @module
 */

/** Whether an order may go ahead, and if not, how long until it may. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

/** Options of {@linkcode OrderRateLimit}. */
export interface OrderRateLimitOptions {
  /** Orders allowed per student within any window. */
  limit: number;
  /** Length of the window. */
  windowMs?: number;
  /** The clock, in milliseconds; tests move it by hand. */
  now?: () => number;
}

/** The times of a student's latest orders, as a ring: `next` is the oldest once it is full. */
interface Window {
  times: number[];
  next: number;
}

/** Counts each student's orders over the last window, and refuses those over the limit. */
export class OrderRateLimit {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #students = new Map<string, Window>();
  #sweptAt: number;

  /** A limit of `limit` orders per student per `windowMs`. */
  constructor({ limit, windowMs = 60_000, now = Date.now }: OrderRateLimitOptions) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
    this.#sweptAt = now();
  }

  /** Students with an order in the last window (those whose counts are kept). */
  get size(): number {
    return this.#students.size;
  }

  /** Counts an order of `student` if the limit allows it; otherwise says when it will. */
  take(student: string): RateDecision {
    const now = this.#now();
    this.#sweep(now);
    let window = this.#students.get(student);
    if (!window) {
      window = { times: [], next: 0 };
      this.#students.set(student, window);
    }
    const { times } = window;
    if (times.length < this.#limit) {
      times.push(now);
      return { allowed: true };
    }
    const oldest = times[window.next];
    const retryAfterMs = oldest + this.#windowMs - now;
    if (retryAfterMs > 0) return { allowed: false, retryAfterMs };
    times[window.next] = now;
    window.next = (window.next + 1) % this.#limit;
    return { allowed: true };
  }

  /** Forgets, once a window, the students with no order in the last window. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < this.#windowMs) return;
    this.#sweptAt = now;
    for (const [student, { times, next }] of this.#students) {
      const newest = times[(next + times.length - 1) % times.length];
      if (now - newest >= this.#windowMs) this.#students.delete(student);
    }
  }
}
