import assert from "node:assert/strict";
import { createRouter } from "@campus/shared/http";
import { createLogger } from "@campus/shared/log";
import { CONTENT_SECURITY_POLICY, pageRoutes } from "./pages.ts";

const handle = createRouter(pageRoutes(), createLogger("test", "error"));
const get = (path: string) => handle(new Request(`http://order${path}`));

Deno.test("the pages are served with their types, and an unknown file is a 404", async () => {
  for (
    const [path, type] of [
      ["/", "text/html"],
      ["/board", "text/html"],
      ["/pages/student.js", "text/javascript"],
      ["/pages/board.js", "text/javascript"],
      ["/pages/live.js", "text/javascript"],
      ["/pages/session.js", "text/javascript"],
      ["/pages/style.css", "text/css"],
    ]
  ) {
    const res = await get(path);
    assert.equal(res.status, 200, path);
    assert.ok(res.headers.get("content-type")?.startsWith(type), path);
    assert.ok((await res.text()).length > 0, path);
  }
  const missing = await get("/pages/secret.ts");
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
});

Deno.test("the pages hold no inline script, handler or style, so a strict CSP can apply", async () => {
  for (const path of ["/", "/board"]) {
    const html = await (await get(path)).text();
    for (const tag of html.match(/<script\b[^>]*>/g) ?? []) {
      assert.match(tag, /\bsrc="\/pages\/[a-z_]+\.js"/, `${path}: ${tag}`);
    }
    assert.doesNotMatch(html, /<script\b[^>]*>[^<]+<\/script>/, `${path}: inline script`);
    assert.doesNotMatch(html, /\son[a-z]+=/i, `${path}: inline event handler`);
    assert.doesNotMatch(html, /\sstyle=|<style\b/i, `${path}: inline style`);
    assert.doesNotMatch(html, /https?:\/\//, `${path}: everything comes from the service itself`);
  }
});

Deno.test("the student page labels its controls as the browser suite finds them", async () => {
  const html = await (await get("/")).text();
  assert.match(html, /<label for="student_id">Student ID<\/label>/);
  assert.match(html, /id="student_id-error"/, "Student ID has its error beside it");
  // The cart's lines ("Item 1", "Quantity 1", …) are drawn by the script, with the menu.
  assert.match(html, /<fieldset id="cart"[^>]*>\s*<legend>Your cart<\/legend>/);
  assert.match(html, /<ol id="cart-lines"/);
  assert.match(html, /id="lines-error"/, "an error about the cart as a whole has its place");
  assert.match(html, /<button type="button" id="add-line"[^>]*>Add another item<\/button>/);
  assert.match(html, /<button type="submit">Place order<\/button>/);
  const js = await (await get("/pages/student.js")).text();
  assert.match(js, /field\(select, "Item", i, "item"\)/);
  assert.match(js, /field\(quantity, "Quantity", i, "qty"\)/);
});

Deno.test("the board has a column for each kitchen step and a list of ended orders", async () => {
  const html = await (await get("/board")).text();
  for (
    const [column, heading] of [["RESERVED", "Reserved"], ["PREPARING", "Preparing"], [
      "READY",
      "Ready",
    ]]
  ) {
    assert.match(html, new RegExp(`<h2 id="${column.toLowerCase()}-heading">${heading}</h2>`));
    assert.match(html, new RegExp(`<ol class="tickets" data-tickets="${column}">`));
  }
  assert.match(html, /<h2 id="ended-heading">Cancelled and expired<\/h2>/);
});

Deno.test("every page file carries the Content-Security-Policy and nosniff", async () => {
  assert.match(CONTENT_SECURITY_POLICY, /script-src 'self'(;|$)/);
  assert.match(CONTENT_SECURITY_POLICY, /style-src 'self'(;|$)/);
  assert.match(CONTENT_SECURITY_POLICY, /frame-ancestors 'none'/);
  assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval/);
  for (const path of ["/", "/board", "/pages/student.js", "/pages/style.css"]) {
    const res = await get(path);
    await res.body?.cancel();
    assert.equal(res.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY, path);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(res.headers.get("x-frame-options"), "DENY", path);
  }
});

Deno.test("the scripts set no inline style either", async () => {
  for (const name of ["student.js", "board.js", "live.js", "session.js"]) {
    const js = await (await get(`/pages/${name}`)).text();
    assert.doesNotMatch(js, /\.style\b|setAttribute\("style"|innerHTML|eval\(/, name);
  }
});
