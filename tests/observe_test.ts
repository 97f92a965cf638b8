/**
 * Seeing inside a running stack with tracing on: every service's `GET /metrics` (names, types,
 * `promtool check metrics`, counts that match what happened), a real Prometheus server scraping
 * the three with the shipped config and rules, one trace per order across the services (also
 * for an order whose event waited in the outbox while the broker was down), and log lines that
 * name each order's trace.
 */
import assert from "node:assert/strict";
import { SERVICE_NAMES } from "@campus/shared/topology";
import { INTEGRATION, type ServiceName, Stack } from "./stack.ts";
import { finalOrder, finalOrders, placeOrder, placeOrders, readiness } from "./client.ts";
import { waitFor } from "./poll.ts";
import { type CollectedSpan, startSpanCollector } from "./span_collector.ts";
import { hasPrometheus, startPrometheus } from "./prometheus_server.ts";

const ORDERS = 20;

/** Metric name to type, as each service must expose them. */
const EVERY_SERVICE = {
  campus_messages_consumed_total: "counter",
  campus_messages_published_total: "counter",
  campus_messages_dead_lettered_total: "counter",
  campus_message_retries_total: "counter",
  campus_outbox_pending: "gauge",
  campus_ready: "gauge",
  campus_queue_messages: "gauge",
  campus_http_request_duration_seconds: "histogram",
  campus_message_handling_duration_seconds: "histogram",
};
const ORDER_SERVICE = {
  campus_orders_placed_total: "counter",
  campus_orders_completed_total: "counter",
  campus_orders_oldest_pending_seconds: "gauge",
  campus_orders_reasked_total: "counter",
};

