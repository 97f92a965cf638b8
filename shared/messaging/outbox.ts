/**
 * Transactional outbox: events are written in the same transaction as the business change
 * ({@linkcode OutboxStore}), and a relay publishes them over confirms, deleting each only after
 * the broker confirmed it. A crash anywhere leaves either nothing or a row that will be sent.
 * Adding a row wakes the relay once it is committed, so no writer can forget to.
 * @module
 */
import { Backoff } from "../runtime/backoff.ts";
import type { MessageBus } from "./message_bus.ts";
import { errorText, type Logger } from "../runtime/log.ts";
import type { OutboxStore } from "../outbox_store.ts";

export type { OutboxStore };

/**
 * Publishes outbox rows oldest first, in batches, whenever a row is added or publishing may
 * work again (a reconnect, the broker unblocking it), and at least once a second: rows that
 * another replica left behind (it died) are sent by the others. After a failed attempt (the
 * database or the broker refuses) it waits with backoff; only publishing working again (a
 * reconnect, an alarm cleared) cuts that wait short, not every new row.
 */
export class OutboxRelay {
  #wake: (() => void) | undefined;
  #woken = false;
  #running: Promise<void> | undefined;
  #stopped = false;
  #lastFailure = "";
  #backoff = new Backoff({ initialMs: 100, maxMs: 5_000 });
  /** Waiting after a failure: a new row does not wake the relay before its time. */
  #backingOff = false;

  /** Relays `outbox` rows to `bus`, `batchSize` rows per publish. */
  constructor(
    private readonly outbox: OutboxStore,
    private readonly bus: MessageBus,
    private readonly log: Logger,
    private readonly batchSize = 500,
  ) {
    outbox.onAdded(() => this.wake());
    bus.onWritable(() => {
      this.#backoff.reset();
      this.#backingOff = false;
      this.wake();
    });
  }

  /** Starts the relay loop; it drains what earlier runs left behind first. */
  start(): void {
    this.#running ??= this.#loop().catch((err) => {
      // Not expected (every attempt is caught): said loudly, and the relay starts over.
      this.log.error("outbox relay loop failed; starting it again", { error: errorText(err) });
      this.#running = undefined;
      if (!this.#stopped) setTimeout(() => this.start(), this.#backoff.next());
    });
  }

  /** Tells the relay there may be something to send. */
  wake(): void {
    this.#woken = true;
    if (!this.#backingOff || this.#stopped) this.#wake?.();
  }

  /** Stops after one last attempt to send what is pending; resolves when the loop ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.wake();
    await this.#running;
    if (this.bus.connected) await this.#sendBatch().catch(() => {});
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      this.#woken = false;
      let sent = 0;
      let failed = false;
      if (this.bus.connected) {
        try {
          sent = await this.#sendBatch();
          this.#lastFailure = "";
          this.#backoff.reset();
        } catch (err) {
          failed = true;
          // Said once per cause, not on every retry while it lasts.
          const failure = errorText(err);
          if (failure !== this.#lastFailure) {
            this.log.warn("outbox relay could not publish", { error: failure });
          }
          this.#lastFailure = failure;
        }
      }
      if (failed) {
        this.#backingOff = true;
        await this.#sleep(this.#backoff.next());
        this.#backingOff = false;
      } else if (sent < this.batchSize && !this.#woken) {
        // A full batch means more may be waiting; otherwise sleep until woken. The timeout is
        // a safety net so that a missed wake-up delays a row, never strands it, and the way
        // rows of a replica that died reach the others.
        await this.#sleep(1000);
      }
    }
  }

  #sendBatch(): Promise<number> {
    return this.outbox.publishOldest(this.batchSize, (events) => this.bus.publishEvents(events));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}
