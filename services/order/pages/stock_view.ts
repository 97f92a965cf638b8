/**
 * The menu with the stock left, as the pages show it, read from the inventory service's
 * `GET /inventory`. The order service asks on the pages' behalf, so a browser talks to one
 * origin only. While inventory cannot be reached, the last levels read (or, before any, the
 * configured menu without levels) stay on show, marked as such. A read never fails: what goes
 * wrong is shown and logged, and the next read (on the next change, or the board's next
 * refresh) tries again.
 * @module
 */
import { errorText, type Logger } from "@campus/shared/log";
import { Coalesced } from "./coalesced.ts";

/** One item on the menu; `quantity` is null while its stock is unknown. */
export interface MenuItem {
  /** The item, in the menu's spelling. */
  item: string;
  /** How many are in stock; null while unknown. */
  quantity: number | null;
}

/** The menu as the pages show it. */
export interface Menu {
  /** Every item, in menu order. */
  items: MenuItem[];
  /** False when the levels could not be read just now; `error` says why. */
  available: boolean;
  /** Why the levels could not be read. */
  error?: string;
}

/** Options of {@linkcode StockView}. */
export interface StockViewOptions {
  /** Base URL of the inventory service. */
  inventoryUrl: string;
  /** The configured menu, shown without levels until inventory first answers. */
  menu: Readonly<Record<string, number>>;
  /** Where failed reads are reported. */
  log: Logger;
  /** Hears every change of the menu. */
  onChange: (menu: Menu) => void;
  /** Time limit of one read. */
  timeoutMs?: number;
  /** The `Authorization` header to send, while authentication is on. */
  authorization?: () => Promise<string>;
  /** How inventory is asked (tests replace it). */
  fetch?: typeof fetch;
}

/** The latest menu and stock levels. */
export class StockView {
  #menu: Menu;
  #reads: Coalesced<void>;
  #readAt = 0;

  /** The configured menu, without levels until inventory first answers. */
  constructor(private readonly options: StockViewOptions) {
    this.#reads = new Coalesced(
      async () => this.#update(await this.#read()),
      (err) => this.#notUpdated(err),
    );
    this.#menu = {
      items: Object.keys(options.menu).map((item) => ({ item, quantity: null })),
      available: false,
      error: "stock not read yet",
    };
  }

  /** The menu as last read. */
  get current(): Menu {
    return this.#menu;
  }

  /** Milliseconds since the levels were last read successfully (Infinity before that). */
  get age(): number {
    return this.#readAt === 0 ? Infinity : Date.now() - this.#readAt;
  }

  /**
   * Reads the levels now; a read asked for during another runs once that one ends. Never
   * rejects: a failure is logged, and the menu keeps what it showed.
   */
  refresh(): Promise<void> {
    return this.#reads.run().catch((err) => this.#notUpdated(err));
  }

  /** Reads the levels shortly, once for however many changes arrive together. */
  refreshSoon(delayMs = 100): void {
    this.#reads.soon(delayMs);
  }

  /** Cancels a pending read. */
  stop(): void {
    this.#reads.cancel();
  }

  async #read(): Promise<Menu> {
    const { inventoryUrl, timeoutMs = 2_000, fetch: get = fetch, authorization } = this.options;
    try {
      const res = await get(`${inventoryUrl}/inventory`, {
        signal: AbortSignal.timeout(timeoutMs),
        headers: authorization ? { authorization: await authorization() } : {},
      });
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`inventory answered ${res.status}`);
      }
      const levels = await res.json() as { item: string; quantity: number }[];
      this.#readAt = Date.now();
      return {
        items: levels.map(({ item, quantity }) => ({ item, quantity })),
        available: true,
      };
    } catch (err) {
      // fetch says only "fetch failed"; its cause says why (connection refused, …).
      const cause = err instanceof Error && err.cause ? ` (${errorText(err.cause)})` : "";
      const error = `inventory unreachable: ${errorText(err)}${cause}`;
      this.options.log.debug("stock not read", { error });
      return { items: this.#menu.items, available: false, error };
    }
  }

  /** Only a listener of {@linkcode StockViewOptions.onChange} can fail a read. */
  #notUpdated(err: unknown): void {
    this.options.log.error("stock view not updated", { error: errorText(err) });
  }

  #update(next: Menu): void {
    const before = this.#menu;
    this.#menu = next;
    // A failure keeps its first reason: a new error text alone is no news for the pages.
    const same = before.available === next.available &&
      JSON.stringify(before.items) === JSON.stringify(next.items);
    if (!same) this.options.onChange(next);
  }
}
