/**
 * Traces through Deno's built-in OpenTelemetry (`OTEL_DENO=true`): messaging spans around each
 * publish and each handled message, and the W3C `traceparent` that carries one order's trace
 * through the outbox and the AMQP headers. Off (the default) every function here returns at once.
 * @module
 */
import type * as OpenTelemetry from "@opentelemetry/api";
import type { Attributes, Context, Span } from "@opentelemetry/api";
import { errorText } from "./redact.ts";
import { TRACEPARENT_HEADER } from "../messaging/contract.ts";

/** A span of Deno's OpenTelemetry, as {@linkcode startMessageSpan} makes it. */
export type TraceSpan = Span;

/** The OpenTelemetry API and the project's tracer, loaded once tracing is switched on. */
interface Tracing {
  api: typeof OpenTelemetry;
  tracer: OpenTelemetry.Tracer;
}

/** Set while tracing is on; a process that never traces never loads the API. */
let tracing: Tracing | undefined;
/** The API once loaded; kept when tracing is switched off, for the spans already made. */
let loaded: Tracing | undefined;

/**
 * Switches tracing on or off for this process. Deno's own OpenTelemetry runs only when the
 * process started with `OTEL_DENO=true`; the services switch this on then, so that with it off
 * no span, context or header is ever made, and the OpenTelemetry API is not even loaded.
 */
export async function enableTracing(on: boolean): Promise<void> {
  if (on && !loaded) {
    const api = await import("@opentelemetry/api");
    loaded = { api, tracer: api.trace.getTracer("campus") };
  }
  tracing = on ? loaded : undefined;
}

/** The `traceparent` of the active span; undefined with tracing off or no span active. */
export function activeTraceparent(): string | undefined {
  if (!tracing) return undefined;
  return traceparentIn(tracing, tracing.api.context.active());
}

/** The trace id of the active span, for log lines; undefined with tracing off or no span. */
export function activeTraceId(): string | undefined {
  return tracing?.api.trace.getActiveSpan()?.spanContext().traceId;
}

/** `hook`, bound to run in the context active now (a no-op with tracing off). */
export function bindToActiveContext<T extends (...args: never[]) => unknown>(hook: T): T {
  if (!tracing) return hook;
  const { context } = tracing.api;
  return context.bind(context.active(), hook);
}

/** What a messaging span is about. */
export interface MessageSpan {
  /** `publish` (the relay or a copy sent) or `process` (a consumer handling a delivery). */
  operation: "publish" | "process";
  /** The exchange published to, or the queue consumed from. */
  destination: string;
  /** The routing key the message was (or is being) published with. */
  routingKey: string;
  /** The message's AMQP `message_id`, when it has one. */
  messageId?: string;
  /** The order the message is about (its correlation id). */
  orderId?: string;
  /** The `traceparent` of the message's cause; without one the span starts a new trace. */
  parent?: unknown;
}

/**
 * Starts a span after the OpenTelemetry messaging conventions: `publish order.placed` (a
 * producer span) or `process order_placed` (a consumer span), child of `parent`. Undefined
 * with tracing off.
 */
export function startMessageSpan(message: MessageSpan): TraceSpan | undefined {
  if (!tracing) return undefined;
  const { api, tracer } = tracing;
  const { operation, destination, routingKey, messageId, orderId, parent } = message;
  const attributes: Attributes = {
    "messaging.system": "rabbitmq",
    "messaging.operation": operation,
    "messaging.operation.type": operation,
    "messaging.destination.name": destination,
    "messaging.rabbitmq.destination.routing_key": routingKey,
  };
  if (messageId !== undefined) attributes["messaging.message.id"] = messageId;
  if (orderId !== undefined) {
    attributes["messaging.message.conversation_id"] = orderId;
    attributes.order_id = orderId;
  }
  const name = `${operation} ${operation === "publish" ? routingKey : destination}`;
  const kind = operation === "publish" ? api.SpanKind.PRODUCER : api.SpanKind.CONSUMER;
  return tracer.startSpan(name, { kind, attributes }, parentContext(tracing, parent));
}

/** Runs `work` with `span` active (plainly when there is no span). */
export function withSpan<T>(span: TraceSpan | undefined, work: () => T): T {
  if (!span || !loaded) return work();
  const { context, trace } = loaded.api;
  return context.with(trace.setSpan(context.active(), span), work);
}

/** Ends `span`, marked failed with `error` when given. */
export function endSpan(span: TraceSpan | undefined, error?: unknown): void {
  if (!span) return;
  // A span comes only from the API, so it is loaded.
  if (error !== undefined && loaded) {
    span.setStatus({ code: loaded.api.SpanStatusCode.ERROR, message: errorText(error) });
    if (error instanceof Error) span.recordException(error);
  }
  span.end();
}

/** The `traceparent` that makes a receiver's span a child of `span`. */
export function traceparentOf(span: TraceSpan | undefined): string | undefined {
  if (!span || !loaded) return undefined;
  return traceparentIn(loaded, loaded.api.trace.setSpan(loaded.api.ROOT_CONTEXT, span));
}

/**
 * Names the server span Deno made for the current request after its route (`POST /order`, never
 * the raw path), as the HTTP conventions ask.
 */
export function nameRequestSpan(method: string, route: string): void {
  const span = tracing?.api.trace.getActiveSpan();
  if (!span) return;
  span.updateName(`${method} ${route}`);
  span.setAttribute("http.route", route);
}

/** Adds the order id to the active span (the request that placed it). */
export function tagActiveSpan(orderId: string): void {
  tracing?.api.trace.getActiveSpan()?.setAttribute("order_id", orderId);
}

function parentContext({ api }: Tracing, traceparent: unknown): Context {
  if (typeof traceparent !== "string") return api.ROOT_CONTEXT;
  return api.propagation.extract(api.ROOT_CONTEXT, { [TRACEPARENT_HEADER]: traceparent });
}

function traceparentIn({ api }: Tracing, ctx: Context): string | undefined {
  const carrier: Record<string, string> = {};
  api.propagation.inject(ctx, carrier);
  return carrier[TRACEPARENT_HEADER];
}
