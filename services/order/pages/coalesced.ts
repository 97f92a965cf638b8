/**
 * Work that many changes ask for and one run satisfies (building the board, reading stock): it
 * runs one at a time, a request during a run makes one more run after it, and requests for
 * "soon" within a delay make one run between them. Nobody awaits a run asked for "soon": its
 * failure goes to `onError`, never up as an unhandled rejection that would end the process.
 * @module
 */

/** Runs `work` coalesced: see the module. */
export class Coalesced<T> {
  #running: Promise<T> | undefined;
  #again = false;
  #soon: ReturnType<typeof setTimeout> | undefined;

  /**
   * Runs of `work`, none running yet.
   * @param work the work; a failed run fails the callers of {@linkcode Coalesced.run} waiting on it
   * @param onError hears the failure of a run nobody awaits (one asked for with `soon`)
   */
  constructor(
    private readonly work: () => Promise<T>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Runs the work now, or once more after the run under way; resolves with the last result. */
  run(): Promise<T> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    return this.#running = (async () => {
      try {
        let result: T;
        do {
          this.#again = false;
          result = await this.work();
        } while (this.#again);
        return result;
      } finally {
        this.#running = undefined;
      }
    })();
  }

  /** Runs the work after `delayMs`, once for however many requests arrive meanwhile. */
  soon(delayMs: number): void {
    if (this.#soon !== undefined) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      this.run().catch(this.onError);
    }, delayMs);
  }

  /** Cancels a run asked for with {@linkcode Coalesced.soon}. */
  cancel(): void {
    clearTimeout(this.#soon);
    this.#soon = undefined;
  }
}
