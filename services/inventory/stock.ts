/**
 * The inventory's decisions, apart from where stock is kept: which menu item an order means,
 * a reservation or a refusal of an order, and the event that announces either.
 * @module
 */
import {
  envelopeFor,
  fitReason,
  type InventoryResult,
  type OrderPlaced,
  type OutgoingEvent,
} from "@campus/shared/events";
import { closestItems, menuKey } from "@campus/shared/menu";

/** Stock of one menu item. */
export interface StockLevel {
  /** The item, in the menu's spelling. */
  item: string;
  /** How many are in stock. */
  quantity: number;
}

/** What was decided on an order, and whether it was decided before (`duplicate`). */
export type Reservation = InventoryResult & { duplicate: boolean };

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
 * A new reservation of the order's `qty` of `item`, `remaining` left after it.
 * @example
 * ```ts
 * import { reserved } from "./stock.ts";
 * const order = { order_id: "o1", item: "coffee", qty: 2, student_id: "S1" };
 * reserved(order, "Coffee", 8).event; // { order_id: "o1", item: "Coffee", qty: 2, student_id: "S1", remaining: 8 }
 * ```
 */
export function reserved(order: OrderPlaced, item: string, remaining: number): Reservation {
  const { order_id, student_id } = order;
  const { qty } = order.lines[0];
  return {
    outcome: "RESERVED",
    event: { order_id, student_id, lines: [{ item, qty, remaining }], item, qty, remaining },
    duplicate: false,
  };
}

/**
 * A new refusal of `order`, for `reason`.
 * @example
 * ```ts
 * import { notEnough, refused } from "./stock.ts";
 * const order = { order_id: "o1", item: "Coffee", qty: 3, student_id: "S1" };
 * const refusal = refused(order, notEnough("Coffee", 3, 1));
 * refusal.outcome === "FAILED" && refusal.event.reason;
 * // 'Cannot reserve "Coffee": 3 requested, 1 in stock'
 * ```
 */
export function refused(order: OrderPlaced, reason: string): Reservation {
  const { order_id, student_id, lines } = order;
  return {
    outcome: "FAILED",
    event: { order_id, student_id, lines, item: lines[0].item, qty: lines[0].qty, reason },
    duplicate: false,
  };
}

/**
 * Why `qty` of `item` can't be had.
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
 * The event that announces a decision: `InventoryReserved` or `InventoryFailed`.
 * @example
 * ```ts
 * import { announcement, reserved } from "./stock.ts";
 * const order = { order_id: "o1", item: "Tea", qty: 1, student_id: "S1" };
 * announcement(reserved(order, "Tea", 4)).type; // "InventoryReserved"
 * ```
 */
export function announcement(reservation: Reservation): OutgoingEvent {
  return reservation.outcome === "RESERVED"
    ? envelopeFor("InventoryReserved", reservation.event)
    : envelopeFor("InventoryFailed", reservation.event);
}

/**
 * A decision as recorded before (a row of `reservations`, whichever the engine), marked
 * `duplicate`: announced again, never decided again.
 */
export function recordedReservation(row: Record<string, unknown>): Reservation {
  const item = String(row.item);
  const qty = Number(row.qty);
  const base = {
    order_id: String(row.order_id),
    student_id: String(row.student_id),
    lines: [{ item, qty }],
    item,
    qty,
  };
  const remaining = row.remaining == null ? {} : { remaining: Number(row.remaining) };
  return row.outcome === "RESERVED"
    ? {
      outcome: "RESERVED",
      event: { ...base, lines: [{ item, qty, ...remaining }], ...remaining },
      duplicate: true,
    }
    : { outcome: "FAILED", event: { ...base, reason: String(row.reason) }, duplicate: true };
}
