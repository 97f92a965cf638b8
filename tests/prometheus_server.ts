/**
 * A real Prometheus server (Debian's `prometheus` package) for the suites: it runs the shipped
 * `ops/prometheus.yml` and `ops/alerts.yml` against a stack's ports, scraping every second, and
 * answers queries through its HTTP API.
 * @module
 */
import { join } from "node:path";
import { parse, stringify } from "yaml";
import type { ServiceName } from "@campus/shared/topology";
import { freePort } from "../tools/broker_node.ts";
import { appendTo } from "../tools/process_log.ts";
import { waitFor } from "./poll.ts";

const OPS = new URL("../ops/", import.meta.url).pathname;

/** A running Prometheus server. */
export interface PrometheusServer {
  url: string;
  /** The value of an instant query with one result, or undefined without one. */
  query(expr: string): Promise<number | undefined>;
  /** Alerts it evaluates now (pending or firing), from `/api/v1/alerts`. */
  alerts(): Promise<{ labels: Record<string, string>; state: string }[]>;
  /** Rules it loaded, by name. */
  ruleNames(): Promise<string[]>;
  /** What it printed, for failure messages. */
  logs(): Promise<string>;
  dispose(): Promise<void>;
}

interface ScrapeConfig {
  static_configs: { targets: string[]; labels: { service: ServiceName } }[];
}

/** True when the `prometheus` program is on PATH. */
export function hasPrometheus(): boolean {
  try {
    return new Deno.Command("prometheus", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Starts Prometheus with `ops/prometheus.yml`, its targets pointed at `hosts` (`host:port` per
 * service) and its intervals shortened to one second.
 */
export async function startPrometheus(
  hosts: Record<ServiceName, string>,
): Promise<PrometheusServer> {
  const dir = await Deno.makeTempDir({ prefix: "campus-prometheus-" });
  const config = parse(await Deno.readTextFile(join(OPS, "prometheus.yml")));
  config.global = { ...config.global, scrape_interval: "1s", evaluation_interval: "1s" };
  config.rule_files = (config.rule_files as string[]).map((file) => join(OPS, file));
  for (const job of config.scrape_configs as ScrapeConfig[]) {
    for (const target of job.static_configs) target.targets = [hosts[target.labels.service]];
  }
  const configFile = join(dir, "prometheus.yml");
  await Deno.writeTextFile(configFile, stringify(config));
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(dir, "prometheus.log");
  const child = new Deno.Command("prometheus", {
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  appendTo(logFile, child.stdout).catch(() => {});
  appendTo(logFile, child.stderr).catch(() => {});
  const logs = () => Deno.readTextFile(logFile).catch(() => "");
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path);
    const body = await res.json();
    if (body.status !== "success") throw new Error(`Prometheus ${path}: ${JSON.stringify(body)}`);
    return body.data as T;
  };
  const server: PrometheusServer = {
    url,
    async query(expr) {
      const data = await api<{ result: { value: [number, string] }[] }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
      return data.result.length === 1 ? Number(data.result[0].value[1]) : undefined;
    },
    async alerts() {
      return (await api<{ alerts: { labels: Record<string, string>; state: string }[] }>(
        "/api/v1/alerts",
      )).alerts;
    },
    async ruleNames() {
      const data = await api<{ groups: { rules: { name: string }[] }[] }>("/api/v1/rules");
      return data.groups.flatMap((g) => g.rules.map((r) => r.name));
    },
    logs,
    async dispose() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already ended
      }
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await waitFor(async () => {
      try {
        const res = await fetch(`${url}/-/ready`);
        await res.body?.cancel();
        return res.ok;
      } catch {
        return false;
      }
    }, { timeoutMs: 30_000, what: `Prometheus to answer ${url}/-/ready` });
  } catch (err) {
    const printed = await logs();
    await server.dispose();
    throw new Error(`${(err as Error).message}\n${printed.slice(-2000)}`);
  }
  return server;
}
