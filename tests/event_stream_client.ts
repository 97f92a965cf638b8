/** Reading a Server-Sent Events response in tests: one event at a time, with a deadline. */

/** One event of a stream: its name and its data, parsed as JSON. */
export interface StreamEvent {
  event: string;
  data: unknown;
}

/** The events of an open `text/event-stream` response. */
export class EventStreamReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  /** Comment lines seen so far (heartbeats). */
  comments = 0;

  constructor(res: Response) {
    if (!res.body) throw new TypeError("the response has no body");
    this.#reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  }

  /**
   * The next event for which `match` holds, skipping others; throws naming `what` when the
   * stream ends first or `timeoutMs` passes.
   */
  async next(
    what: string,
    match: (event: StreamEvent) => boolean = () => true,
    timeoutMs = 20_000,
  ): Promise<StreamEvent> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.#find(what, match), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves true once the server ends the stream (skipping any events left). */
  async ended(): Promise<boolean> {
    while (true) {
      const { done } = await this.#reader.read();
      if (done) return true;
    }
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }

  async #find(what: string, match: (event: StreamEvent) => boolean): Promise<StreamEvent> {
    while (true) {
      let end: number;
      while ((end = this.#buffer.indexOf("\n\n")) >= 0) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        const event = this.#parse(block);
        if (event && match(event)) return event;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`The stream ended before ${what}`);
      this.#buffer += value;
    }
  }

  #parse(block: string): StreamEvent | undefined {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) this.comments++;
      else if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    return data.length ? { event, data: JSON.parse(data.join("\n")) } : undefined;
  }
}
