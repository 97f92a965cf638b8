/** A process a suite starts by hand, with everything it prints gathered as it arrives. */
import { waitFor } from "./poll.ts";

/** A started process: its output so far, its status once it ended, and a bounded stop. */
export class WatchedProcess {
  #printed = "";
  #status: Deno.CommandStatus | undefined;
  readonly #reading: Promise<unknown>;

  /** Starts `deno` with `options` (no stdin; stdout and stderr gathered). */
  constructor(options: Omit<Deno.CommandOptions, "stdin" | "stdout" | "stderr">) {
    const child = new Deno.Command(Deno.execPath(), {
      ...options,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    // Both streams are read to the end: a pipe nobody reads fills and blocks the process.
    this.#reading = Promise.all([this.#collect(child.stdout), this.#collect(child.stderr)]);
    child.status.then((status) => this.#status = status);
  }

  /** The process itself (its pid, for `/proc`). */
  readonly child: Deno.ChildProcess;

  /** All it printed so far, stdout and stderr together. */
  output(): string {
    return this.#printed;
  }

  /** How it ended; undefined while it runs. */
  exited(): Deno.CommandStatus | undefined {
    return this.#status;
  }

  /**
   * Sends `signal` unless the process already ended, waits at most `timeoutMs` for it to end
   * and for its output to be read, and returns how it ended.
   */
  async stop(signal: Deno.Signal, timeoutMs = 30_000): Promise<Deno.CommandStatus> {
    if (!this.#status) this.child.kill(signal);
    const status = await waitFor(() => this.#status, {
      timeoutMs,
      what: `the process to stop after ${signal}; it printed:\n${this.#printed.slice(-2000)}`,
    });
    await this.#reading;
    return status;
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) this.#printed += text;
  }
}
