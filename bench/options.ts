/** Command-line options of `deno task bench`, parsed and validated with every default here. */
import { parseArgs } from "node:util";

/** What one benchmark run measures and where it writes its results. */
export interface BenchOptions {
  /** Orders placed at each concurrency level. */
  orders: number;
  /** Concurrency levels of the end-to-end phase, each a separate round of `orders` orders. */
  concurrency: number[];
  /** Orders placed while inventory is stopped, then drained. */
  backlog: number;
  /** Messages of the broker-ceiling measurement. */
  ceilingMessages: number;
  /** Folder receiving `<date>.json` and `<date>.md`. */
  out: string;
  /** Also write the Markdown report to `bench/BASELINE.md`. */
  baseline: boolean;
  /** The small CI smoke run. */
  quick: boolean;
  /** A remark for the report, e.g. that the machine was shared while measuring. */
  note: string;
  /**
   * `sqlite`: the full run above. `postgres`: the replica comparison instead, one round per
   * count in `replicas` with that many inventory replicas on PostgreSQL, after a round on SQLite.
   */
  store: "sqlite" | "postgres";
  /** Inventory replicas of each PostgreSQL round. */
  replicas: number[];
  /**
   * The observability comparison instead of the full run: `orders` orders at the highest
   * concurrency, plain, with `/metrics` scraped every second, traced, and plain again, each on
   * a fresh stack.
   */
  observe: boolean;
  /** Where each service writes a V8 CPU profile, summed by function group after the run. */
  profile?: string;
}

/** Usage text for `--help`. */
export const USAGE = `deno task bench [options]

  --orders N          orders per concurrency level (default 5000; quick 200)
  --concurrency A,B   concurrency levels of the end-to-end phase (default 1,32,64; quick 1,16)
  --backlog N         orders drained after an inventory outage (default 10000; quick 500)
  --ceiling N         messages for the broker ceiling (default 20000; quick 2000)
  --out DIR           where <date>.json and <date>.md go (default bench/results)
  --baseline          also write the report to bench/BASELINE.md
  --note TEXT         a remark for the report (e.g. "machine shared with other work")
  --quick             a small run that checks correctness, for CI
  --store postgres    compare replicas instead: a round on SQLite, then one on PostgreSQL for
                      each count of --replicas, --orders orders at the highest --concurrency;
                      with --baseline it writes its section of bench/BASELINE.md
  --replicas A,B      inventory replicas of the PostgreSQL rounds (default 1,2,3)
  --observe           measure what observing costs instead: --orders orders at the highest
                      --concurrency on a fresh stack each, plain (tracing off, no scrapes),
                      scraped (GET /metrics of every service each second), traced
                      (OTEL_DENO=true, spans exported to a receiver in the benchmark) and
                      plain again; with --baseline it writes its section of bench/BASELINE.md
  --profile DIR       run each service with --cpu-prof into DIR and report where its CPU went
                      over the single-item rounds, by function group
  --help              this text
`;

const ROOT = new URL("..", import.meta.url).pathname;

const FULL = { orders: 5000, concurrency: [1, 32, 64], backlog: 10_000, ceilingMessages: 20_000 };
const QUICK = { orders: 200, concurrency: [1, 16], backlog: 500, ceilingMessages: 2000 };

/**
 * Parses `args`; returns undefined for `--help`. Throws `TypeError` naming a bad option.
 * @example
 * ```ts
 * parseOptions(["--quick", "--orders", "50"])?.orders; // 50
 * ```
 */
export function parseOptions(args: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      orders: { type: "string" },
      concurrency: { type: "string" },
      backlog: { type: "string" },
      ceiling: { type: "string" },
      out: { type: "string" },
      baseline: { type: "boolean", default: false },
      note: { type: "string", default: "" },
      quick: { type: "boolean", default: false },
      store: { type: "string", default: "sqlite" },
      replicas: { type: "string" },
      observe: { type: "boolean", default: false },
      profile: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return undefined;
  const base = values.quick ? QUICK : FULL;
  if (values.store !== "sqlite" && values.store !== "postgres") {
    throw new TypeError(`--store must be sqlite or postgres, got "${values.store}"`);
  }
  if (values.replicas !== undefined && values.store !== "postgres") {
    throw new TypeError("--replicas needs --store postgres: replicas share a database");
  }
  if (values.observe && values.store !== "sqlite") {
    throw new TypeError("--observe runs on SQLite: leave out --store postgres");
  }
  return {
    orders: count("--orders", values.orders, base.orders, 1),
    concurrency: values.concurrency === undefined
      ? base.concurrency
      : values.concurrency.split(",").map((c) => count("--concurrency", c.trim(), 0, 1, 1024)),
    backlog: count("--backlog", values.backlog, base.backlog, 0),
    ceilingMessages: count("--ceiling", values.ceiling, base.ceilingMessages, 0),
    out: values.out ?? `${ROOT}bench/results`,
    baseline: values.baseline,
    quick: values.quick,
    note: values.note,
    store: values.store,
    replicas: values.replicas === undefined
      ? [1, 2, 3]
      : values.replicas.split(",").map((n) => count("--replicas", n.trim(), 0, 1, 16)),
    observe: values.observe,
    ...(values.profile ? { profile: values.profile } : {}),
  };
}

function count(
  name: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max = 10_000_000,
): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return value;
}
