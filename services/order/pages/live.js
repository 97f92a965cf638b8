// Live updates for the pages: an EventSource on one of the order service's event streams, and
// a line of text that says whether the page is live. The browser reconnects by itself after a
// lost stream; a stream the service refused (too many open, stopping) is asked for again here,
// less and less often. Each new stream starts with a snapshot, so the page catches up.

/** First wait before asking again for a refused stream, and the longest. */
const FIRST_RETRY_MS = 2_000;
const MAX_RETRY_MS = 60_000;

/**
 * Opens the event stream at `url`, calls `handlers[name](data)` for each event, and keeps the
 * text of `status` current. Returns a function that closes the stream.
 * @param {string} url
 * @param {Record<string, (data: any) => void>} handlers
 * @param {HTMLElement} status
 * @returns {() => void}
 */
export function listen(url, handlers, status) {
  const show = (text, state) => {
    status.textContent = text;
    status.dataset.state = state;
  };
  /** @type {EventSource} */
  let source;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retry;
  let delay = FIRST_RETRY_MS;
  const open = () => {
    source = new EventSource(url);
    source.addEventListener("open", () => {
      delay = FIRST_RETRY_MS;
      show("Live: updates appear as they happen", "live");
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) {
        show("Reconnecting…", "offline");
        return;
      }
      // Refused: the browser gives up on its own, so the page asks again later.
      show(`Offline: trying again in ${Math.round(delay / 1000)} s`, "offline");
      retry = setTimeout(open, delay);
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    });
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
    }
  };
  show("Connecting…", "connecting");
  open();
  return () => {
    clearTimeout(retry);
    source.close();
  };
}

/**
 * A short local time for an ISO timestamp, e.g. "14:05".
 * @param {string | undefined} iso
 */
export function timeOf(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Marks that go with each status, beside its name: the name alone carries the meaning. */
const STATUS_MARK = {
  PLACED: "…",
  RESERVED: "✓",
  FAILED: "✗",
  CANCELLED: "⊘",
  PREPARING: "♨",
  READY: "★",
  COLLECTED: "✓",
  EXPIRED: "⌛",
};

/**
 * The badge of an order's status: its mark (hidden from screen readers) and its name.
 * @param {string} status
 * @returns {HTMLSpanElement}
 */
export function statusBadge(status) {
  const badge = document.createElement("span");
  badge.className = "status";
  badge.dataset.status = status;
  const mark = document.createElement("span");
  mark.setAttribute("aria-hidden", "true");
  mark.textContent = `${STATUS_MARK[status] ?? ""} `;
  badge.append(mark, status);
  return badge;
}

/**
 * The lines of an order: `lines` as the service sends them, or the one line of an order shown
 * before carts (`item` and `qty`).
 * @param {{ lines?: { item: string, qty: number }[], item?: string, qty?: number }} order
 * @returns {{ item: string, qty: number }[]}
 */
export function linesOf(order) {
  if (Array.isArray(order.lines) && order.lines.length > 0) return order.lines;
  return order.item === undefined ? [] : [{ item: order.item, qty: order.qty ?? 1 }];
}

/**
 * A list of an order's lines, one item each ("2 × Burger").
 * @param {{ lines?: { item: string, qty: number }[], item?: string, qty?: number }} order
 * @returns {HTMLUListElement}
 */
export function linesList(order) {
  const list = document.createElement("ul");
  list.className = "lines";
  for (const { item, qty } of linesOf(order)) {
    const line = document.createElement("li");
    line.textContent = `${qty} × ${item}`;
    list.append(line);
  }
  return list;
}

/**
 * How long ago, in words that fit a ticket: "40 s", "12 min", "2 h 5 min".
 * @param {number} ms
 */
export function ageText(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/**
 * Sends a move of order `id` (`/cancel` or `/status`) and reads the answer; a lost answer is
 * `{ status: 0, error }`. The session cookie goes with it, as with every request of the pages.
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<{ status: number, body: any, error?: string }>}
 */
export async function postMove(path, body) {
  try {
    const res = await fetch(path, {
      method: "POST",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => ({})) };
  } catch (err) {
    return { status: 0, body: {}, error: err instanceof Error ? err.message : String(err) };
  }
}
