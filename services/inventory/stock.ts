/**
 * The inventory's decisions, apart from where stock is kept: which menu items an order means,
 * whether every line of it can be had (all of them or none), what a cancel gives back, and the
 * events that announce each.
 * @module
 */
import {
  envelopeFor,
  fitReason,
  InvalidMessage,
  type InventoryFailed,
  type InventoryReleased,
  type InventoryReserved,
  type OrderCancelled,
  type OrderLine,
  orderLineFields,
  type OrderPlaced,
  type OutgoingEvent,
  type ReservedLine,
} from "@campus/shared/events";
import { closestItems, menuKey } from "@campus/shared/menu";

/** Stock of one menu item. */
export interface StockLevel {
  /** The item, in the menu's spelling. */
  item: string;
  /** How many are in stock. */
  quantity: number;
}

/** The order's lines as announced: `order_id`, `student_id`, `lines`, and a one-line order flat. */
type OrderBody = Pick<OrderPlaced, "order_id" | "student_id">;

/**
 * What was decided on an order, and whether it was decided before (`duplicate`): `RESERVED`
 * (every line), `FAILED` (none), or `CANCELLED` (it was cancelled before inventory decided, so
 * its decision takes nothing and announces nothing).
 */
export type Reservation =
  & (
    | { outcome: "RESERVED"; event: InventoryReserved }
    | { outcome: "FAILED"; event: InventoryFailed }
    | { outcome: "CANCELLED"; event: OrderPlaced }
  )
  & { duplicate: boolean };

/** An order as a batch is readied for it (`prepareReservations`): its id and item names. */
export interface OrderItems {
  order_id: string;
  items: string[];
}

/** A line of an order as inventory reads it: merged with its namesakes, in the menu's spelling. */
export interface WantedLine extends OrderLine {
  /** False when no menu item has the name: the item is kept as sent. */
  onMenu: boolean;
}

/**
 * The menu as orders name it: every item in stock, matched trimmed and without regard to case,
 * in the menu's own spelling.
 * @example
 * ```ts
 * import { MenuItems } from "./stock.ts";
 * const menu = new MenuItems(["Coffee", "Tea"]);
 * menu.find(" coffee "); // "Coffee"
 * menu.notOnMenu("Cofee"); // '"Cofee" is not on the menu; did you mean "Coffee"?'
 * ```
 */
export class MenuItems {
  #items: string[] = [];
  /** Menu spelling of each item by {@linkcode menuKey}: "coffee" finds "Coffee". */
  #spelling = new Map<string, string>();

  /**
   * The menu of `items`.
   * @param items every item in stock
   */
  constructor(items: readonly string[]) {
    this.update(items);
  }

