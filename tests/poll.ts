/** Polling with a deadline: how tests wait for the system, never with fixed sleeps. */

/** Options of {@linkcode waitFor}. */
export interface WaitOptions {
  /** Give up after this long. */
  timeoutMs?: number;
  /** What is awaited, for the error message: "order X to be RESERVED". */
  what: string;
  /** Pause between two checks. */
  intervalMs?: number;
}

/**
 * Calls `check` until it returns a truthy value and returns that value; throws naming `what`
 * and the last value seen when the deadline passes.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 20_000, what, intervalMs = 50 }: WaitOptions,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (true) {
    last = await check();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}; last saw ${show(last)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** True when `url` answers a 2xx (and false when nothing listens there yet). */
export async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url);
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.slice(0, 500);
}
