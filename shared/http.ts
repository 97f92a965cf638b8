/**
 * Small HTTP helpers: JSON responses, a size-capped JSON body reader and a `URLPattern` router
 * that answers 404 and 405 itself and never lets a client mistake become a 500.
 * @module
 */
import type { Access, Caller } from "./caller.ts";
import type { Logger } from "./log.ts";
import { type ServiceMetrics, UNMATCHED_ROUTE } from "./metrics.ts";
import { nameRequestSpan } from "./tracing.ts";

/** Largest request body accepted, in bytes. */
const MAX_BODY_BYTES = 64 * 1024;

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

/** Options of {@linkcode readJson}. */
export interface ReadJsonOptions {
  /**
   * Deadline for the whole body, from the moment reading starts: a client that sends half a
   * body and stops gets 408 after this long instead of holding the request open for ever.
   */
  timeoutMs: number;
  /** Largest body accepted; larger ones get 413. */
  maxBytes?: number;
}

/**
 * Reads a JSON body; throws {@linkcode HttpError} 413 when it is larger than `maxBytes`, 408 when
 * it does not arrive within `timeoutMs`, 503 when the connection ends under the read (the client
 * left, or the server is stopping: never a 500), and 400 when it is not JSON.
 */
export async function readJson(
  req: Request,
  { timeoutMs, maxBytes = MAX_BODY_BYTES }: ReadJsonOptions,
): Promise<unknown> {
  if (Number(req.headers.get("content-length")) > maxBytes) throw tooLarge(maxBytes);
  const text = UTF8.decode(await readBody(req, maxBytes, timeoutMs));
  if (text.trim() === "") {
    throw new HttpError(400, "Request body is empty; send a JSON object", [
      { field: "(body)", message: "expected a JSON object" },
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "Request body is not valid JSON", [
      { field: "(body)", message: (err as Error).message },
    ]);
  }
}

const UTF8 = new TextDecoder();

/**
 * The body within the deadline. A body of declared length is read whole, the fast way (no
 * JavaScript stream); a chunked one is counted as it arrives, so it cannot outgrow `maxBytes`.
 */
async function readBody(req: Request, maxBytes: number, timeoutMs: number): Promise<Uint8Array> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"expired">((resolve) => {
    timer = setTimeout(() => resolve("expired"), timeoutMs);
  });
  try {
    if (req.headers.has("content-length")) return await readDeclared(req, expired, timeoutMs);
    return await readChunked(req, maxBytes, expired, timeoutMs);
  } finally {
    clearTimeout(timer);
  }
}

async function readDeclared(
  req: Request,
  expired: Promise<"expired">,
  timeoutMs: number,
): Promise<Uint8Array> {
  const reading = req.bytes();
  let body: Uint8Array | "expired";
  try {
    body = await Promise.race([reading, expired]);
  } catch (err) {
    throw bodyLost(err);
  }
  if (body === "expired") {
    // The read fails once the connection goes; nobody waits for it any more.
    reading.catch(() => {});
    throw bodyLate(timeoutMs, "part of the body arrived");
  }
  return body;
}

async function readChunked(
  req: Request,
  maxBytes: number,
  expired: Promise<"expired">,
  timeoutMs: number,
): Promise<Uint8Array> {
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      let next: ReadableStreamReadResult<Uint8Array> | "expired";
      try {
        next = await Promise.race([reader.read(), expired]);
      } catch (err) {
        throw bodyLost(err);
      }
      if (next === "expired") throw bodyLate(timeoutMs, `${size} bytes arrived`);
      if (next.done) break;
      size += next.value.byteLength;
      if (size > maxBytes) throw tooLarge(maxBytes);
      chunks.push(next.value);
    }
  } finally {
    // Released, not cancelled: cancelling an unfinished body leaves its connection open and the
    // server's graceful shutdown waiting on it. A read still pending fails, and is ignored.
    reader.releaseLock();
  }
  return concat(chunks, size);
}

/** Deno ends a body still unread when the server shuts down; a client may also hang up. */
function bodyLost(cause: unknown): HttpError {
  return new HttpError(
    503,
    "The request body could not be read: the connection closed or the service is " +
      "stopping; send the request again",
    undefined,
    { cause },
  );
}

