// The student page: builds a cart of one or more lines, places it through POST /order, and shows
// each of the student's orders with its lines, status and message, kept current by the order
// service's event stream; an order not yet in the kitchen can be cancelled from here.
import { linesList, listen, postMove, statusBadge, timeOf } from "./live.js";
import { signedIn } from "./session.js";

const STORAGE_KEY = "campus-food.student_id";
/** Most lines a cart may have (the service's limit). */
const MAX_LINES = 10;
/** Statuses an order never leaves. */
const FINAL = new Set(["FAILED", "CANCELLED", "COLLECTED", "EXPIRED"]);
/** Statuses a student may still cancel from. */
const CANCELLABLE = new Set(["PLACED", "RESERVED"]);
/**
 * How far along an order is, for updates without a time: a late update never turns RESERVED
 * back into PLACED. Updates with times (`updated_at`) are ordered by them instead, so that a
 * recall (READY back to PREPARING) shows.
 */
const RANK = {
  PLACED: 0,
  RESERVED: 1,
  FAILED: 1,
  CANCELLED: 2,
  PREPARING: 2,
  READY: 3,
  COLLECTED: 4,
  EXPIRED: 4,
};

const form = /** @type {HTMLFormElement} */ (document.getElementById("order-form"));
const cart = /** @type {HTMLFieldSetElement} */ (document.getElementById("cart"));
const cartLines = /** @type {HTMLOListElement} */ (document.getElementById("cart-lines"));
const addLine = /** @type {HTMLButtonElement} */ (document.getElementById("add-line"));
const linesError = /** @type {HTMLElement} */ (document.getElementById("lines-error"));
const itemHint = /** @type {HTMLElement} */ (document.getElementById("item-hint"));
const studentInput = /** @type {HTMLInputElement} */ (document.getElementById("student_id"));
const formError = /** @type {HTMLElement} */ (document.getElementById("form-error"));
const list = /** @type {HTMLOListElement} */ (document.getElementById("orders"));
const empty = /** @type {HTMLElement} */ (document.getElementById("orders-empty"));
const connection = /** @type {HTMLElement} */ (document.getElementById("connection"));
const submit = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));

/** Orders shown, by id. */
const orders = new Map();
/** What the last cancel of each order came to, shown under it until the order moves on. */
const cancelNotes = new Map();
/** Orders whose cancel is on its way. */
const cancelling = new Set();
/** @type {{ items: { item: string, quantity: number | null }[], available: boolean }} */
let menu = { items: [], available: true };
let student = readStoredStudent();
let close = () => {};
/**
 * The order being placed and its Idempotency-Key, kept until the service answers definitely: a
 * retry after a lost answer sends the same key, so an order the service already took is not
 * taken twice.
 * @type {{ fields: string, key: string } | undefined}
 */
let pending;

studentInput.value = student;
showCart([{ item: "", qty: "1" }]);
form.addEventListener("submit", (event) => {
  event.preventDefault();
  placeOrder();
});
addLine.addEventListener("click", () => {
  const lines = cartValues();
  if (lines.length >= MAX_LINES) return;
  showCart([...lines, { item: "", qty: "1" }]);
  /** @type {HTMLElement | null} */ (cartLines.querySelector(`#item-${lines.length}`))?.focus();
});
studentInput.addEventListener("change", () => follow(studentInput.value.trim()));

// With authentication on, the page waits for a token; a student's fixes whose orders these are.
const session = await signedIn({ roles: ["student", "staff"] });
if (session.auth === "on" && session.role === "student") {
  student = session.sub;
  studentInput.value = student;
  studentInput.readOnly = true;
}
connect();

/** (Re)opens the event stream, for the current student's orders when one is known. */
function connect() {
  close();
  const url = student ? `/events?student_id=${encodeURIComponent(student)}` : "/events";
  close = listen(url, {
    menu: showMenu,
    orders: (snapshot) => snapshot.forEach((order) => upsert(order, "end")),
    order: (order) => upsert(order, "start"),
  }, connection);
}

