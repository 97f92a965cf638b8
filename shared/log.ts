/**
 * Structured logging: one JSON object per line on stderr, so logs stay machine-readable and
 * stdout stays free. The only module allowed to use `console`.
 * @module
 */

/** Severity of a log line. */
export type Level = "debug" | "info" | "warn" | "error";

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger bound to a service name and a minimum level. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Creates a logger that writes lines at `level` and above. */
export function createLogger(service: string, level: Level = "info"): Logger {
  const min = RANK[level];
  const write = (lvl: Level) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (RANK[lvl] < min) return;
    const line = JSON.stringify({
      ts: new Date().toISOString(),
      level: lvl,
      service,
      msg,
      ...fields,
    });
    // deno-lint-ignore no-console
    console.error(line);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

/** Text of an unknown thrown value. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