function bodyLate(timeoutMs: number, arrived: string): HttpError {
  return new HttpError(408, `Request body not received within ${timeoutMs} ms`, [
    { field: "(body)", message: `${arrived} before the time limit` },
  ]);
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, `Request body is larger than ${maxBytes} bytes`);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

/** Path parameters matched by a route, e.g. `{ id: "..." }`. */
export type Params = Record<string, string | undefined>;

/**
 * Handles one matched request; `caller` is who sent it, when authentication is on and the
 * route is not public.
 */
export type RouteHandler = (
  req: Request,
  params: Params,
  url: URL,
  caller?: Caller,
) => Response | Promise<Response>;

/** A method, a `URLPattern` pathname and its handler. */
export interface Route {
  /** HTTP method it answers. */
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** `URLPattern` pathname, e.g. `/orders/:id`. */
  path: string;
  /** What answers a matching request. */
  handler: RouteHandler;
  /** Who may call it when authentication is on; `signed_in` unless given. */
  access?: Access;
}

/**
 * Admits a request to a route of `access`, or throws the {@linkcode HttpError} that refuses it
 * (401, 403); returns the caller, if it is known. `Authenticator.admit` in `auth.ts` is one.
 */
export type RouteGuard = (req: Request, access: Access) => Promise<Caller | undefined>;

/**
 * Builds a request handler from routes. Unknown paths answer 404, known paths with another
 * method 405 with `Allow`, {@linkcode HttpError}s their own status, anything else 500 (logged).
 * With `metrics`, each request's time is recorded under its route's pattern (`/orders/:id`), or
 * `unmatched` for a path no route knows. With `guard` (authentication on), each request must
 * pass it for its route's `access` before the handler runs.
 */
export function createRouter(
  routes: readonly Route[],
  log: Logger,
  metrics?: ServiceMetrics,
  guard?: RouteGuard,
): (req: Request) => Promise<Response> {
  const answer = routeRequest(routes, log, guard);
  if (!metrics) return async (req) => (await answer(req)).response;
  return async (req) => {
    const started = performance.now();
    const { response, route } = await answer(req);
    metrics.request(req.method, route, response.status, (performance.now() - started) / 1000);
    return response;
  };
}

/** The response to a request, and the pattern of the route that answered it. */
function routeRequest(
  routes: readonly Route[],
  log: Logger,
  guard: RouteGuard | undefined,
): (req: Request) => Promise<{ response: Response; route: string }> {
  const compiled = routes.map((r) => ({ ...r, pattern: new URLPattern({ pathname: r.path }) }));
  // Fixed paths are looked up directly; patterns are tried only for the others (URLPattern
  // matching is the costliest step of a small request).
  const fixed = Map.groupBy(compiled.filter((r) => !/[:*(]/.test(r.path)), (r) => r.path);
  const patterned = compiled.filter((r) => !fixed.has(r.path));
  return async (req) => {
    const url = new URL(req.url);
    const onPath = fixed.get(url.pathname) ??
      patterned.filter((r) => r.pattern.test({ pathname: url.pathname }));
    if (onPath.length === 0) {
      return {
        response: json({ error: `Not found: ${url.pathname}` }, 404),
        route: UNMATCHED_ROUTE,
      };
    }
    const route = onPath.find((r) => r.method === req.method) ??
      (req.method === "HEAD" ? onPath.find((r) => r.method === "GET") : undefined);
    if (!route) {
      const allow = [...new Set(onPath.map((r) => r.method))].join(", ");
      return {
        response: json({ error: `Method ${req.method} not allowed on ${url.pathname}` }, 405, {
          allow,
        }),
        route: onPath[0].path,
      };
    }
    nameRequestSpan(req.method, route.path);
    const params = fixed.has(route.path)
      ? {}
      : route.pattern.exec({ pathname: url.pathname })?.pathname.groups ?? {};
    try {
      const caller = guard ? await guard(req, route.access ?? "signed_in") : undefined;
      return { response: await route.handler(req, params, url, caller), route: route.path };
    } catch (err) {
      if (err instanceof HttpError) {
        const response = json(
          err.details === undefined ? { error: err.message } : {
            error: err.message,
            details: err.details,
          },
          err.status,
          err.headers,
        );
        return { response, route: route.path };
      }
      log.error("request failed", { method: req.method, path: url.pathname, error: String(err) });
      return { response: json({ error: "Internal error" }, 500), route: route.path };
    }
  };
}