  /** Takes the items in stock anew (another replica may have added some). */
  update(items: readonly string[]): void {
    this.#items = [...items];
    this.#spelling.clear();
    for (const item of items) {
      if (!this.#spelling.has(menuKey(item))) this.#spelling.set(menuKey(item), item);
    }
  }

  /** The item `name` means, in the menu's spelling; exact matches first. */
  find(name: string): string | undefined {
    return this.#items.includes(name) ? name : this.#spelling.get(menuKey(name));
  }

  /** Why `item` fails: names a few close matches, never the whole menu (it must fit the event). */
  notOnMenu(item: string): string {
    const close = closestItems(item, this.#items).map((c) => `"${c}"`);
    const hint = close.length === 0
      ? ""
      : `; did you mean ${
        close.length === 1 ? close[0] : `${close.slice(0, -1).join(", ")} or ${close.at(-1)}`
      }?`;
    return fitReason(`"${item}" is not on the menu${hint}`);
  }
}

/**
 * The lines of an order as stock is taken for them: lines naming the same item (by
 * {@linkcode menuKey}) merged into the first, their quantities summed, each in the menu's
 * spelling when it is on the menu. Throws {@linkcode InvalidMessage}, naming the later line,
 * when merged lines ask for more of an item than one order may have (the order service refuses
 * such a cart; a hand-published one is dead-lettered, then set aside).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MenuItems, wantedLines } from "./stock.ts";
 * const menu = new MenuItems(["Coffee", "Soup"]);
 * const lines = [{ item: "soup", qty: 1 }, { item: "Coffee", qty: 2 }, { item: "SOUP ", qty: 3 }];
 * assert.deepEqual(wantedLines(lines, menu), [
 *   { item: "Soup", qty: 4, onMenu: true },
 *   { item: "Coffee", qty: 2, onMenu: true },
 * ]);
 * ```
 */
export function wantedLines(lines: readonly OrderLine[], menu: MenuItems): WantedLine[] {
  const merged = new Map<string, WantedLine>();
  lines.forEach(({ item, qty }, i) => {
    const found = menu.find(item);
    const key = found ?? menuKey(item);
    const line = merged.get(key);
    if (!line) {
      merged.set(key, { item: found ?? item, qty, onMenu: found !== undefined });
      return;
    }
    line.qty += qty;
    const checked = orderLineFields.qty.safeParse(line.qty);
    if (!checked.success) {
      throw new InvalidMessage(
        `lines[${i}].qty: ${
          checked.error.issues[0].message
        } (lines of "${line.item}" add up to ${line.qty})`,
      );
    }
  });
  return [...merged.values()];
}

/**
 * The items of `lines` in the one order every replica takes their stock rows in: byte order of
 * the name, as PostgreSQL's `COLLATE "C"` sorts UTF-8 text.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lockOrder } from "./stock.ts";
 * assert.deepEqual(lockOrder(["Tea", "Coffee", "Tea"]), ["Coffee", "Tea"]);
 * ```
 */
export function lockOrder(items: Iterable<string>): string[] {
  const encoder = new TextEncoder();
  const bytes = (item: string) => encoder.encode(item);
  return [...new Set(items)].sort((a, b) => compareBytes(bytes(a), bytes(b)));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/**
 * The decision on `order`: every line of `wanted` reserved, when each is on the menu and
 * `inStock` (the stock of its items, read under lock) has enough of it; refused otherwise,
 * naming every short line. A one-line order is refused in the words it always was.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decide, MenuItems, wantedLines } from "./stock.ts";
 * const menu = new MenuItems(["Burger", "Soup"]);
 * const order = {
 *   order_id: "o1",
 *   student_id: "S1",
 *   lines: [{ item: "Burger", qty: 2 }, { item: "Soup", qty: 5 }],
 * };
 * const stock = new Map([["Burger", 9], ["Soup", 3]]);
 * const refusal = decide(order, wantedLines(order.lines, menu), stock, menu);
 * assert.equal(refusal.outcome === "FAILED" && refusal.event.reason, "Soup: 5 requested, 3 left");
 * ```
 */
export function decide(
  order: OrderBody,
  wanted: readonly WantedLine[],
  inStock: ReadonlyMap<string, number>,
  menu: MenuItems,
): Reservation {
  const lines = wanted.map(({ item, qty }) => ({ item, qty }));
  const short = wanted.flatMap(({ item, qty, onMenu }) => {
    if (!onMenu) return [menu.notOnMenu(item)];
    const left = inStock.get(item) ?? 0;
    if (left >= qty) return [];
    return [wanted.length === 1 ? notEnough(item, qty, left) : shortLine(item, qty, left)];
  });
  if (short.length > 0) return refused({ ...order, lines }, short.join("; "));
  return reserved(
    order,
    wanted.map(({ item, qty }) => ({ item, qty, remaining: (inStock.get(item) ?? 0) - qty })),
  );
}

/** The event body of an order's `lines`: a one-line order carries its line flat as well. */
function withLines<L extends OrderLine>(order: OrderBody, lines: L[]) {
  const { order_id, student_id } = order;
  return lines.length === 1
    ? { order_id, student_id, lines, item: lines[0].item, qty: lines[0].qty }
    : { order_id, student_id, lines };
}

/**
 * A new reservation of every line of an order, each with the stock `remaining` after it.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reserved } from "./stock.ts";
 * const order = { order_id: "o1", student_id: "S1" };
 * assert.deepEqual(reserved(order, [{ item: "Coffee", qty: 2, remaining: 8 }]).event, {
 *   order_id: "o1",
 *   student_id: "S1",
 *   lines: [{ item: "Coffee", qty: 2, remaining: 8 }],
 *   item: "Coffee",
 *   qty: 2,
 *   remaining: 8,
 * });
 * ```
 */
export function reserved(order: OrderBody, lines: ReservedLine[]): Reservation {
  const event: InventoryReserved = withLines(order, lines);
  if (lines.length === 1 && lines[0].remaining !== undefined) {
    event.remaining = lines[0].remaining;
  }
  return { outcome: "RESERVED", event, duplicate: false };
}

/**
 * A new refusal of `order`, for `reason` (cut to fit the event).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notEnough, refused } from "./stock.ts";
 * const order = { order_id: "o1", lines: [{ item: "Coffee", qty: 3 }], student_id: "S1" };
 * const refusal = refused(order, notEnough("Coffee", 3, 1));
 * assert.equal(
 *   refusal.outcome === "FAILED" && refusal.event.reason,
 *   'Cannot reserve "Coffee": 3 requested, 1 in stock',
 * );
 * ```
 */
export function refused(order: OrderBody & { lines: OrderLine[] }, reason: string): Reservation {
  const lines = order.lines.map(({ item, qty }) => ({ item, qty }));
  return {
    outcome: "FAILED",
    event: { ...withLines(order, lines), reason: fitReason(reason) },
    duplicate: false,
  };
}

/**
 * Why `qty` of `item` can't be had, for a one-line order (the words clients have always read).
 * @example
 * ```ts
 * import { notEnough } from "./stock.ts";
 * notEnough("Pizza", 3, 2); // 'Cannot reserve "Pizza": 3 requested, 2 in stock'
 * ```
 */
export function notEnough(item: string, qty: number, inStock: number): string {
  return `Cannot reserve "${item}": ${qty} requested, ${inStock} in stock`;
}

/**
 * Why one line of a cart can't be had; a refused cart names every such line.
 * @example
 * ```ts
 * import { shortLine } from "./stock.ts";
 * shortLine("Soup", 5, 3); // "Soup: 5 requested, 3 left"
 * ```
 */
export function shortLine(item: string, qty: number, left: number): string {
  return `${item}: ${qty} requested, ${left} left`;
}

/**
 * The event that announces a decision: `InventoryReserved` or `InventoryFailed`; none for an
 * order cancelled before it was decided (the cancel announced its release).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { announcement, reserved } from "./stock.ts";
 * const order = { order_id: "o1", student_id: "S1" };
 * const event = announcement(reserved(order, [{ item: "Tea", qty: 1, remaining: 4 }]));
 * assert.equal(event?.type, "InventoryReserved");
 * ```
 */
export function announcement(reservation: Reservation): OutgoingEvent | undefined {
  switch (reservation.outcome) {
    case "RESERVED":
      return envelopeFor("InventoryReserved", reservation.event);
    case "FAILED":
      return envelopeFor("InventoryFailed", reservation.event);
    case "CANCELLED":
      return undefined;
  }
}

/** A decision as recorded (a row of `reservations`), and whether its stock went back. */
export interface RecordedDecision {
  /** The decision, marked `duplicate`: announced again, never decided again. */
  reservation: Reservation;
  /** When a cancel gave back its stock (or found nothing to give back); unset before. */
  releasedAt?: string;
}

/**
 * A decision as recorded before (a row of `reservations`, whichever the engine: `lines` as
 * JSON text from SQLite, an array from PostgreSQL), marked `duplicate`. Each line is rebuilt in
 * the order the decision first spelled it (`item`, `qty`, `remaining`): PostgreSQL's `jsonb`
 * keeps keys in an order of its own, and an announcement made again reads like the first.
 */
export function recordedDecision(row: Record<string, unknown>): RecordedDecision {
  const stored =
    (typeof row.lines === "string" ? JSON.parse(row.lines) : row.lines) as ReservedLine[];
  const lines = stored.map(({ item, qty, remaining }): ReservedLine =>
    remaining === undefined ? { item, qty } : { item, qty, remaining }
  );
  const order = { order_id: String(row.order_id), student_id: String(row.student_id) };
  const decision = row.outcome === "RESERVED"
    ? reserved(order, lines)
    : row.outcome === "FAILED"
    ? refused({ ...order, lines }, String(row.reason))
    : { outcome: "CANCELLED" as const, event: withLines(order, lines), duplicate: false };
  const releasedAt = row.released_at == null
    ? undefined
    : row.released_at instanceof Date
    ? row.released_at.toISOString()
    : String(row.released_at);
  return { reservation: { ...decision, duplicate: true }, releasedAt };
}

/** What a cancel does to the order's stock, and the `InventoryReleased` that says so. */
export interface Release {
  /**
   * The lines whose stock goes back now; empty when nothing was reserved or it went back
   * before.
   */
  giveBack: OrderLine[];
  /**
   * True when inventory had not decided on the order: a `CANCELLED` decision is recorded, so
   * that its `order.placed`, whenever it comes, takes nothing.
   */
  recordCancelled: boolean;
  /** True when this cancel was handled before: nothing changes, the release is announced again. */
  duplicate: boolean;
  /** The body of the `InventoryReleased` to publish. */
  event: InventoryReleased;
}

/**
 * What cancelling an order does, given its recorded decision: a reservation not yet released
 * gives every line back; an order not yet decided records a decision that takes nothing; a
 * refused order has nothing to give back; a cancel seen before changes nothing.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cancellation } from "./stock.ts";
 * const cancel = {
 *   order_id: "o1",
 *   student_id: "S1",
 *   lines: [{ item: "Tea", qty: 1 }],
 *   cancelled_by: "student" as const,
 *   previous: "PLACED" as const,
 * };
 * const before = cancellation(cancel, undefined);
 * assert.equal(before.recordCancelled, true);
 * assert.equal(before.event.nothing_reserved, true);
 * ```
 */
export function cancellation(
  cancel: OrderCancelled,
  recorded: RecordedDecision | undefined,
): Release {
  if (!recorded) {
    return {
      giveBack: [],
      recordCancelled: true,
      duplicate: false,
      event: { ...withLines(cancel, cancel.lines), nothing_reserved: true },
    };
  }
  const { reservation, releasedAt } = recorded;
  const lines = reservation.event.lines.map(({ item, qty }) => ({ item, qty }));
  const body = withLines(reservation.event, lines);
  const duplicate = releasedAt !== undefined || reservation.outcome === "CANCELLED";
  if (reservation.outcome === "RESERVED") {
    return { giveBack: duplicate ? [] : lines, recordCancelled: false, duplicate, event: body };
  }
  return {
    giveBack: [],
    recordCancelled: false,
    duplicate,
    event: { ...body, nothing_reserved: true },
  };
}

/**
 * The `InventoryReleased` that announces a cancel's release.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cancellation, releaseAnnouncement } from "./stock.ts";
 * const cancel = {
 *   order_id: "o1",
 *   student_id: "S1",
 *   lines: [{ item: "Tea", qty: 1 }],
 *   cancelled_by: "staff" as const,
 *   previous: "PLACED" as const,
 * };
 * const event = releaseAnnouncement(cancellation(cancel, undefined));
 * assert.equal(event.routingKey, "inventory.released");
 * ```
 */
export function releaseAnnouncement(release: Release): OutgoingEvent {
  return envelopeFor("InventoryReleased", release.event);
}
