/**
 * Server-Sent Events responses, and the set of open streams, so that a shutdown can end them
 * all at once instead of waiting for browsers that never hang up.
 * @module
 */

/** Sends one event on a stream: its name and its data, written as JSON. */
export type SendEvent = (event: string, data: unknown) => void;

/**
 * Sets up a stream once it is open: sends the first events, subscribes to later ones, and
 * returns what to do when the stream ends (the client left, or the server is stopping).
 */
export type StreamSetup = (send: SendEvent) => () => void;

/** Options of {@linkcode EventStreams}. */
export interface EventStreamsOptions {
  /**
   * Interval of the comment lines that keep an idle stream open through proxies that drop quiet
   * connections.
   */
  heartbeatMs?: number;
  /** How long a browser waits before it connects again after losing the stream. */
  retryMs?: number;
}

/** The open event streams of a service. */
export class EventStreams {
  #open = new Set<() => void>();
  #closed = false;
  readonly #heartbeatMs: number;
  readonly #retryMs: number;

  constructor({ heartbeatMs = 15_000, retryMs = 2_000 }: EventStreamsOptions = {}) {
    this.#heartbeatMs = heartbeatMs;
    this.#retryMs = retryMs;
  }

  /** How many streams are open. */
  get size(): number {
    return this.#open.size;
  }

  /**
   * A `text/event-stream` response whose events `setup` sends. With `endsAt` (ms since the
   * epoch: when the caller's token expires) the stream ends then, and the browser's reconnect
   * must show a token that is still valid.
   */
  open(setup: StreamSetup, { endsAt }: { endsAt?: number } = {}): Response {
    if (this.#closed) {
      return new Response("stopping\n", { status: 503, headers: { "retry-after": "2" } });
    }
    const encoder = new TextEncoder();
    let end = () => {};
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        let ended = false;
        const write = (text: string) => {
          if (!ended) controller.enqueue(encoder.encode(text));
        };
        const heartbeat = setInterval(() => write(": keep-alive\n\n"), this.#heartbeatMs);
        // A timer cannot wait longer than 2^31 - 1 ms; the stream then ends early, not never.
        const expiry = endsAt === undefined
          ? undefined
          : setTimeout(() => close(), Math.min(Math.max(0, endsAt - Date.now()), 2 ** 31 - 1));
        let teardown = () => {};
        end = () => {
          if (ended) return;
          ended = true;
          clearInterval(heartbeat);
          clearTimeout(expiry);
          this.#open.delete(close);
          teardown();
        };
        const close = () => {
          end();
          try {
            controller.close();
          } catch {
            // already closed by the client
          }
        };
        this.#open.add(close);
        write(`retry: ${this.#retryMs}\n\n`);
        teardown = setup((event, data) =>
          write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
        );
      },
      cancel: () => end(),
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        // Tells reverse proxies (nginx) not to buffer the stream.
        "x-accel-buffering": "no",
      },
    });
  }

  /** Ends every open stream and refuses new ones (503): the service is stopping. */
  closeAll(): void {
    this.#closed = true;
    for (const close of [...this.#open]) close();
  }
}
