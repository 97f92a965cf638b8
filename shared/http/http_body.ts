/**
 * Reading a request body: JSON, capped in size, within a deadline, and with a clear 4xx (or a
 * 503 when the connection goes) instead of a 500 for whatever a client sends.
 * @module
 */
import { HttpError } from "./http_response.ts";
import { Deadline, EXPIRED, type Expired } from "../runtime/deadline.ts";

/** Largest request body accepted, in bytes. */
const MAX_BODY_BYTES = 64 * 1024;

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
  const deadline = new Deadline(timeoutMs);
  try {
    if (req.headers.has("content-length")) return await readDeclared(req, deadline, timeoutMs);
    return await readChunked(req, maxBytes, deadline, timeoutMs);
  } finally {
    deadline.clear();
  }
}

async function readDeclared(
  req: Request,
  deadline: Deadline,
  timeoutMs: number,
): Promise<Uint8Array> {
  const reading = req.bytes();
  let body: Uint8Array | Expired;
  try {
    body = await deadline.race(reading);
  } catch (err) {
    throw bodyLost(err);
  }
  if (body === EXPIRED) {
    // The read fails once the connection goes; nobody waits for it any more.
    reading.catch(() => {});
    throw bodyLate(timeoutMs, "part of the body arrived");
  }
  return body;
}

async function readChunked(
  req: Request,
  maxBytes: number,
  deadline: Deadline,
  timeoutMs: number,
): Promise<Uint8Array> {
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      let next: ReadableStreamReadResult<Uint8Array> | Expired;
      try {
        next = await deadline.race(reader.read());
      } catch (err) {
        throw bodyLost(err);
      }
      if (next === EXPIRED) throw bodyLate(timeoutMs, `${size} bytes arrived`);
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
