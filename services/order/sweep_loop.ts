/**
 * The background loop of the order service's sweepers (late outcomes, pickup expiry): one sweep
 * every interval, the next at once after a full batch, and a failed sweep logged once per cause
 * and tried again with backoff. Nothing it does can end the process.
 * @module
 */
import { Backoff } from "@campus/shared/backoff";
import { errorText, type Logger } from "@campus/shared/log";

/** What a {@linkcode SweepLoop} runs. */
export interface SweepLoopOptions {
  /** One sweep; resolves with how many rows it handled. */
  sweep(): Promise<number>;
  /** Time between sweeps, in ms. */
  intervalMs: number;
  /** Rows one sweep takes at most: a full batch is followed by the next sweep at once. */
  batchSize: number;
  /** Where a failed sweep is reported. */
  log: Logger;
  /** What the log says when a sweep fails, e.g. "cannot expire orders, retrying". */
  failed: string;
  /** What the log says when sweeps work again after failing. */
  recovered: string;
}

/** A background loop of sweeps. */
export class SweepLoop {
  #stopped = false;
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #lastFailure = "";
  #backoff: Backoff;

  /** A loop of `options.sweep`; {@linkcode SweepLoop.start} starts it. */
  constructor(private readonly options: SweepLoopOptions) {
    const interval = options.intervalMs;
    this.#backoff = new Backoff({ initialMs: interval, maxMs: Math.max(interval, 30_000) });
  }

  /** Starts the loop; its first sweep comes at once (rows left from before a restart). */
  start(): void {
    if (this.#stopped) return;
    this.#running ??= this.#loop();
  }

  /** Stops the loop; resolves once a sweep under way has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#running;
  }

  async #loop(): Promise<void> {
    const { intervalMs, batchSize, log } = this.options;
    while (!this.#stopped) {
      let wait = intervalMs;
      try {
        const handled = await this.options.sweep();
        if (this.#lastFailure) log.info(this.options.recovered);
        this.#lastFailure = "";
        this.#backoff.reset();
        if (handled >= batchSize) wait = 0;
      } catch (err) {
        // Said once per cause, not on every retry while it lasts.
        const failure = errorText(err);
        if (failure !== this.#lastFailure) log.error(this.options.failed, { error: failure });
        this.#lastFailure = failure;
        wait = this.#backoff.next();
      }
      await this.#sleep(wait);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.#wake = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}