/** Shows the orders of `id` from now on, and remembers it for the next visit. */
function follow(id) {
  if (id === student) return;
  student = id;
  try {
    if (id) localStorage.setItem(STORAGE_KEY, id);
  } catch {
    // storage may be off (private browsing): the page still works for this visit
  }
  orders.clear();
  list.replaceChildren();
  empty.hidden = false;
  connect();
}

/** The cart's lines as the form holds them. */
function cartValues() {
  return [...cartLines.querySelectorAll(".cart-line")].map((line) => ({
    item: /** @type {HTMLSelectElement} */ (line.querySelector("select")).value,
    qty: /** @type {HTMLInputElement} */ (line.querySelector("input")).value,
  }));
}

/** Draws the cart's lines, numbered from 1, each with its item, quantity and Remove. */
function showCart(lines) {
  cartLines.replaceChildren(...lines.map((line, i) => cartLine(line, i, lines.length)));
  cart.dataset.lines = String(lines.length);
  addLine.disabled = lines.length >= MAX_LINES;
}

function cartLine({ item, qty }, i, count) {
  const line = document.createElement("li");
  line.className = "cart-line";
  line.dataset.line = String(i);

  const select = document.createElement("select");
  select.id = `item-${i}`;
  select.name = `item-${i}`;
  select.setAttribute("aria-describedby", `item-${i}-error`);
  select.append(...menuOptions());
  if (item && menu.items.some((m) => m.item === item)) select.value = item;
  const quantity = document.createElement("input");
  Object.assign(quantity, {
    id: `qty-${i}`,
    name: `qty-${i}`,
    type: "number",
    inputMode: "numeric",
    min: "1",
    max: "100",
    value: qty,
  });
  quantity.setAttribute("aria-describedby", `qty-${i}-error`);

  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "secondary remove";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `Remove item ${i + 1}`);
  remove.disabled = count === 1;
  remove.addEventListener("click", () => {
    const lines = cartValues();
    lines.splice(i, 1);
    showCart(lines);
    /** @type {HTMLElement | null} */ (cartLines.querySelector(
      `#item-${Math.min(i, lines.length - 1)}`,
    ))?.focus();
  });
  line.append(
    field(select, "Item", i, "item"),
    field(quantity, "Quantity", i, "qty"),
    remove,
  );
  return line;
}

/** A labelled field of line `i`: "Item 1", "Quantity 1"; the number is for screen readers. */
function field(input, name, i, kind) {
  const wrap = document.createElement("div");
  wrap.className = `field ${kind}`;
  const label = document.createElement("label");
  label.htmlFor = input.id;
  const number = document.createElement("span");
  number.className = "line-no";
  number.textContent = ` ${i + 1}`;
  label.append(name, number);
  const error = document.createElement("p");
  error.id = `${input.id}-error`;
  error.className = "error";
  error.hidden = true;
  wrap.append(label, input, error);
  return wrap;
}

async function placeOrder() {
  clearErrors();
  const body = {
    student_id: studentInput.value,
    lines: cartValues().map(({ item, qty }) => ({
      item,
      qty: qty === "" ? undefined : Number(qty),
    })),
  };
  // The same cart again is a retry of the same order; anything else is a new order.
  const fields = JSON.stringify(body);
  if (pending?.fields !== fields) pending = { fields, key: crypto.randomUUID() };
  submit.disabled = true;
  try {
    const res = await fetch("/order", {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": pending.key },
      body: JSON.stringify(body),
    });
    const answer = await res.json().catch(() => ({}));
    if (answered(res.status)) pending = undefined;
    if (res.status === 201) {
      follow(answer.student_id);
      upsert(answer, "start");
      return;
    }
    showErrors(answer, res.status);
  } catch (err) {
    showFormError(`Could not reach the order service (${err.message}). Try again.`);
  } finally {
    submit.disabled = false;
  }
}

