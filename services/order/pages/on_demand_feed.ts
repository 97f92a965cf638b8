/**
 * The replica's event feed, listened to only while a page watches: its queue, and the delivery
 * and decoding of every result, cost the broker and the service for nothing while no stream is
 * open. The first stream starts a listener; a grace after the last one ends, it is closed, and
 * its queue goes away with its connection. At most one listener is alive at a time.
 * @module
 */
import { errorText, type Logger } from "@campus/shared/log";

/**
 * How long the feed outlives the last open stream. A reload, a browser's reconnect (2 s after
 * a lost stream) or a token renewed on the board closes a stream and opens another within
 * seconds; each would otherwise cost a new connection, queue and bindings, and a resync of every
 * page. Half a minute covers those and still lets an idle replica drop its queue soon.
 */
export const FEED_GRACE_MS = 30_000;

/** A listener to the feed: connects in the background once started, until closed. */
export interface FeedConnection {
  /** Starts connecting in the background; never throws for a broker that is away. */
  start(): void;
  /** Stops listening for good; never rejects. */
  close(): Promise<void>;
}

/** Runs `run` after `ms`; the function returned cancels it. */
export type Delay = (ms: number, run: () => void) => () => void;

/** Options of {@linkcode OnDemandFeed}. */
export interface OnDemandFeedOptions {
  /** A new listener, started each time a page watches after none did. */
  listen: () => FeedConnection;
  /** How long the listener outlives the last watcher (default {@linkcode FEED_GRACE_MS}). */
  graceMs?: number;
  /** Where a listener that fails to start or close is reported. */
  log: Logger;
  /** How the grace is waited for (default `setTimeout`); tests run it when they like. */
  delay?: Delay;
}

const timeout: Delay = (ms, run) => {
  const timer = setTimeout(run, ms);
  return () => clearTimeout(timer);
};

/** Listens to the feed while at least one page watches, and for a grace after the last. */
export class OnDemandFeed {
  #listener: FeedConnection | undefined;
  #watchers = 0;
  #cancelClose: (() => void) | undefined;
  /** The close of the previous listener: a new one starts after it, so one is alive at most. */
  #closing: Promise<void> = Promise.resolve();
  #starting = false;
  #stopped = false;
  readonly #graceMs: number;
  readonly #delay: Delay;

  /** Listens to nothing until a page watches. */
  constructor(private readonly options: OnDemandFeedOptions) {
    this.#graceMs = options.graceMs ?? FEED_GRACE_MS;
    this.#delay = options.delay ?? timeout;
  }

  /** True while a listener is alive (started and not yet closed). */
  get active(): boolean {
    return this.#listener !== undefined;
  }

  /** How many pages watch. */
  get watchers(): number {
    return this.#watchers;
  }

  /**
   * A page watches: the feed is listened to (started if it was not, kept if its close was
   * pending) until the function returned is called, and a grace after the last such call.
   */
  watch(): () => void {
    this.#watchers++;
    this.#cancelClose?.();
    this.#cancelClose = undefined;
    this.#open();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#watchers--;
      if (this.#watchers > 0 || this.#stopped || this.#cancelClose) return;
      this.#cancelClose = this.#delay(this.#graceMs, () => {
        this.#cancelClose = undefined;
        if (this.#watchers === 0) this.#shut();
      });
    };
  }

  /** Closes the listener and listens no more, whoever watches. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelClose?.();
    this.#cancelClose = undefined;
    await this.#shut();
  }

  #open(): void {
    if (this.#stopped || this.#listener || this.#starting) return;
    this.#starting = true;
    // After the previous listener's close, so that two are never alive at once.
    this.#closing.then(() => {
      this.#starting = false;
      if (this.#stopped || this.#watchers === 0 || this.#listener) return;
      this.#listener = this.options.listen();
      this.#listener.start();
    }).catch((err) => {
      // The pages still show what this replica does; the next page to watch tries again.
      this.options.log.error("cannot start the event feed", { error: errorText(err) });
      this.#shut();
    });
  }

  #shut(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener) {
      this.#closing = this.#closing.then(() => listener.close()).catch((err) => {
        this.options.log.error("cannot close the event feed", { error: errorText(err) });
      });
    }
    return this.#closing;
  }
}
