/**
 * Transactional outbox: events are written in the same transaction as the business change
 * ({@linkcode OutboxStore}), and a relay publishes them over confirms, deleting each only after
 * the broker confirmed it. A crash anywhere leaves either nothing or a row that will be sent.
 * Adding a row wakes the relay once it is committed, so no writer can forget to.
 * @module
 */
import type { MessageBus } from "./message_bus.ts";
import { errorText, type Logger } from "./log.ts";
import type { OutboxStore } from "./outbox_store.ts";

export type { OutboxStore };

/**
 * Publishes outbox rows oldest first, in batches, whenever a row is added or publishing may
 * work again (a reconnect, the broker unblocking it), and at least once a second: rows that
 * another replica left behind (it died) are sent by the others.
 */
export class OutboxRelay {
  #wake: (() => void) | undefined;
  #woken = false;
  #running: Promise<void> | undefined;
  #stopped = false;
  #lastFailure = "";

  /** Relays `outbox` rows to `bus`, `batchSize` rows per publish. */
  constructor(
    private readonly outbox: OutboxStore,
    private readonly bus: MessageBus,
    private readonly log: Logger,
    private readonly batchSize = 500,
  ) {
    outbox.onAdded(() => this.wake());
    bus.onWritable(() => this.wake());
  }

  /** Starts the relay loop; it drains what earlier runs left behind first. */
  start(): void {
    this.#running ??= this.#loop();
  }

  /** Tells the relay there may be something to send. */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
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
      if (this.bus.connected) {
        try {
          sent = await this.#sendBatch();
          this.#lastFailure = "";
        } catch (err) {
          // Said once per cause, not on every retry while it lasts.
          const failure = errorText(err);
          if (failure !== this.#lastFailure) {
            this.log.warn("outbox relay could not publish", { error: failure });
          }
          this.#lastFailure = failure;
        }
      }
      // A full batch means more may be waiting; otherwise sleep until woken. The timeout is a
      // safety net so that a missed wake-up delays a row, never strands it, and the way rows of
      // a replica that died reach the others.
      if (sent < this.batchSize && !this.#woken) await this.#sleep(1000);
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
