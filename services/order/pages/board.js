// The kitchen board: counts by status, stock, queue depths and the latest orders, redrawn from
// each board the order service sends on its event stream.
import { listen, statusBadge, timeOf } from "./live.js";
import { signedIn } from "./session.js";

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

// With authentication on, the board waits for a staff token: it shows every student's orders.
await signedIn({ roles: ["staff"] });
listen("/board/events", { board: show }, $("connection"));

function show(board) {
  for (const [status, n] of Object.entries(board.counts)) {
    const cell = document.querySelector(`[data-count="${status}"]`);
    if (cell) cell.textContent = String(n);
  }

  $("stock").replaceChildren(
    ...board.stock.items.map(({ item, quantity }) => {
      const left = quantity === null
        ? "unknown"
        : quantity === 0
        ? "0 (sold out)"
        : String(quantity);
      const row = tableRow([item, left], [1]);
      row.dataset.item = item;
      if (quantity === 0) row.dataset.soldOut = "true";
      return row;
    }),
  );
  note("stock-note", board.stock.available ? "" : `Stock may be out of date: ${board.stock.error}`);

  $("queues").replaceChildren(
    ...(board.queues ?? []).map((q) => {
      const row = tableRow([q.queue, String(q.depth), String(q.dlq_depth)], [1, 2]);
      row.dataset.queue = q.queue;
      if (q.dlq_depth > 0) row.dataset.deadLetters = "true";
      return row;
    }),
  );
  note("queues-note", board.queues ? "" : `Queue depths unavailable: ${board.queues_error}`);

  $("latest").replaceChildren(
    ...board.latest.map((order) => {
      const row = tableRow([
        timeOf(order.created_at),
        order.order_id.slice(0, 8),
        order.student_id,
        order.item,
        String(order.qty),
      ], [4]);
      row.dataset.orderId = order.order_id;
      const status = document.createElement("td");
      status.append(statusBadge(order.status));
      if (order.reason) status.append(` ${order.reason}`);
      row.append(status);
      return row;
    }),
  );
  $("updated").textContent = `Updated ${timeOf(board.updated_at)}`;
}

/** A row of text cells; the columns in `numeric` are aligned as numbers. */
function tableRow(cells, numeric) {
  const row = document.createElement("tr");
  cells.forEach((text, i) => {
    const cell = document.createElement(i === 0 ? "th" : "td");
    if (i === 0) cell.setAttribute("scope", "row");
    if (numeric.includes(i)) cell.className = "num";
    cell.textContent = text;
    row.append(cell);
  });
  return row;
}

function note(id, text) {
  $(id).textContent = text;
  $(id).hidden = text === "";
}
