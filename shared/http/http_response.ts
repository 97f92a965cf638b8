/**
 * HTTP responses: JSON bodies, a JSON array streamed page by page, and {@linkcode HttpError},
 * the error a handler throws to answer with a status and the fields at fault.
 * @module
 */

/** Options of an {@linkcode HttpError}: its cause, and headers its response carries. */
export interface HttpErrorOptions extends ErrorOptions {
  /** Headers of the response, e.g. `WWW-Authenticate` or `Retry-After`. */
  headers?: Record<string, string>;
}

/** An error that becomes an HTTP response with `status` and a JSON body. */
export class HttpError extends Error {
  /** Headers the response carries besides its content type. */
  readonly headers?: Record<string, string>;

  /**
   * An error answered with `status` and `{error: message, details}`.
   * @param status HTTP status to answer with
   * @param message the `error` field of the body
   * @param details optional machine-readable details, e.g. `[{field, message}]`
   */
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
    options?: HttpErrorOptions,
  ) {
    super(message, options);
    this.name = "HttpError";
    this.headers = options?.headers;
  }
}

/** A JSON response. */
export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * A JSON array response streamed page by page, so that listing many rows never builds the
 * whole array (or its text) in memory. The first page is read before answering: a store that
 * fails at once gives a 500, not a 200 with a cut-off body.
 */
export async function jsonArray<T>(pages: Iterable<T[]> | AsyncIterable<T[]>): Promise<Response> {
  const iterator = Symbol.asyncIterator in pages
    ? pages[Symbol.asyncIterator]()
    : (pages as Iterable<T[]>)[Symbol.iterator]();
  const encoder = new TextEncoder();
  let first = true;
  let ahead: IteratorResult<T[]> | undefined = await iterator.next();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      // Each pull must enqueue something, or the stream stops asking: skip empty pages.
      while (true) {
        const next = ahead ?? await iterator.next();
        ahead = undefined;
        if (next.done) {
          controller.enqueue(encoder.encode(first ? "[]" : "]"));
          controller.close();
          return;
        }
        if (next.value.length === 0) continue;
        const items = next.value.map((item) => JSON.stringify(item)).join(",");
        controller.enqueue(encoder.encode((first ? "[" : ",") + items));
        first = false;
        return;
      }
    },
    async cancel() {
      await iterator.return?.();
    },
  });
  return new Response(body, { headers: { "content-type": "application/json" } });
}
