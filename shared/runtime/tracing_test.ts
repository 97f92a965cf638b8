import assert from "node:assert/strict";
import {
  activeTraceId,
  activeTraceparent,
  bindToActiveContext,
  startMessageSpan,
  traceparentOf,
} from "./tracing.ts";

Deno.test("with tracing off nothing is made", () => {
  const span = startMessageSpan({
    operation: "process",
    destination: "order_placed",
    routingKey: "order.placed",
    parent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  });
  assert.equal(span, undefined);
  assert.equal(traceparentOf(span), undefined);
  assert.equal(activeTraceparent(), undefined);
  assert.equal(activeTraceId(), undefined);
  const hook = () => {};
  assert.equal(bindToActiveContext(hook), hook, "the hook itself, unwrapped");
});

Deno.test("with tracing on, a message span continues its parent's trace", async () => {
  // Deno provides the OpenTelemetry SDK only to a process started with OTEL_DENO=true.
  const script = `
    import * as t from ${JSON.stringify(new URL("./tracing.ts", import.meta.url).href)};
    await t.enableTracing(true);
    const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const span = t.startMessageSpan({
      operation: "process", destination: "order_placed", routingKey: "order.placed", parent,
    });
    const seen = t.withSpan(span, () => ({
      traceId: t.activeTraceId(),
      traceparent: t.activeTraceparent(),
      bound: t.bindToActiveContext(() => t.activeTraceId()),
    }));
    t.endSpan(span);
    console.log(JSON.stringify({
      traceId: seen.traceId,
      traceparent: seen.traceparent,
      sent: t.traceparentOf(span),
      later: seen.bound(),
      outside: t.activeTraceId() ?? null,
    }));
  `;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-prompt", script],
    cwd: new URL("../..", import.meta.url).pathname,
    // Spans go nowhere: no collector listens on port 9.
    env: { OTEL_DENO: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" },
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const seen = JSON.parse(new TextDecoder().decode(stdout));
  assert.equal(seen.traceId, "0af7651916cd43dd8448eb211c80319c", "the parent's trace");
  assert.match(seen.traceparent, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
  assert.notEqual(seen.traceparent.split("-")[2], "b7ad6b7169203331", "a span of its own");
  assert.equal(seen.sent, seen.traceparent);
  assert.equal(seen.later, seen.traceId, "a bound hook runs in the span's context");
  assert.equal(seen.outside, null);
});
