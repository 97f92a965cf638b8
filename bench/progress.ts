/** Progress lines on stdout while the benchmark runs: rewritten in place on a terminal. */

const encoder = new TextEncoder();
const terminal = Deno.stdout.isTerminal();

/** Writes one finished line. */
export function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode((terminal ? "\r\x1b[K" : "") + line + "\n"));
}

/**
 * A progress indicator for one phase. On a terminal it rewrites its line as often as it is
 * updated; elsewhere (CI logs) it prints at most one line every few seconds.
 */
export class Progress {
  #last = 0;

  constructor(private readonly label: string, private readonly everyMs = terminal ? 200 : 5000) {}

  /** Shows the current state unless it was shown very recently. */
  update(text: string): void {
    const now = performance.now();
    if (now - this.#last < this.everyMs) return;
    this.#last = now;
    const line = `${this.label.padEnd(12)} ${text}`;
    if (terminal) Deno.stdout.writeSync(encoder.encode("\r\x1b[K" + line));
    else say(line);
  }

  /** Replaces the progress with the phase's result line. */
  done(text: string): void {
    say(`${this.label.padEnd(12)} ${text}`);
  }
}

/** Formats a number with thousands separators: `12,345`. */
export function num(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}