Deno.test("metrics, traces and logs of a running stack", INTEGRATION, async (t) => {
  assert.ok(
    hasPrometheus(),
    "this suite needs Debian's prometheus package (prometheus and promtool on PATH)",
  );
  const collector = startSpanCollector();
  const stack = await Stack.start({
    menu: { Coffee: 200, Taco: 1 },
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: "200",
    },
  });
  const hosts = Object.fromEntries(
    SERVICE_NAMES.map((s) => [s, new URL(stack.url(s)).host]),
  ) as Record<ServiceName, string>;
  const prometheus = await startPrometheus(hosts);
  const metrics = async (service: ServiceName) => {
    const res = await fetch(stack.url(service, "/metrics"));
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    return await res.text();
  };
  try {
    let placed: { order_id: string }[] = [];

    await t.step("each service exposes its metrics with their types", async () => {
      for (const service of SERVICE_NAMES) {
        const types = typesIn(await metrics(service));
        const expected = service === "order"
          ? { ...EVERY_SERVICE, ...ORDER_SERVICE }
          : EVERY_SERVICE;
        for (const [name, type] of Object.entries(expected)) {
          assert.equal(types.get(name), type, `${service}: ${name} is a ${type}`);
        }
        for (const name of types.keys()) assert.match(name, /^campus_/, `${service}: ${name}`);
      }
    });

    await t.step(`placing ${ORDERS} orders moves the order counters by ${ORDERS}`, async () => {
      const before = sample(await metrics("order"), "campus_orders_placed_total");
      const requests = Array.from({ length: ORDERS }, (_, i) => ({
        item: "Coffee",
        qty: 1,
        student_id: `T${i}`,
      }));
      placed = await placeOrders(stack, requests);
      // Counted at commit, before the 201: the count is exact as soon as every answer came.
      assert.equal(sample(await metrics("order"), "campus_orders_placed_total"), before + ORDERS);
      await finalOrders(stack, placed.map((o) => o.order_id));
      const text = await metrics("order");
      assert.equal(
        sample(text, "campus_orders_completed_total", { status: "RESERVED" }),
        ORDERS,
      );
      assert.equal(sample(text, "campus_orders_completed_total", { status: "FAILED" }), 0);
      assert.equal(sample(text, "campus_orders_oldest_pending_seconds"), 0, "none waits");
      assert.equal(
        sample(text, "campus_messages_published_total", { routing_key: "order.placed" }),
        ORDERS,
      );
      assert.equal(
        sample(text, "campus_messages_consumed_total", { queue: "order_status" }),
        ORDERS,
      );
      const inventory = await metrics("inventory");
      assert.equal(
        sample(inventory, "campus_messages_consumed_total", { queue: "order_placed" }),
        ORDERS,
      );
      assert.equal(
        sample(inventory, "campus_messages_published_total", { routing_key: "inventory.reserved" }),
        ORDERS,
      );
      assert.equal(
        sample(inventory, "campus_message_handling_duration_seconds_count", {
          queue: "order_placed",
        }),
        ORDERS,
      );
      const notification = await metrics("notification");
      assert.equal(
        sample(notification, "campus_messages_consumed_total", { queue: "inventory_reserved" }),
        ORDERS,
      );
    });

    await t.step("request times are labelled by route pattern, never by raw path", async () => {
      const [{ order_id }] = placed;
      await fetch(stack.url("order", `/orders/${order_id}`)).then((r) => r.body?.cancel());
      await fetch(stack.url("order", `/no/such/${order_id}`)).then((r) => r.body?.cancel());
      const text = await metrics("order");
      assert.ok(!text.includes(order_id), "no order id in any label");
      assert.ok(
        sample(text, "campus_http_request_duration_seconds_count", {
          method: "GET",
          route: "/orders/:id",
          status: "200",
        }) >= 1,
      );
      assert.equal(
        sample(text, "campus_http_request_duration_seconds_count", {
          method: "GET",
          route: "unmatched",
          status: "404",
        }),
        1,
      );
      assert.equal(
        sample(text, "campus_http_request_duration_seconds_count", {
          method: "POST",
          route: "/order",
          status: "201",
        }),
        ORDERS,
      );
    });

    await t.step("a dead letter is counted and shows in its queue's depth", async () => {
      await stack.publish("order.placed", "not json");
      // The copy reaches the DLQ a moment before the delivery is acknowledged and counted.
      let text = "";
      await waitFor(async () => {
        text = await metrics("inventory");
        return sample(text, "campus_messages_dead_lettered_total", { queue: "order_placed" }) === 1;
      }, { what: "inventory to count 1 dead letter from order_placed" });
      assert.equal(sample(text, "campus_queue_messages", { queue: "order_placed_dlq" }), 1);
      assert.equal(sample(text, "campus_queue_messages", { queue: "order_placed" }), 0);
      assert.equal(sample(text, "campus_ready"), 1);
    });

    await t.step("every service's output passes promtool check metrics", async () => {
      for (const service of SERVICE_NAMES) {
        const { code, output } = await promtool(["check", "metrics"], await metrics(service));
        assert.equal(code, 0, `${service}: ${output}`);
        assert.equal(output.trim(), "", `${service}: no lint findings`);
      }
    });

    await t.step("a Prometheus server scrapes the three services", async () => {
      await waitFor(() => prometheus.query('count(up{job="campus"} == 1)').then((n) => n === 3), {
        timeoutMs: 30_000,
        what: "Prometheus to scrape all three services",
      });
      const placedNow = sample(await metrics("order"), "campus_orders_placed_total");
      await waitFor(
        () => prometheus.query("sum(campus_orders_placed_total)").then((n) => n === placedNow),
        { timeoutMs: 30_000, what: `Prometheus to answer ${placedNow} orders placed` },
      );
      const rules = await prometheus.ruleNames();
      for (
        const rule of [
          "CampusDeadLetterQueueNotEmpty",
          "CampusOrderPendingTooLong",
          "CampusOutboxGrowing",
          "CampusServiceNotReady",
          "CampusServiceDown",
        ]
      ) assert.ok(rules.includes(rule), `rule ${rule} loaded; got ${rules.join(", ")}`);
      // The dead letter of the step before is in order_placed_dlq: its alert is pending.
      await waitFor(
        async () =>
          (await prometheus.alerts()).some((a) =>
            a.labels.alertname === "CampusDeadLetterQueueNotEmpty" &&
            a.labels.queue === "order_placed_dlq"
          ),
        { timeoutMs: 30_000, what: "the dead-letter alert on order_placed_dlq" },
      );
    });

    await t.step(`each of ${ORDERS} orders is one trace across the services`, async () => {
      for (const { order_id } of placed) await orderTrace(collector.spans, order_id);
    });

    await t.step("an order whose event waited in the outbox keeps its trace", async () => {
      await stack.stopBroker();
      await waitFor(async () => (await readiness(stack, "order")).body.broker === "disconnected", {
        what: "the order service to see the broker gone",
      });
      const order = await placeOrder(stack, { item: "Taco", qty: 1, student_id: "T-outbox" });
      assert.ok(sample(await metrics("order"), "campus_outbox_pending") >= 1, "it waits");
      await stack.startBroker();
      assert.equal((await finalOrder(stack, order.order_id, 60_000)).status, "RESERVED");
      await orderTrace(collector.spans, order.order_id);
      placed.push(order);
    });

    await t.step("every log line about an order names its trace, in each service", async () => {
      for (const { order_id } of [placed[0], placed[placed.length - 1]]) {
        const { traceId } = await orderTrace(collector.spans, order_id);
        for (const service of SERVICE_NAMES) {
          const lines = (await stack.logs(service)).split("\n").flatMap((line) => {
            try {
              const parsed = JSON.parse(line);
              return parsed?.order_id === order_id ? [parsed] : [];
            } catch {
              return [];
            }
          });
          assert.ok(lines.length >= 1, `${service} logged about ${order_id}`);
          for (const line of lines) {
            assert.equal(line.trace_id, traceId, `${service}: "${line.msg}" names the trace`);
          }
        }
      }
    });
  } finally {
    await prometheus.dispose();
    await stack.dispose();
    await collector.close();
  }
});

