// Live updates for the pages: an EventSource on one of the order service's event streams, and
// a line of text that says whether the page is live. The browser reconnects by itself.

/**
 * Opens the event stream at `url`, calls `handlers[name](data)` for each event, and keeps the
 * text of `status` current. Returns a function that closes the stream.
 * @param {string} url
 * @param {Record<string, (data: any) => void>} handlers
 * @param {HTMLElement} status
 * @returns {() => void}
 */
export function listen(url, handlers, status) {
  const source = new EventSource(url);
  const show = (text, state) => {
    status.textContent = text;
    status.dataset.state = state;
  };
  show("Connecting…", "connecting");
  source.addEventListener("open", () => show("Live: updates appear as they happen", "live"));
  source.addEventListener("error", () => {
    show(
      source.readyState === EventSource.CLOSED
        ? "Offline: reload the page to try again"
        : "Reconnecting…",
      "offline",
    );
  });
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
  }
  return () => source.close();
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
