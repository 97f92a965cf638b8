/**
 * Server-Sent Events responses, and the set of open streams: how many one student and the whole
 * service may hold, how far each may fall behind its client, and ending them all at once on
 * shutdown instead of waiting for browsers that never hang up.
 * @module
 */
import { HttpError } from "@campus/shared/http";
import type { Logger } from "@campus/shared/log";

/** Sends one event on a stream: its name and its data, written as JSON. */
export type SendEvent = (event: string, data: unknown) => void;

/**
 * Sets up a stream once it is open: sends the first events, subscribes to later ones, and
 * returns what to do when the stream ends (the client left, or the server is stopping).
 */
export type StreamSetup = (send: SendEvent) => () => void;

/**
 * Unsent bytes a stream may hold by default. The sockets' kernel buffers take the first
 * hundreds of kB a slow client leaves unread; this is what the service itself keeps on top,
 * so 1000 stalled streams cost it at most about 64 MB.
 */
export const MAX_UNSENT_BYTES = 64 * 1024;

/** Seconds a refused client is told to wait (`Retry-After`) before it asks for a stream again. */
export const STREAM_RETRY_AFTER_S = 5;

const encoder = new TextEncoder();
/** A comment line: keeps a quiet stream open through proxies that drop idle connections. */
const KEEP_ALIVE = encoder.encode(": keep-alive\n\n");

/** Options of {@linkcode EventStreams}. */
export interface EventStreamsOptions {
  /**
   * Interval of the comment lines that keep an idle stream open through proxies that drop quiet
   * connections.
   */
  heartbeatMs?: number;
  /** How long a browser waits before it connects again after losing the stream. */
  retryMs?: number;
  /**
   * Bytes a stream may hold that its client has not taken yet. An event that would go past it
   * closes the stream instead: the client fell too far behind, and its browser reconnects and
   * starts again from a fresh snapshot. The events a stream opens with, and an event sent while
   * nothing waits, always go, however large.
   */
  maxUnsentBytes?: number;
  /** Open streams of one student at most (`STREAMS_PER_STUDENT`); more get `429`. */
  perStudent?: number;
  /** Open streams at most (`MAX_STREAMS`); more get `503`. */
  max?: number;
  /** Where a stream closed for falling behind is logged. */
  log?: Logger;
}

/** What a stream is opened with. */
export interface OpenOptions {
  /**
   * When the caller's token expires (ms since the epoch): the stream ends then, and the
   * browser's reconnect must show a token that is still valid.
   */
  endsAt?: number;
  /** The student whose orders the stream follows; counted against `perStudent`. */
  student?: string;
}

/** The open event streams of a service. */
export class EventStreams {
  #open = new Set<() => void>();
  /** Open streams by student. */
  #ofStudent = new Map<string, number>();
  #closed = false;
  readonly #heartbeatMs: number;
  readonly #retryMs: number;
  readonly #maxUnsentBytes: number;
  readonly #perStudent: number;
  readonly #max: number;
  readonly #log?: Logger;
  readonly #retryLine: Uint8Array;
  /**
   * Events encoded in this turn of the event loop, by their data object: an update fanned out to
   * every stream is encoded once, and the streams' queues share its bytes, so streams that lag
   * behind on the same menu hold one copy of it, not one each. Forgotten at the next microtask,
   * so data changed later is encoded afresh.
   */
  #encoded: WeakMap<object, Map<string, Uint8Array>> | undefined;

  /** No stream open yet; the limits and timings of the streams to come. */
  constructor(
    {
      heartbeatMs = 15_000,
      retryMs = 2_000,
      maxUnsentBytes = MAX_UNSENT_BYTES,
      perStudent = 5,
      max = 1000,
      log,
    }: EventStreamsOptions = {},
  ) {
    this.#heartbeatMs = heartbeatMs;
    this.#retryMs = retryMs;
    this.#maxUnsentBytes = maxUnsentBytes;
    this.#perStudent = perStudent;
    this.#max = max;
    this.#log = log;
    this.#retryLine = encoder.encode(`retry: ${retryMs}\n\n`);
  }

  /** How many streams are open. */
  get size(): number {
    return this.#open.size;
  }

  /** How many streams of `student` are open. */
  openFor(student: string): number {
    return this.#ofStudent.get(student) ?? 0;
  }

