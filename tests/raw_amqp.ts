/**
 * A foreign publisher for the suites: speaks just enough AMQP 0-9-1 over a plain socket to
 * publish one message whose properties are raw bytes, such as a `message_id` that is not UTF-8
 * or headers larger than any client library would encode. The broker passes them on as they are.
 * @module
 */

/** Properties as raw bytes; each is sent exactly as given. */
export interface RawProperties {
  messageId?: Uint8Array;
  correlationId?: Uint8Array;
  type?: Uint8Array;
  /** Header name to value, each value sent as a long string of these bytes. */
  headers?: Record<string, Uint8Array>;
}

const FRAME_METHOD = 1;
const FRAME_HEADER = 2;
const FRAME_BODY = 3;
const FRAME_END = 0xce;

/**
 * Publishes `body` to `exchange` with `routingKey` over a connection of its own, persistent and
 * confirmed: it resolves once the broker acknowledged the message and the connection closed.
 */
export async function publishRaw(
  url: string,
  exchange: string,
  routingKey: string,
  body: Uint8Array,
  properties: RawProperties = {},
): Promise<void> {
  const { hostname, port, username, password } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port || 5672) });
  const frames = new FrameReader(conn);
  try {
    await write(conn, new TextEncoder().encode("AMQP\x00\x00\x09\x01"));
    await frames.expectMethod(10, 10); // connection.start
    const user = decodeURIComponent(username || "guest");
    const secret = decodeURIComponent(password || "guest");
    await sendMethod(conn, 0, 10, 11, [
      table({}),
      shortstr(text("PLAIN")),
      longstr(text(`\0${user}\0${secret}`)),
      shortstr(text("en_US")),
    ]);
    const tune = await frames.expectMethod(10, 30);
    const tuned = new DataView(tune.buffer, tune.byteOffset);
    const frameMax = tuned.getUint32(2);
    // tune-ok: the broker's own limits, no heartbeat (the connection lives for a moment)
    await sendMethod(conn, 0, 10, 31, [u16(tuned.getUint16(0)), u32(frameMax), u16(0)]);
    await sendMethod(conn, 0, 10, 40, [shortstr(text("/")), shortstr(new Uint8Array()), u8(0)]);
    await frames.expectMethod(10, 41); // connection.open-ok
    await sendMethod(conn, 1, 20, 10, [shortstr(new Uint8Array())]); // channel.open
    await frames.expectMethod(20, 11);
    await sendMethod(conn, 1, 85, 10, [u8(0)]); // confirm.select
    await frames.expectMethod(85, 11);
    await sendMethod(conn, 1, 60, 40, [
      u16(0),
      shortstr(text(exchange)),
      shortstr(text(routingKey)),
      u8(0),
    ]);
    await sendFrame(conn, FRAME_HEADER, 1, contentHeader(body.byteLength, properties));
    for (let at = 0; at < body.byteLength; at += frameMax - 8) {
      await sendFrame(conn, FRAME_BODY, 1, body.subarray(at, at + frameMax - 8));
    }
    await frames.expectMethod(60, 80); // basic.ack
    await sendMethod(conn, 0, 10, 50, [u16(200), shortstr(text("done")), u16(0), u16(0)]);
    await frames.expectMethod(10, 51); // connection.close-ok
  } finally {
    conn.close();
  }
}

/** Property flags in the order AMQP lists them, highest bit first. */
function contentHeader(bodySize: number, p: RawProperties): Uint8Array {
  let flags = 0;
  const fields: Uint8Array[] = [];
  if (p.headers) {
    flags |= 1 << 13;
    fields.push(table(p.headers));
  }
  flags |= 1 << 12; // delivery-mode
  fields.push(u8(2));
  if (p.correlationId) {
    flags |= 1 << 10;
    fields.push(shortstr(p.correlationId));
  }
  if (p.messageId) {
    flags |= 1 << 7;
    fields.push(shortstr(p.messageId));
  }
  if (p.type) {
    flags |= 1 << 5;
    fields.push(shortstr(p.type));
  }
  const size = new Uint8Array(8);
  new DataView(size.buffer).setBigUint64(0, BigInt(bodySize));
  return concat([u16(60), u16(0), size, u16(flags), ...fields]);
}

function table(entries: Record<string, Uint8Array>): Uint8Array {
  const parts = Object.entries(entries).flatMap(([key, value]) => [
    shortstr(text(key)),
    text("S"),
    longstr(value),
  ]);
  const content = concat(parts);
  return concat([u32(content.byteLength), content]);
}

class FrameReader {
  #buffer: Uint8Array = new Uint8Array(0);
  constructor(private readonly conn: Deno.Conn) {}

  /** Reads frames until a method frame arrives; throws unless it is `classId.methodId`. */
  async expectMethod(classId: number, methodId: number): Promise<Uint8Array> {
    while (true) {
      const { type, payload } = await this.#next();
      if (type !== FRAME_METHOD) continue;
      const view = new DataView(payload.buffer, payload.byteOffset);
      const got = [view.getUint16(0), view.getUint16(2)];
      if (got[0] === classId && got[1] === methodId) return payload.subarray(4);
      const reason = got[0] === 10 && got[1] === 50 || got[0] === 20 && got[1] === 40
        ? `: ${new TextDecoder().decode(payload.subarray(7, 7 + payload[6]))}`
        : "";
      throw new Error(`Expected method ${classId}.${methodId}, got ${got.join(".")}${reason}`);
    }
  }

  async #next(): Promise<{ type: number; payload: Uint8Array }> {
    while (true) {
      if (this.#buffer.byteLength >= 7) {
        const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset);
        const size = view.getUint32(3);
        if (this.#buffer.byteLength >= size + 8) {
          const frame = { type: this.#buffer[0], payload: this.#buffer.slice(7, 7 + size) };
          this.#buffer = this.#buffer.slice(size + 8);
          return frame;
        }
      }
      const chunk = new Uint8Array(65536);
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error("The broker closed the connection");
      this.#buffer = concat([this.#buffer, chunk.subarray(0, n)]);
    }
  }
}

function sendMethod(
  conn: Deno.Conn,
  channel: number,
  classId: number,
  methodId: number,
  args: Uint8Array[],
): Promise<void> {
  return sendFrame(conn, FRAME_METHOD, channel, concat([u16(classId), u16(methodId), ...args]));
}

function sendFrame(conn: Deno.Conn, type: number, channel: number, payload: Uint8Array) {
  return write(
    conn,
    concat([u8(type), u16(channel), u32(payload.byteLength), payload, u8(FRAME_END)]),
  );
}

async function write(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.byteLength;) at += await conn.write(bytes.subarray(at));
}

function shortstr(bytes: Uint8Array): Uint8Array {
  if (bytes.byteLength > 255) throw new RangeError("A short string holds at most 255 bytes");
  return concat([u8(bytes.byteLength), bytes]);
}

function longstr(bytes: Uint8Array): Uint8Array {
  return concat([u32(bytes.byteLength), bytes]);
}

function text(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

function u8(n: number): Uint8Array {
  return Uint8Array.of(n);
}

function u16(n: number): Uint8Array {
  return Uint8Array.of(n >> 8, n & 0xff);
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}