/** Metric name to type, from the `# TYPE` lines. */
function typesIn(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1], match[2]);
  return types;
}

/** The value of the series `name{labels}`; NaN when the text has no such series. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return NaN;
}

/** Runs promtool with `input` on stdin; returns its exit code and everything it printed. */
async function promtool(args: string[], input: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command("promtool", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, output: decode(stdout) + decode(stderr) };
}

/**
 * Waits until the spans of `orderId` form one trace: `POST /order` at the order service, the
 * publish of `order.placed` under it, its handling at inventory, the publish of the result under
 * that, and the result's handling at notification and at the order service, each a child of the
 * one before. Returns the trace id.
 */
async function orderTrace(
  spans: () => CollectedSpan[],
  orderId: string,
): Promise<{ traceId: string }> {
  let problem = "";
  const found = await waitFor(() => {
    const tagged = spans().filter((s) => s.attributes.order_id === orderId);
    const traceIds = new Set(tagged.map((s) => s.traceId));
    if (traceIds.size !== 1) {
      problem = `${traceIds.size} traces carry order_id ${orderId}`;
      return undefined;
    }
    const [traceId] = traceIds;
    const inTrace = spans().filter((s) => s.traceId === traceId);
    const byId = new Map(inTrace.map((s) => [s.spanId, s]));
    const parentOf = (span: CollectedSpan) => byId.get(span.parentSpanId);
    const find = (service: string, name: RegExp) =>
      inTrace.filter((s) => s.service === service && name.test(s.name));
    const [root] = find("order", /^POST \/order$/);
    const processed = find("inventory", /^process order_placed$/)[0];
    const notified = find("notification", /^process inventory_(reserved|failed)$/)[0];
    const finished = find("order", /^process order_status$/)[0];
    if (!root || !processed || !notified || !finished) {
      problem = `trace ${traceId} has ${inTrace.map((s) => `${s.service}:${s.name}`).join(", ")}`;
      return undefined;
    }
    const published = parentOf(processed);
    const announced = parentOf(notified);
    problem = `trace ${traceId}: parents do not link`;
    if (root.parentSpanId !== "" || published?.name !== "publish order.placed") return undefined;
    if (published.service !== "order" || parentOf(published) !== root) return undefined;
    if (!announced || !/^publish inventory\.(reserved|failed)$/.test(announced.name)) {
      return undefined;
    }
    if (announced.service !== "inventory" || parentOf(announced) !== processed) return undefined;
    if (parentOf(finished) !== announced) return undefined;
    for (const span of [published, processed, announced, notified, finished]) {
      assert.equal(span.attributes["messaging.system"], "rabbitmq");
      assert.equal(span.attributes.order_id, orderId);
      assert.ok(span.attributes["messaging.message.id"], `${span.name} names its message`);
      assert.ok(span.attributes["messaging.destination.name"]);
    }
    assert.equal(published.attributes["messaging.operation"], "publish");
    assert.equal(processed.attributes["messaging.operation"], "process");
    assert.equal(published.kind, 4, "publish is a producer span");
    assert.equal(processed.kind, 5, "process is a consumer span");
    return { traceId };
  }, { timeoutMs: 30_000, what: `one linked trace for order ${orderId}` }).catch((err) => {
    throw new Error(`${err.message}; ${problem}`);
  });
  return found;
}
