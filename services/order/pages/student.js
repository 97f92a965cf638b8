// The student page: places orders through POST /order and shows each of the student's orders
// with its status and message, kept current by the order service's event stream.
import { listen, statusBadge, timeOf } from "./live.js";
import { signedIn } from "./session.js";

const STORAGE_KEY = "campus-food.student_id";
/** Statuses only move forward: an update that arrives late never turns RESERVED back into PLACED. */
const RANK = { PLACED: 0, RESERVED: 1, FAILED: 1 };
const FIELDS = ["item", "qty", "student_id"];

const form = /** @type {HTMLFormElement} */ (document.getElementById("order-form"));
const itemSelect = /** @type {HTMLSelectElement} */ (document.getElementById("item"));
const itemHint = /** @type {HTMLElement} */ (document.getElementById("item-hint"));
const qtyInput = /** @type {HTMLInputElement} */ (document.getElementById("qty"));
const studentInput = /** @type {HTMLInputElement} */ (document.getElementById("student_id"));
const formError = /** @type {HTMLElement} */ (document.getElementById("form-error"));
const list = /** @type {HTMLOListElement} */ (document.getElementById("orders"));
const empty = /** @type {HTMLElement} */ (document.getElementById("orders-empty"));
const connection = /** @type {HTMLElement} */ (document.getElementById("connection"));
const submit = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));

/** Orders shown, by id. */
const orders = new Map();
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
form.addEventListener("submit", (event) => {
  event.preventDefault();
  placeOrder();
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

async function placeOrder() {
  clearErrors();
  const body = {
    item: itemSelect.value,
    qty: qtyInput.value === "" ? undefined : Number(qtyInput.value),
    student_id: studentInput.value,
  };
  // The same fields again are a retry of the same order; anything else is a new order.
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
 * Whether `status` settles the order the key was for: it was placed (2xx), or the request itself
 * is wrong (4xx) and the same request would be refused again. A 5xx, a timeout (408), a refusal
 * for now (429) or a missing sign-in (401) leave the order unknown: a retry must send the key
 * again.
 * @param {number} status
 */
function answered(status) {
  if (status >= 200 && status < 300) return true;
  return status >= 400 && status < 500 && ![401, 408, 425, 429].includes(status);
}

/** Shows each of the API's messages beside its field; the rest above the button. */
function showErrors(answer, status) {
  const details = Array.isArray(answer.details) ? answer.details : [];
  const general = [];
  let first;
  for (const { field, message } of details) {
    const input = FIELDS.includes(field) ? document.getElementById(field) : null;
    if (!input) {
      general.push(message);
      continue;
    }
    const error = /** @type {HTMLElement} */ (document.getElementById(`${field}-error`));
    error.textContent = error.hidden ? message : `${error.textContent}; ${message}`;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    first ??= input;
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
  for (const field of FIELDS) {
    const error = /** @type {HTMLElement} */ (document.getElementById(`${field}-error`));
    error.hidden = true;
    error.textContent = "";
    document.getElementById(field)?.removeAttribute("aria-invalid");
  }
  formError.hidden = true;
  formError.textContent = "";
}

/** Fills the Item list with the menu and the stock left, keeping the current choice. */
function showMenu(menu) {
  const chosen = itemSelect.value;
  const options = menu.items.map(({ item, quantity }) => {
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
  itemSelect.replaceChildren(...options);
  if (menu.items.some(({ item }) => item === chosen)) itemSelect.value = chosen;
  itemHint.textContent = menu.available
    ? ""
    : "Stock levels can't be read right now; you can still order.";
}

/** Adds or updates the element of an order; new ones go at `where` of the list. */
function upsert(order, where) {
  if (student && order.student_id !== student) return;
  const known = orders.get(order.order_id);
  if (known && RANK[known.status] > RANK[order.status]) return;
  const merged = { ...known, ...order };
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

function render(element, order) {
  element.dataset.status = order.status;
  const head = document.createElement("p");
  head.className = "order-head";
  const what = document.createElement("span");
  what.className = "what";
  what.textContent = `${order.qty} × ${order.item}`;
  head.append(what, " ", statusBadge(order.status));
  const parts = [head];
  // The message names the reason itself; the reason alone shows only until it arrives.
  if (order.message) parts.push(paragraph("message", order.message));
  else if (order.status === "FAILED" && order.reason) {
    parts.push(paragraph("reason", `Reason: ${order.reason}`));
  }
  const when = timeOf(order.created_at);
  const shortId = order.order_id.slice(0, 8);
  parts.push(paragraph("meta", when ? `Placed ${when} · order ${shortId}` : `Order ${shortId}`));
  element.replaceChildren(...parts);
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
