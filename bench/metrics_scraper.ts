/**
 * A Prometheus stand-in for `deno task bench --observe`: fetches `GET /metrics` of each target
 * every interval, as a scrape config with `scrape_interval: 1s` would, and counts the answers.
 * @module
 */

/** What the scrapes gave. */
export interface ScrapeCount {
  /** Scrapes sent, one per target per interval. */
  scrapes: number;
  /** Scrapes that did not answer `200` with a body (or failed outright). */
  failed: number;
  /** Bytes of the answered exposition texts. */
  bytes: number;
  /** The first few failures, for the report. */
  failures: string[];
}

/** Scrapes `urls` every `intervalMs` from `start()` until `stop()`. */
export class MetricsScraper {
  #count: ScrapeCount = { scrapes: 0, failed: 0, bytes: 0, failures: [] };
  #timer: ReturnType<typeof setInterval> | undefined;
  #pending = new Set<Promise<void>>();

  constructor(private readonly urls: readonly string[], private readonly intervalMs = 1000) {}

  /** Scrapes every target now, then once per interval. */
  start(): void {
    this.#scrapeAll();
    this.#timer ??= setInterval(() => this.#scrapeAll(), this.intervalMs);
  }

  /** Stops scraping, waits for the scrapes under way and returns the count. */
  async stop(): Promise<ScrapeCount> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all(this.#pending);
    return this.#count;
  }

  #scrapeAll(): void {
    for (const url of this.urls) {
      const scrape = this.#scrape(url).finally(() => this.#pending.delete(scrape));
      this.#pending.add(scrape);
    }
  }

  async #scrape(url: string): Promise<void> {
    const count = this.#count;
    count.scrapes++;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.intervalMs * 10) });
      const text = await res.text();
      if (res.status === 200 && text.length > 0) {
        count.bytes += new TextEncoder().encode(text).byteLength;
        return;
      }
      this.#fail(`${url} answered ${res.status}`);
    } catch (err) {
      this.#fail(`${url}: ${(err as Error).message}`);
    }
  }

  #fail(why: string): void {
    this.#count.failed++;
    if (this.#count.failures.length < 5) this.#count.failures.push(why);
  }
}