  /**
   * A `text/event-stream` response whose events `setup` sends. Throws {@linkcode HttpError}
   * `429` when `student` already has `perStudent` streams open, `503` when the service has
   * `max`, both with `Retry-After`. The stream's slot is given back however it ends: the client
   * hangs up, the token expires, it falls too far behind, or the service stops.
   */
  open(setup: StreamSetup, { endsAt, student }: OpenOptions = {}): Response {
    if (this.#closed) {
      return new Response("stopping\n", { status: 503, headers: { "retry-after": "2" } });
    }
    this.#admit(student);
    const maxUnsent = this.#maxUnsentBytes;
    let end = () => {};
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        let ended = false;
        // What setup sends is the snapshot the stream starts from: it always goes, however
        // large, or a long menu would close every stream as it opens.
        let opening = true;
        // desiredSize is the high-water mark less what the client has not taken yet.
        const unsentBytes = () => maxUnsent - (controller.desiredSize ?? 0);
        const write = (chunk: Uint8Array) => {
          if (ended) return;
          const unsent = unsentBytes();
          if (!opening && unsent > 0 && unsent + chunk.byteLength > maxUnsent) {
            return fallBehind(unsent);
          }
          controller.enqueue(chunk);
        };
        const heartbeat = setInterval(() => write(KEEP_ALIVE), this.#heartbeatMs);
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
          this.#release(student);
          teardown();
        };
        // Erroring, not closing, while data waits: controller.close() would keep the stream,
        // and its connection, until the client took what is queued, which a stalled client never
        // does. Erroring drops the connection and the queue; the browser reconnects.
        const drop = (unsent: number) =>
          controller.error(new Error(`The client left ${unsent} bytes unread`));
        const close = () => {
          if (ended) return;
          end();
          const unsent = unsentBytes();
          if (unsent > 0) return drop(unsent);
          try {
            controller.close();
          } catch {
            // already closed by the client
          }
        };
        const fallBehind = (unsent: number) => {
          end();
          this.#log?.warn("event stream closed: its client fell behind", {
            unsent_bytes: unsent,
            max_unsent_bytes: maxUnsent,
          });
          drop(unsent);
        };
        this.#open.add(close);
        try {
          write(this.#retryLine);
          teardown = setup((event, data) => write(this.#encode(event, data)));
        } catch (err) {
          end();
          throw err;
        } finally {
          opening = false;
        }
      },
      cancel: () => end(),
    }, new ByteLengthQueuingStrategy({ highWaterMark: maxUnsent }));
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

  /** The bytes of one event: its name and its data as JSON. */
  #encode(event: string, data: unknown): Uint8Array {
    const text = () => encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (data === null || typeof data !== "object") return text();
    if (!this.#encoded) {
      this.#encoded = new WeakMap();
      queueMicrotask(() => this.#encoded = undefined);
    }
    let byName = this.#encoded.get(data);
    if (!byName) this.#encoded.set(data, byName = new Map());
    let bytes = byName.get(event);
    if (!bytes) byName.set(event, bytes = text());
    return bytes;
  }

  /** Takes a slot for a new stream of `student`, or throws the answer that refuses it. */
  #admit(student: string | undefined): void {
    const retryAfter = { headers: { "retry-after": String(STREAM_RETRY_AFTER_S) } };
    if (student !== undefined && this.openFor(student) >= this.#perStudent) {
      const message = `at most ${this.#perStudent} event streams per student are open at ` +
        `once; close one (another tab or device) or try again in ${STREAM_RETRY_AFTER_S} s`;
      throw new HttpError(
        429,
        `Too many event streams for student "${student}": ${message}`,
        [{ field: "student_id", message }],
        retryAfter,
      );
    }
    if (this.#open.size >= this.#max) {
      throw new HttpError(
        503,
        `Too many event streams: this service holds at most ${this.#max}; try again in ` +
          `${STREAM_RETRY_AFTER_S} s`,
        undefined,
        retryAfter,
      );
    }
    if (student !== undefined) this.#ofStudent.set(student, this.openFor(student) + 1);
  }

  #release(student: string | undefined): void {
    if (student === undefined) return;
    const left = this.openFor(student) - 1;
    if (left > 0) this.#ofStudent.set(student, left);
    else this.#ofStudent.delete(student);
  }
}
