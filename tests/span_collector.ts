/**
 * A small OTLP/HTTP receiver for the suites and `deno task bench --observe`
 * (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`): it keeps every span the services export and
 * accepts, and drops, their logs and metrics.
 * @module
 */

/** A span as the suites look at it. */
export interface CollectedSpan {
  /** `service.name` of the process that made it. */
  service: string;
  /** The span's name, e.g. `POST /order`. */
  name: string;
  /** Hex id of the trace the span belongs to. */
  traceId: string;
  /** Hex id of the span. */
  spanId: string;
  /** Empty for the root of a trace. */
  parentSpanId: string;
  /** OTLP span kind: 2 server, 4 producer, 5 consumer. */
  kind: number;
  /** The span's attributes, by key, as plain values. */
  attributes: Record<string, unknown>;
}

/** A running receiver. */
export interface SpanCollector {
  /** Base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  endpoint: string;
  /** Every span received so far. */
  spans(): CollectedSpan[];
  /** Bytes of the trace exports received so far (request bodies, as sent). */
  bytes(): number;
  /** Stops the receiver. */
  close(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}

interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}

interface OtlpTraces {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: {
      spans?: {
        name: string;
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        kind?: number;
        attributes?: OtlpAttribute[];
      }[];
    }[];
  }[];
}

/** Starts a receiver on a free local port. */
export function startSpanCollector(): SpanCollector {
  const spans: CollectedSpan[] = [];
  let bytes = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const body = await req.arrayBuffer().catch(() => undefined);
    if (path === "/v1/traces" && body) {
      bytes += body.byteLength;
      const traces = parse(body);
      if (traces) spans.push(...spansOf(traces));
    }
    return Response.json({});
  });
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    spans: () => spans,
    bytes: () => bytes,
    close: () => server.shutdown(),
  };
}

function parse(body: ArrayBuffer): OtlpTraces | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(body)) as OtlpTraces;
  } catch {
    return undefined;
  }
}

function spansOf(request: OtlpTraces): CollectedSpan[] {
  return (request.resourceSpans ?? []).flatMap((resourceSpans) => {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    const service = String(resource["service.name"] ?? "");
    return (resourceSpans.scopeSpans ?? []).flatMap((scope) =>
      (scope.spans ?? []).map((span) => ({
        service,
        name: span.name,
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId ?? "",
        kind: span.kind ?? 0,
        attributes: attributesOf(span.attributes),
      }))
    );
  });
}

function attributesOf(attributes: OtlpAttribute[] = []): Record<string, unknown> {
  return Object.fromEntries(attributes.map(({ key, value }) => [key, valueOf(value)]));
}

function valueOf(value: OtlpValue): unknown {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  return value.boolValue;
}