/**
 * Whether `status` settles the request it answers: it was done (2xx), or the request itself is
 * wrong (4xx) and the same request would be refused again. A 5xx, a timeout (408), a refusal
 * for now (429) or a missing sign-in (401) leave the outcome unknown: a retry must send the same
 * key again.
 * @param {number} status
 */
function answered(status) {
  if (status >= 200 && status < 300) return true;
  return status >= 400 && status < 500 && ![401, 408, 425, 429].includes(status);
}

/**
 * The element of the form that a field of the API's answer names: `student_id`, `lines`,
 * `lines[1].qty`, or the classic `item` and `qty` (the first line).
 */
function inputOf(field) {
  if (field === "student_id") return studentInput;
  const line = /^lines\[(\d+)\]\.(item|qty)$/.exec(field);
  if (line) return document.getElementById(`${line[2]}-${line[1]}`);
  if (field === "item" || field === "qty") return document.getElementById(`${field}-0`);
  return null;
}

/** Shows each of the API's messages beside its field; the rest above the button. */
function showErrors(answer, status) {
  const details = Array.isArray(answer.details) ? answer.details : [];
  const general = [];
  let first;
  for (const { field, message } of details) {
    const input = inputOf(field);
    const error = input
      ? document.getElementById(`${input.id}-error`)
      : field === "lines"
      ? linesError
      : null;
    if (!error) {
      general.push(message);
      continue;
    }
    error.textContent = error.hidden ? message : `${error.textContent}; ${message}`;
    error.hidden = false;
    input?.setAttribute("aria-invalid", "true");
    first ??= input ?? addLine;
  }
  if (general.length > 0 || !first) {
    showFormError(general.join("; ") || answer.error || `The order was refused (${status}).`);
  }
  first?.focus();
}

function showFormError(message) {
  formError.textContent = message;
  formError.hidden = false;
}

