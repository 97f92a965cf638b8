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
const STATUS_MARK = { PLACED: "…", RESERVED: "✓", FAILED: "✗" };

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
