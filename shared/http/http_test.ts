import assert from "node:assert/strict";
import { createRouter, HttpError, json, jsonArray, readJson } from "./http.ts";
import { createLogger } from "../runtime/log.ts";
import { ServiceMetrics } from "../runtime/metrics.ts";

const router = createRouter([
  { method: "GET", path: "/things/:id", handler: (_req, { id }) => json({ id }) },
  {
    method: "POST",
    path: "/things",
    handler: async (req) => json(await readJson(req, { maxBytes: 16, timeoutMs: 1000 }), 201),
  },
  {
    method: "GET",
    path: "/boom",
    handler: () => {
      throw new Error("bug");
    },
  },
], createLogger("test", "error"));

const call = (method: string, path: string, body?: string) =>
  router(new Request(`http://x${path}`, { method, body }));

Deno.test("createRouter() routes by method and pattern", async () => {
  const res = await call("GET", "/things/7");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { id: "7" });
});

Deno.test("createRouter() answers 404, 405 with Allow, and 500 without details", async () => {
  assert.equal((await call("GET", "/nothing")).status, 404);
  const wrong = await call("DELETE", "/things");
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "POST");
  const boom = await call("GET", "/boom");
  assert.equal(boom.status, 500);
  assert.deepEqual(await boom.json(), { error: "Internal error" });
});

Deno.test("readJson() refuses large and broken bodies with their status", async () => {
  const large = await call("POST", "/things", JSON.stringify({ text: "x".repeat(40) }));
  assert.equal(large.status, 413);
  const broken = await call("POST", "/things", "{nope");
  assert.equal(broken.status, 400);
  const body = await broken.json();
  assert.equal(body.details[0].field, "(body)");
  assert.equal((await call("POST", "/things", '{"a":1}')).status, 201);
});

Deno.test("HttpError carries status and details", () => {
  const err = new HttpError(422, "nope", [{ field: "x" }]);
  assert.equal(err.name, "HttpError");
  assert.equal(err.status, 422);
});

Deno.test("jsonArray() streams pages as one JSON array", async () => {
  assert.deepEqual(await (await jsonArray([[1, 2], [], [3]])).json(), [1, 2, 3]);
  assert.deepEqual(await (await jsonArray([])).json(), []);
  assert.equal((await jsonArray([])).headers.get("content-type"), "application/json");
  async function* pages() {
    yield [1];
    yield [];
    yield [2, 3];
  }
  assert.deepEqual(await (await jsonArray(pages())).json(), [1, 2, 3], "pages read as they come");
  const broken: AsyncIterable<number[]> = {
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error("database gone")) }),
  };
  await assert.rejects(jsonArray(broken), /database gone/, "a failing first page is an error");
});

Deno.test("readJson() answers 408 when the body stops arriving, and 503 when it breaks", async (t) => {
  const post = (body: ReadableStream<Uint8Array>) =>
    new Request("http://x/things", { method: "POST", body });
  await t.step("half a body, then nothing", async () => {
    const half = new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new TextEncoder().encode('{"item":')),
    });
    await assert.rejects(
      () => readJson(post(half), { timeoutMs: 50 }),
      (err: unknown) =>
        err instanceof HttpError && err.status === 408 && /within 50 ms/.test(err.message),
    );
  });
  await t.step("the connection ends under the read", async () => {
    const broken = new ReadableStream<Uint8Array>({
      pull: (c) => c.error(new Deno.errors.BadResource("resource unavailable")),
    });
    await assert.rejects(
      () => readJson(post(broken), { timeoutMs: 5000 }),
      (err: unknown) => err instanceof HttpError && err.status === 503,
    );
  });
  await t.step("a chunked body over the limit", async () => {
    const chunks = ['{"a":"', "x".repeat(20), '"}'].map((c) => new TextEncoder().encode(c));
    const chunked = ReadableStream.from(chunks);
    await assert.rejects(
      () => readJson(post(chunked), { timeoutMs: 5000, maxBytes: 16 }),
      (err: unknown) => err instanceof HttpError && err.status === 413,
    );
  });
});

Deno.test("createRouter() with metrics times requests by route pattern, never the raw path", async () => {
  const metrics = new ServiceMetrics();
  const timed = createRouter(
    [
      { method: "GET", path: "/things/:id", handler: (_req, { id }) => json({ id }) },
    ],
    createLogger("test", "error"),
    metrics,
  );
  for (const path of ["/things/1", "/things/2", "/things/2/parts"]) {
    await (await timed(new Request(`http://x${path}`))).body?.cancel();
  }
  await (await timed(new Request("http://x/things/3", { method: "DELETE" }))).body?.cancel();
  const { text } = await metrics.render();
  const counts = text.split("\n").filter((l) =>
    l.startsWith("campus_http_request_duration_seconds_count")
  );
  assert.deepEqual(counts.sort(), [
    'campus_http_request_duration_seconds_count{method="DELETE",route="/things/:id",status="405"} 1',
    'campus_http_request_duration_seconds_count{method="GET",route="/things/:id",status="200"} 2',
    'campus_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1',
  ]);
});
