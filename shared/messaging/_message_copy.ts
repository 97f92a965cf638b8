/**
 * The properties of a retry or dead-letter copy. A delivery may come from any client, and what
 * it carries must not stop its copy from being encoded: short strings stay valid UTF-8 within
 * 255 bytes, and the headers stay well under the 64 KB the AMQP client encodes them into. What
 * had to go is dropped and named in a header of the copy.
 * @module
 */
import type { Delivery, MessageProperties } from "./message_bus.ts";

import { CLEANED_HEADER } from "./contract.ts";

export { CLEANED_HEADER };

/** Most encoded header bytes a copy carries. */
export const MAX_COPY_HEADER_BYTES = 16 * 1024;

/** Longest text of a header the consumer adds itself (a reason, an error). */
const MAX_OWN_HEADER_CHARS = 1000;

/** Longest invalid short string kept in a header of its own. */
const MAX_KEPT_ORIGINAL_BYTES = 1024;

const SHORT_STRINGS = [
  ["messageId", "message_id"],
  ["type", "type"],
  ["correlationId", "correlation_id"],
] as const;

const encoder = new TextEncoder();
const byteLength = (text: string) => encoder.encode(text).byteLength;

/**
 * The properties for a copy of `delivery`: its message id, type, correlation id and headers,
 * with `own` headers on top, each cleaned so the copy can be encoded.
 */
export function copyProperties(
  delivery: Delivery,
  own: Record<string, unknown>,
): MessageProperties {
  const properties: MessageProperties = {};
  const notes: string[] = [];
  const kept: Record<string, unknown> = {};
  for (const [field, name] of SHORT_STRINGS) {
    const value = delivery[field];
    if (value === undefined) continue;
    const problem = shortStringProblem(value);
    if (!problem) {
      properties[field] = value;
      continue;
    }
    notes.push(`${name} (${problem})`);
    // A long but valid value is still worth keeping; one that was not UTF-8 lost its bytes.
    if (!value.includes("\uFFFD") && byteLength(value) <= MAX_KEPT_ORIGINAL_BYTES) {
      kept[`x-original-${name.replace("_", "-")}`] = value;
    }
  }

  const ownHeaders: Record<string, unknown> = { ...kept };
  for (const [key, value] of Object.entries(own)) {
    ownHeaders[key] = typeof value === "string" ? clip(value, MAX_OWN_HEADER_CHARS) : value;
  }
  // Room for the note naming what was dropped, which has a bounded length too.
  const room = MAX_COPY_HEADER_BYTES - (tableSize(ownHeaders) ?? 0) - MAX_OWN_HEADER_CHARS * 4;
  const foreign: [string, unknown, number][] = [];
  for (const [key, value] of Object.entries(delivery.headers)) {
    if (key in ownHeaders || value === undefined) continue;
    const size = entrySize(key, value);
    if (size === undefined) notes.push(`header ${quote(key)} (cannot be encoded)`);
    else foreign.push([key, value, size]);
  }
  // Over budget, the largest headers go first: one oversized header costs only itself.
  const dropped = new Set<string>();
  let total = foreign.reduce((n, [, , size]) => n + size, 0);
  for (const [key, , size] of [...foreign].sort((a, b) => b[2] - a[2])) {
    if (total <= room) break;
    dropped.add(key);
    total -= size;
    notes.push(`header ${quote(key)} (${size} bytes)`);
  }

  const headers: Record<string, unknown> = {};
  for (const [key, value] of foreign) if (!dropped.has(key)) headers[key] = value;
  Object.assign(headers, ownHeaders);
  if (notes.length > 0) headers[CLEANED_HEADER] = clip(notes.join("; "), MAX_OWN_HEADER_CHARS);
  properties.headers = headers;
  return properties;
}

/** Why `value` cannot be an AMQP short string, or undefined when it can. */
function shortStringProblem(value: string): string | undefined {
  // amqplib decodes bytes that are not UTF-8 to U+FFFD, three bytes each when encoded again.
  if (value.includes("\uFFFD")) return "not valid UTF-8";
  const bytes = byteLength(value);
  return bytes > 255 ? `${bytes} bytes, more than 255` : undefined;
}

/** Encoded bytes of one table entry, or undefined when it cannot be encoded. */
function entrySize(key: string, value: unknown): number | undefined {
  const keyBytes = byteLength(key);
  if (keyBytes > 255) return undefined;
  const size = valueSize(value);
  return size === undefined ? undefined : 1 + keyBytes + size;
}

/** Encoded bytes of a field table, or undefined when some entry cannot be encoded. */
function tableSize(table: object): number | undefined {
  let size = 4;
  for (const [key, value] of Object.entries(table)) {
    if (value === undefined) continue; // amqplib leaves it out
    const entry = entrySize(key, value);
    if (entry === undefined) return undefined;
    size += entry;
  }
  return size;
}

/**
 * Encoded bytes of a field value as amqplib writes it (at most: numbers count as 8 bytes), or
 * undefined for what it would refuse or alter.
 */
function valueSize(value: unknown): number | undefined {
  switch (typeof value) {
    case "string":
      return 5 + byteLength(value);
    case "number":
      // A 64-bit integer beyond 2^53 was rounded when decoded and may not encode again.
      return Number.isInteger(value) && !Number.isSafeInteger(value) ? undefined : 9;
    case "boolean":
      return 2;
    case "object": {
      if (value === null) return 1;
      if (value instanceof Uint8Array) return 5 + value.byteLength;
      if (Array.isArray(value)) {
        let size = 5;
        for (const item of value) {
          const itemSize = valueSize(item);
          if (itemSize === undefined) return undefined;
          size += itemSize;
        }
        return size;
      }
      // amqplib reads an object with a "!" key as a typed value; it decodes timestamps and
      // decimals that way, and anything else would not encode.
      if (Object.hasOwn(value, "!")) {
        const type = (value as Record<string, unknown>)["!"];
        return type === "timestamp" ? 9 : type === "decimal" ? 6 : undefined;
      }
      const size = tableSize(value);
      return size === undefined ? undefined : 1 + size;
    }
    default:
      return undefined;
  }
}

function clip(text: string, chars: number): string {
  return text.length <= chars ? text : `${text.slice(0, chars - 1)}…`;
}

function quote(key: string): string {
  return JSON.stringify(clip(key, 60));
}
