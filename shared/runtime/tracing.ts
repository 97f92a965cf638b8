/**
 * Traces through Deno's built-in OpenTelemetry (`OTEL_DENO=true`): messaging spans around each
 * publish and each handled message, and the W3C `traceparent` that carries one order's trace
 * through the outbox and the AMQP headers. Off (the default) every function here returns at once.
 * @module
 */
import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { errorText } from "./redact.ts";
import { TRACEPARENT_HEADER } from "../messaging/contract.ts";

/** A span of Deno's OpenTelemetry, as {@linkcode startMessageSpan} makes it. */
export type TraceSpan = Span;

const tracer = trace.getTracer("campus");
let enabled = false;

/**
 * Switches tracing on or off for this process. Deno's own OpenTelemetry runs only when the
 * process started with `OTEL_DENO=true`; the services switch this on then, so that with it off
 * no span, context or header is ever made.
 */
export function enableTracing(on: boolean): void {
  enabled = on;
}

/** The `traceparent` of the active span; undefined with tracing off or no span active. */
export function activeTraceparent(): string | undefined {
  if (!enabled) return undefined;
  return traceparentIn(context.active());
}

/** The trace id of the active span, for log lines; undefined with tracing off or no span. */
export function activeTraceId(): string | undefined {
  if (!enabled) return undefined;
  return trace.getActiveSpan()?.spanContext().traceId;
}

/** `hook`, bound to run in the context active now (a no-op with tracing off). */
export function bindToActiveContext<T extends (...args: never[]) => unknown>(hook: T): T {
  if (!enabled) return hook;
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
  if (!enabled) return undefined;
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
  const kind = operation === "publish" ? SpanKind.PRODUCER : SpanKind.CONSUMER;
  return tracer.startSpan(name, { kind, attributes }, parentContext(parent));
}

/** Runs `work` with `span` active (plainly when there is no span). */
export function withSpan<T>(span: TraceSpan | undefined, work: () => T): T {
  if (!span) return work();
  return context.with(trace.setSpan(context.active(), span), work);
}

/** Ends `span`, marked failed with `error` when given. */
export function endSpan(span: TraceSpan | undefined, error?: unknown): void {
  if (!span) return;
  if (error !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorText(error) });
    if (error instanceof Error) span.recordException(error);
  }
  span.end();
}

/** The `traceparent` that makes a receiver's span a child of `span`. */
export function traceparentOf(span: TraceSpan | undefined): string | undefined {
  if (!span) return undefined;
  return traceparentIn(trace.setSpan(ROOT_CONTEXT, span));
}

/**
 * Names the server span Deno made for the current request after its route (`POST /order`, never
 * the raw path), as the HTTP conventions ask.
 */
export function nameRequestSpan(method: string, route: string): void {
  if (!enabled) return;
  const span = trace.getActiveSpan();
  if (!span) return;
  span.updateName(`${method} ${route}`);
  span.setAttribute("http.route", route);
}

/** Adds the order id to the active span (the request that placed it). */
export function tagActiveSpan(orderId: string): void {
  if (!enabled) return;
  trace.getActiveSpan()?.setAttribute("order_id", orderId);
}

function parentContext(traceparent: unknown): Context {
  if (typeof traceparent !== "string") return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { [TRACEPARENT_HEADER]: traceparent });
}

function traceparentIn(ctx: Context): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier[TRACEPARENT_HEADER];
}
