/**
 * Racing work against a timer: what the broker session, the HTTP body reader, `/ready` and the
 * shutdown all do to bound a wait on something that may never answer. The timer is cleared
 * however the race ends, so no stray timer keeps a process or a test alive.
 * @module
 */

/** What a race resolves to when the time ran out first. */
export const EXPIRED: unique symbol = Symbol("expired");

/** The type of {@linkcode EXPIRED}. */
export type Expired = typeof EXPIRED;

/**
 * A timer that several waits can race against (a body read chunk by chunk within one deadline).
 * Call {@linkcode Deadline.clear} when done.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Deadline, EXPIRED } from "./deadline.ts";
 *
 * const deadline = new Deadline(1_000);
 * assert.equal(await deadline.race(Promise.resolve("first")), "first");
 * deadline.clear();
 * assert.equal(await new Deadline(0).race(new Promise(() => {})), EXPIRED);
 * ```
 */
export class Deadline {
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Resolves to {@linkcode EXPIRED} once `ms` passed, unless cleared before. */
  readonly expired: Promise<Expired>;

  /** Starts the timer. */
  constructor(ms: number) {
    this.expired = new Promise((resolve) => this.#timer = setTimeout(() => resolve(EXPIRED), ms));
  }

  /** `work`'s value, or {@linkcode EXPIRED} if the deadline passes first; rejects if it does. */
  race<T>(work: Promise<T>): Promise<T | Expired> {
    return Promise.race([work, this.expired]);
  }

  /** Stops the timer; a race still pending waits for its work alone. */
  clear(): void {
    clearTimeout(this.#timer);
  }
}

/**
 * `work`'s value, or {@linkcode EXPIRED} once `ms` passed without one; rejects when `work`
 * does. A late failure of `work` is handled here too: the race listens to it.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { beforeDeadline, EXPIRED } from "./deadline.ts";
 *
 * assert.equal(await beforeDeadline(Promise.resolve(1), 1_000), 1);
 * assert.equal(await beforeDeadline(new Promise(() => {}), 1), EXPIRED);
 * ```
 */
export async function beforeDeadline<T>(work: Promise<T>, ms: number): Promise<T | Expired> {
  const deadline = new Deadline(ms);
  try {
    return await deadline.race(work);
  } finally {
    deadline.clear();
  }
}
