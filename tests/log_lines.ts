/** A service's JSON log lines, as the suites read them back from its output. */
import { waitFor } from "./poll.ts";
import type { ServiceName, Stack } from "./stack.ts";

/** A parsed log line. */
export type LogLine = Record<string, unknown> & { level: string; msg: string };

/** The JSON lines a service logged (anything else it printed is skipped). */
export async function logLines(stack: Stack, service: ServiceName): Promise<LogLine[]> {
  return (await stack.logs(service)).split("\n").flatMap((line) => {
    try {
      const parsed = JSON.parse(line);
      return typeof parsed?.msg === "string" ? [parsed as LogLine] : [];
    } catch {
      return [];
    }
  });
}

/** Waits until `service` logged a line with `msg` for `orderId`, and returns it. */
export async function lineFor(
  stack: Stack,
  service: ServiceName,
  msg: string,
  orderId: string,
): Promise<LogLine> {
  return await waitFor(
    async () =>
      (await logLines(stack, service)).find((l) => l.msg === msg && l.order_id === orderId),
    { what: `${service} to log "${msg}" for ${orderId}` },
  );
}
