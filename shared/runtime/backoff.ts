/**
 * Capped exponential backoff with jitter, for reconnecting: each delay doubles up to a ceiling,
 * and a random half of it spreads the reconnects of many clients after a broker restart.
 * @module
 */

/** Bounds of a {@linkcode Backoff}. */
export interface BackoffBounds {
  /** Ceiling of the first delay. */
  initialMs: number;
  /** Largest ceiling, however many attempts failed. */
  maxMs: number;
}

/** The delays between attempts at something that keeps failing. */
export class Backoff {
  #attempt = 0;

  /**
   * Starts at the first delay.
   * @param random a source of numbers in [0, 1), replaceable in tests
   */
  constructor(
    private readonly bounds: BackoffBounds,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * The delay before the next attempt: between half and all of `initialMs * 2^n`, capped at
   * `maxMs`, where n counts the delays handed out since the last {@linkcode Backoff.reset}.
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Backoff } from "./backoff.ts";
   *
   * const backoff = new Backoff({ initialMs: 100, maxMs: 5000 });
   * const first = backoff.next();
   * assert.ok(first >= 50 && first <= 100);
   * const second = backoff.next();
   * assert.ok(second >= 100 && second <= 200);
   * ```
   */
  next(): number {
    const { initialMs, maxMs } = this.bounds;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.#attempt++, 30));
    return ceiling / 2 + this.random() * ceiling / 2;
  }

  /** Starts again from the first delay, after an attempt succeeded. */
  reset(): void {
    this.#attempt = 0;
  }
}
