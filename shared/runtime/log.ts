/**
 * Structured logging: one JSON object per line on stderr, so logs stay machine-readable and
 * stdout stays free. The only module that writes to the console.
 * @module
 */
import { errorText, redactSecrets, redactText } from "./redact.ts";
import { activeTraceId } from "./tracing.ts";

// Part of the logger's API; it lives beside the masking it applies, which tracing uses too.
export { errorText };

/** Severity of a log line. */
export type Level = "debug" | "info" | "warn" | "error";

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger bound to a service name and a minimum level. */
export interface Logger {
  /** Logs detail only worth seeing while debugging. */
  debug(msg: string, fields?: Record<string, unknown>): void;
  /** Logs a business event: an order placed, stock reserved, a status changed. */
  info(msg: string, fields?: Record<string, unknown>): void;
  /** Logs something that went wrong and was handled: a duplicate, a dead letter. */
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** Logs a failure that needs a person's attention. */
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Where finished lines go; stderr unless a test says otherwise. */
export type LogSink = (text: string) => void;

/**
 * Creates a logger that writes lines at `level` and above. Lines are buffered and written
 * together once the current turn of the event loop is done (a synchronous write per line cost
 * five times the work of building it); a `warn` or `error` line is written at once, after the
 * lines before it. Nothing buffered is lost when the process exits normally or by `Deno.exit`.
 * With tracing on, a line written inside a span carries its `trace_id`.
 *
 * Every line passes {@linkcode redactSecrets} on its way out, the last line of defence for a
 * secret some message quotes: passwords in URLs, tokens, and each of `secrets` (the
 * configuration's, from `Config.secrets`) are masked.
 */
export function createLogger(
  service: string,
  level: Level = "info",
  sink: LogSink = writeStderr,
  secrets: readonly string[] = [],
): Logger {
  const min = RANK[level];
  const buffer = bufferFor(sink);
  const write = (lvl: Level) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (RANK[lvl] < min) return;
    // With tracing on, a line written while a span is active names its trace.
    const trace_id = activeTraceId();
    const record = { ts: new Date().toISOString(), level: lvl, service, msg, ...fields };
    const line = format(trace_id === undefined ? record : { ...record, trace_id });
    buffer.add(redactSecrets(line, secrets));
    if (RANK[lvl] >= RANK.warn) buffer.flush();
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

/** `msg` of the line {@linkcode surviveUncaught} logs for a rejection no code handled. */
export const UNHANDLED_REJECTION = "unhandled rejection";

/** `msg` of the line {@linkcode surviveUncaught} logs for an error thrown where nothing catches. */
export const UNCAUGHT_ERROR = "uncaught error";

/**
 * The last line of defence of a process that must not end because one background task forgot
 * a `catch`: a promise rejection or an error that no code handled is logged at `error` with its
 * stack ({@linkcode UNHANDLED_REJECTION}, {@linkcode UNCAUGHT_ERROR}), and the process goes on.
 * Such a line is a fault to fix, not a way of working: the test suites fail on it. Returns what
 * removes the listeners.
 */
export function surviveUncaught(log: Logger): () => void {
  const report = (msg: string, cause: unknown) =>
    log.error(msg, {
      error: errorText(cause),
      stack: cause instanceof Error && cause.stack ? redactText(cause.stack) : undefined,
    });
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    report(UNHANDLED_REJECTION, event.reason);
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    report(UNCAUGHT_ERROR, event.error ?? event.message);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}

/** Lines waiting for the end of the turn, one buffer per sink so that they stay in order. */
interface LineBuffer {
  add(line: string): void;
  flush(): void;
}

const buffers = new Map<LogSink, LineBuffer>();

function bufferFor(sink: LogSink): LineBuffer {
  let buffer = buffers.get(sink);
  if (buffer) return buffer;
  let lines: string[] = [];
  const flush = () => {
    if (lines.length === 0) return;
    const text = lines.join("\n") + "\n";
    lines = [];
    sink(text);
  };
  buffer = {
    add(line) {
      if (lines.length === 0) queueMicrotask(flush);
      lines.push(line);
    },
    flush,
  };
  buffers.set(sink, buffer);
  if (buffers.size === 1) {
    // `Deno.exit` skips pending microtasks but dispatches "unload"; an uncaught error
    // dispatches "error" or "unhandledrejection" before the process ends.
    for (const event of ["unload", "error", "unhandledrejection"]) {
      globalThis.addEventListener(event, flushAll);
    }
  }
  return buffer;
}

function flushAll(): void {
  for (const buffer of buffers.values()) buffer.flush();
}

/** A log line never throws: a field JSON cannot hold (a BigInt, a cycle) is written as text. */
function format(record: Record<string, unknown>): string {
  try {
    return JSON.stringify(record);
  } catch {
    return JSON.stringify(
      Object.fromEntries(Object.entries(record).map(([k, v]) => [k, safeValue(v)])),
    );
  }
}

function safeValue(value: unknown): unknown {
  try {
    JSON.stringify(value);
    return value;
  } catch {
    return String(value);
  }
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  let bytes = encoder.encode(text);
  try {
    while (bytes.byteLength > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
  } catch {
    // stderr is closed: there is nowhere left to report anything.
  }
}
