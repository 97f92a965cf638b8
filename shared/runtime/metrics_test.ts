import assert from "node:assert/strict";
import { ServiceMetrics, UNMATCHED_ROUTE } from "./metrics.ts";

/** The value of `name{labels}` in the registry's text; NaN when absent. */
async function valueOf(metrics: ServiceMetrics, series: string): Promise<number> {
  const { text } = await metrics.render();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

Deno.test("forQueue() makes the queue's series exist at zero and counts into them", async () => {
  const metrics = new ServiceMetrics();
  const queue = metrics.forQueue("order_placed");
  for (
    const name of [
      "campus_messages_consumed_total",
      "campus_messages_dead_lettered_total",
      "campus_message_retries_total",
      "campus_message_handling_duration_seconds_count",
    ]
  ) assert.equal(await valueOf(metrics, `${name}{queue="order_placed"}`), 0, name);
  queue.consumed();
  queue.consumed();
  queue.deadLettered();
  queue.retried();
  queue.handled(0.003);
  assert.equal(await valueOf(metrics, 'campus_messages_consumed_total{queue="order_placed"}'), 2);
  assert.equal(
    await valueOf(metrics, 'campus_messages_dead_lettered_total{queue="order_placed"}'),
    1,
  );
  assert.equal(await valueOf(metrics, 'campus_message_retries_total{queue="order_placed"}'), 1);
  assert.equal(
    await valueOf(metrics, 'campus_message_handling_duration_seconds_count{queue="order_placed"}'),
    1,
  );
});

Deno.test("published() counts by routing key", async () => {
  const metrics = new ServiceMetrics();
  for (const key of ["order.placed", "order.placed", "order_placed_dlq"]) metrics.published(key);
  assert.equal(
    await valueOf(metrics, 'campus_messages_published_total{routing_key="order.placed"}'),
    2,
  );
  assert.equal(
    await valueOf(metrics, 'campus_messages_published_total{routing_key="order_placed_dlq"}'),
    1,
  );
});

Deno.test("request() labels by method, route and status; odd methods become OTHER", async () => {
  const metrics = new ServiceMetrics();
  metrics.request("GET", "/orders/:id", 200, 0.002);
  metrics.request("GET", "/orders/:id", 200, 0.004);
  metrics.request("GET", "/orders/:id", 404, 0.001);
  metrics.request("BREW", UNMATCHED_ROUTE, 404, 0.001);
  const count = (labels: string) =>
    valueOf(metrics, `campus_http_request_duration_seconds_count{${labels}}`);
  assert.equal(await count('method="GET",route="/orders/:id",status="200"'), 2);
  assert.equal(await count('method="GET",route="/orders/:id",status="404"'), 1);
  assert.equal(await count('method="OTHER",route="unmatched",status="404"'), 1);
});

Deno.test("gauges are read when scraped; a labelled one shows only what it could read", async () => {
  const metrics = new ServiceMetrics();
  let pending = 3;
  metrics.gauge("campus_outbox_pending", "rows", () => pending);
  let depths = new Map([["a_dlq", 2], ["a", 0]]);
  metrics.labelledGauge("campus_queue_messages", "depths", "queue", () => Promise.resolve(depths));
  assert.equal(await valueOf(metrics, "campus_outbox_pending"), 3);
  assert.equal(await valueOf(metrics, 'campus_queue_messages{queue="a_dlq"}'), 2);
  pending = 0;
  depths = new Map([["a", 5]]);
  assert.equal(await valueOf(metrics, "campus_outbox_pending"), 0);
  assert.ok(Number.isNaN(await valueOf(metrics, 'campus_queue_messages{queue="a_dlq"}')));
  assert.equal(await valueOf(metrics, 'campus_queue_messages{queue="a"}'), 5);
});