function clearErrors() {
  for (const error of form.querySelectorAll(".error")) {
    const element = /** @type {HTMLElement} */ (error);
    element.hidden = true;
    element.textContent = "";
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
}

/** The menu as options of an Item list, with the stock left. */
function menuOptions() {
  return menu.items.map(({ item, quantity }) => {
    const option = document.createElement("option");
    option.value = item;
    option.textContent = quantity === null
      ? item
      : quantity === 0
      ? `${item} (sold out)`
      : `${item} (${quantity} left)`;
    option.disabled = quantity === 0;
    return option;
  });
}

/** Fills every Item list with the menu and the stock left, keeping each line's choice. */
function showMenu(next) {
  menu = next;
  for (const select of cartLines.querySelectorAll("select")) {
    const chosen = select.value;
    select.replaceChildren(...menuOptions());
    if (menu.items.some(({ item }) => item === chosen)) select.value = chosen;
  }
  itemHint.textContent = menu.available
    ? ""
    : "Stock levels can't be read right now; you can still order.";
}

/** Whether `next` is news about an order shown as `known`. */
function isNewer(known, next) {
  if (!known || known.status === next.status) return true;
  if (FINAL.has(known.status)) return false;
  if (FINAL.has(next.status)) return true;
  if (known.updated_at && next.updated_at && known.updated_at !== next.updated_at) {
    return next.updated_at > known.updated_at;
  }
  return RANK[next.status] >= RANK[known.status];
}

/** Adds or updates the element of an order; new ones go at `where` of the list. */
function upsert(order, where) {
  if (student && order.student_id !== student) return;
  const known = orders.get(order.order_id);
  if (!isNewer(known, order)) return;
  // What was said about the old status (its message, a failure's reason) goes with it, and so
  // does its time: a status heard without one must not keep the time of the status before.
  const kept = known && known.status !== order.status
    ? { ...known, message: undefined, reason: undefined, updated_at: undefined }
    : known;
  const merged = { ...kept, ...order };
  orders.set(order.order_id, merged);
  let element = list.querySelector(`[data-order-id="${CSS.escape(order.order_id)}"]`);
  if (!element) {
    element = document.createElement("li");
    element.className = "order";
    element.dataset.orderId = order.order_id;
    if (where === "start") list.prepend(element);
    else list.append(element);
  }
  render(/** @type {HTMLElement} */ (element), merged);
  empty.hidden = true;
}

/** What the student should know about where an order stands, beyond its badge. */
const STANDING = {
  PREPARING: "The kitchen is preparing your order.",
  READY: "Ready for pickup! Show this order at the counter.",
  COLLECTED: "Collected. Enjoy your meal.",
  EXPIRED: "Not collected in time: the pickup window has passed.",
};

function render(element, order) {
  element.dataset.status = order.status;
  const shortId = order.order_id.slice(0, 8);
  const head = document.createElement("div");
  head.className = "order-head";
  head.append(linesList(order), statusBadge(order.status));
  const parts = [head];
  if (STANDING[order.status]) {
    const standing = paragraph("standing", STANDING[order.status]);
    if (order.status === "READY") standing.setAttribute("role", "alert");
    parts.push(standing);
  }
  // The message names the reason itself; the reason alone shows only until it arrives.
  if (order.message) parts.push(paragraph("message", order.message));
  else if ((order.status === "FAILED" || order.status === "CANCELLED") && order.reason) {
    parts.push(paragraph("reason", `Reason: ${order.reason}`));
  }
  const when = timeOf(order.created_at);
  parts.push(paragraph("meta", when ? `Placed ${when} · order ${shortId}` : `Order ${shortId}`));
  if (CANCELLABLE.has(order.status)) {
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary cancel";
    cancel.textContent = "Cancel order";
    cancel.setAttribute("aria-label", `Cancel order ${shortId}`);
    cancel.disabled = cancelling.has(order.order_id);
    cancel.addEventListener("click", () => cancelOrder(order.order_id));
    parts.push(cancel);
  }
  const note = cancelNotes.get(order.order_id);
  if (note) {
    const result = paragraph(`cancel-result ${note.ok ? "done" : "error"}`, note.text);
    result.setAttribute("role", "status");
    parts.push(result);
  }
  element.replaceChildren(...parts);
}

/**
 * Asks the service to cancel order `id`. A repeated cancel is answered like the first, so after
 * a lost answer the button simply sends it again.
 */
async function cancelOrder(id) {
  if (cancelling.has(id)) return;
  cancelling.add(id);
  redraw(id);
  const answer = await postMove(`/orders/${encodeURIComponent(id)}/cancel`);
  cancelling.delete(id);
  const known = orders.get(id);
  if (answer.status === 200) {
    cancelNotes.set(id, { ok: true, text: "Cancelled. Anything reserved goes back to stock." });
    if (answer.body?.order_id === id) upsert(answer.body, "start");
  } else if (answer.status === 409) {
    const now = answer.body?.status;
    cancelNotes.set(id, {
      ok: false,
      text: `Too late to cancel: the order is ${now ?? "past cancelling"}.`,
    });
    // The order stands elsewhere than the page thought: show where.
    if (known && now && now !== known.status) {
      upsert({ ...known, status: now, updated_at: undefined }, "start");
    }
  } else if (answer.status === 0) {
    cancelNotes.set(id, {
      ok: false,
      text: `Could not reach the order service (${answer.error}). Try again.`,
    });
  } else {
    cancelNotes.set(id, {
      ok: false,
      text: answer.body?.error ?? `The cancel was refused (${answer.status}).`,
    });
  }
  redraw(id);
}

/** Draws order `id` again as it stands. */
function redraw(id) {
  const element = list.querySelector(`[data-order-id="${CSS.escape(id)}"]`);
  const order = orders.get(id);
  if (element && order) render(/** @type {HTMLElement} */ (element), order);
}

function paragraph(className, text) {
  const p = document.createElement("p");
  p.className = className;
  p.textContent = text;
  return p;
}

function readStoredStudent() {
  try {
    return localStorage.getItem(STORAGE_KEY) ?? "";
  } catch {
    return "";
  }
}
