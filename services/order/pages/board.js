// The kitchen board: a column of tickets for each step (reserved, preparing, ready) with the
// buttons that move a ticket on, the orders cancelled or expired (struck through), counts by
// status, stock, queue depths and the latest orders, redrawn from each board the order service
// sends on its event stream.
import { ageText, linesList, linesOf, listen, postMove, statusBadge, timeOf } from "./live.js";
import { signedIn } from "./session.js";

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** The kitchen's columns, in the order food goes through them. */
const COLUMNS = ["RESERVED", "PREPARING", "READY"];
/** The buttons of a ticket in each column: its label and the status it moves the order to. */
const MOVES = {
  RESERVED: [{ label: "Start", to: "PREPARING" }],
  PREPARING: [{ label: "Ready", to: "READY" }],
  READY: [{ label: "Collected", to: "COLLECTED" }, { label: "Recall", to: "PREPARING" }],
};
/** How often the tickets' ages are redrawn between boards. */
const AGE_TICK_MS = 5_000;

/** Orders whose move is on its way: their buttons wait. */
const moving = new Set();
/** Why the last move of an order was refused, shown on its ticket until it moves again. */
const refusals = new Map();
/** The last board, and the local clock when it came (ages count on from its time). */
let last;
let receivedAt = 0;

// With authentication on, the board waits for a staff token: it shows every student's orders.
await signedIn({ roles: ["staff"] });
listen("/board/events", { board: show }, $("connection"));
setInterval(showAges, AGE_TICK_MS);

function show(board) {
  last = board;
  receivedAt = Date.now();
  showTickets(board);
  showCounts(board.counts);

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
        itemsText(order),
      ], []);
      row.cells[3].className = "items";
      row.dataset.orderId = order.order_id;
      row.dataset.status = order.status;
      const status = document.createElement("td");
      status.append(statusBadge(order.status));
      if (order.reason) status.append(` ${order.reason}`);
      row.append(status);
      return row;
    }),
  );
  $("updated").textContent = `Updated ${timeOf(board.updated_at)}`;
}

function showTickets(board) {
  const shown = new Set();
  for (const column of COLUMNS) {
    const tickets = board.tickets?.[column] ?? [];
    for (const order of tickets) shown.add(order.order_id);
    const list = /** @type {HTMLElement} */ (document.querySelector(`[data-tickets="${column}"]`));
    list.replaceChildren(...tickets.map((order) => ticket(order, column)));
    const count = /** @type {HTMLElement} */ (
      document.querySelector(`[data-column-count="${column}"]`)
    );
    const total = board.counts?.[column] ?? tickets.length;
    const noun = tickets.length === 1 ? "ticket" : "tickets";
    count.textContent = total > tickets.length
      ? `${tickets.length} of ${total} tickets, oldest first`
      : `${tickets.length} ${noun}`;
  }
  // A refusal is about a ticket on show; one that left its column takes its refusal along.
  for (const id of refusals.keys()) if (!shown.has(id)) refusals.delete(id);

  const ended = board.ended ?? [];
  $("ended").replaceChildren(...ended.map((order) => ticket(order, undefined)));
  $("ended-empty").hidden = ended.length > 0;
  showAges();
}

/** The ticket of an order: its number, student, lines, age, and the buttons of its column. */
function ticket(order, column) {
  const element = document.createElement("li");
  element.className = column ? "ticket" : "ticket ended";
  element.dataset.orderId = order.order_id;
  element.dataset.status = order.status;
  const shortId = order.order_id.slice(0, 8);

  const head = document.createElement("p");
  head.className = "ticket-head";
  const id = document.createElement("span");
  id.className = "ticket-id";
  id.textContent = `#${shortId}`;
  const student = document.createElement("span");
  student.className = "student";
  student.textContent = order.student_id;
  head.append(id, student);
  if (column) {
    const age = document.createElement("span");
    age.className = "age";
    // In the kitchen since it was reserved (or placed, for an order shown before it was).
    age.dataset.since = order.reserved_at ?? order.created_at ?? "";
    head.append(age);
  } else {
    head.append(statusBadge(order.status));
  }
  element.append(head, linesList(order));

  if (column) {
    const actions = document.createElement("div");
    actions.className = "actions";
    for (const { label, to } of MOVES[column]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.dataset.move = to;
      button.setAttribute("aria-label", `${label} order ${shortId}`);
      if (label === "Recall") button.className = "secondary";
      button.disabled = moving.has(order.order_id);
      button.addEventListener("click", () => move(order.order_id, to, element));
      actions.append(button);
    }
    element.append(actions);
    const refusal = refusals.get(order.order_id);
    if (refusal) {
      const error = document.createElement("p");
      error.className = "ticket-error";
      error.setAttribute("role", "alert");
      error.textContent = refusal;
      element.append(error);
    }
  } else if (order.reason) {
    const reason = document.createElement("p");
    reason.className = "reason";
    reason.textContent = order.reason;
    element.append(reason);
  }
  return element;
}

/**
 * Asks the service to move order `id` to `status`. The board that follows a move shows the
 * ticket in its new column; a refused move says why on the ticket.
 */
async function move(id, status, element) {
  if (moving.has(id)) return;
  moving.add(id);
  for (const button of element.querySelectorAll("button")) {
    /** @type {HTMLButtonElement} */ (button).disabled = true;
  }
  const answer = await postMove(`/orders/${encodeURIComponent(id)}/status`, { status });
  moving.delete(id);
  if (answer.status === 200) refusals.delete(id);
  else if (answer.status === 409) {
    refusals.set(id, `Not moved: the order is ${answer.body?.status ?? "elsewhere"} now.`);
  } else if (answer.status === 0) {
    refusals.set(id, `Could not reach the order service (${answer.error}). Try again.`);
  } else {
    refusals.set(id, answer.body?.error ?? `The move was refused (${answer.status}).`);
  }
  // Draw what is known at once; the next board (made by this move) brings the new column.
  if (last) showTickets(last);
}

/** Redraws each ticket's age, counted from the board's own clock (no skew with the browser). */
function showAges() {
  if (!last) return;
  const now = Date.parse(last.updated_at) + (Date.now() - receivedAt);
  for (const age of document.querySelectorAll(".age[data-since]")) {
    const since = Date.parse(/** @type {HTMLElement} */ (age).dataset.since ?? "");
    age.textContent = Number.isNaN(since) ? "" : ageText(now - since);
  }
}

/** One line per status with its number, in the order the service lists them. */
function showCounts(counts) {
  $("counts").replaceChildren(
    ...Object.entries(counts).map(([status, n]) => {
      const item = document.createElement("li");
      item.className = "count";
      item.dataset.status = status;
      const number = document.createElement("span");
      number.className = "count-n";
      number.dataset.count = status;
      number.textContent = String(n);
      item.append(number, " ", statusBadge(status));
      return item;
    }),
  );
}

/** An order's lines in one cell: "2 × Burger, 1 × Coffee". */
function itemsText(order) {
  return linesOf(order).map(({ item, qty }) => `${qty} × ${item}`).join(", ");
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
