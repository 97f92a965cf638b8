/**
 * How a service process runs, in one place for `deno task dev`, `deno task order` (and the other
 * two), the test stack, the benchmark, the compiled binaries and the `source` container images:
 * the permissions it needs and the V8 heap settings.
 * @module
 */
import { type Config, ENV_DEFAULTS, loadConfig, readEnv } from "@campus/shared/config";
import { postgresTarget } from "@campus/shared/postgres_target";
import type { ServiceName } from "@campus/shared/topology";

/**
 * V8 heap settings of a service. Under the benchmark's load the V8 heap stays near 25 MB of a
 * service's 90 to 100 MB resident; most of the rest is the `deno` executable's own pages (about
 * 45 MB) and native allocations. Young-generation semispaces of up to 4 MB, not 1: with 1 MB a
 * service scavenged every few orders, messages still in flight were promoted, and the old space
 * filled and was marked and compacted about once a second (600 scavenges and 15 full
 * collections in the order service for 5,000 orders, against 136 and 5). That cost about 15 %
 * of the services' CPU for 3 to 8 MB of resident memory; 8 MB gained no more and cost 10 MB. A
 * smaller old space, `--optimize-for-size` or `--single-threaded-gc` lowered no peak measurably.
 */
export const SERVICE_V8_FLAGS = "--max-semi-space-size=4,--max-old-space-size=64";

/**
 * The environment variables a service may read, by name: its configuration (`ENV_DEFAULTS`),
 * libpq's `PG*` variables, which the PostgreSQL
 * driver reads itself when it connects (`PGPASSWORD` among them), and the user names it falls
 * back on when `DATABASE_URL` names no user. `OTEL_*` need no permission: Deno reads them
 * before any code runs.
 */
export const SERVICE_ENV: readonly string[] = Object.freeze([
  ...new Set([
    ...Object.keys(ENV_DEFAULTS),
    "PG*",
    "USER",
    "USERNAME",
    "LOGNAME",
  ]),
]);

/**
 * The least-privilege permissions (and V8 heap settings) of a service: files only under
 * `dataDir` (the SQLite database; the pages are bundled into the code), the environment
 * variables of {@linkcode SERVICE_ENV}, no subprocesses, no system information, and the network:
 * only the `host:port` pairs of `net` when given (see {@linkcode serviceNetwork}; none for an
 * empty list), or any host when not, as for a binary whose broker and database are named at run
 * time. `sockets` are Unix sockets it may connect to (a `DATABASE_URL` naming one): besides the
 * socket's `unix:` address in `net`, Deno asks for reading and writing its file.
 */
export function servicePermissions(
  dataDir: string,
  net?: readonly string[],
  sockets: readonly string[] = [],
): string[] {
  const files = [dataDir, ...sockets].join(",");
  return [
    // An empty list means no network: `--allow-net=` itself would be refused.
    ...(net === undefined
      ? ["--allow-net"]
      : net.length > 0
      ? [`--allow-net=${net.join(",")}`]
      : []),
    `--allow-env=${SERVICE_ENV.join(",")}`,
    `--allow-read=${files}`,
    `--allow-write=${files}`,
    "--no-prompt",
    `--v8-flags=${SERVICE_V8_FLAGS}`,
  ];
}

/**
 * The `host:port` pairs a service with `config` uses: where it listens, each broker node, its
 * PostgreSQL server, and for the order service the inventory service. Undefined when one of them
 * cannot be told from the configuration (a database reached over a Unix socket or by `PGHOST`),
 * which leaves the network open.
 */
export function serviceNetwork(config: Readonly<Config>): string[] | undefined {
  const pairs = new Set<string>();
  const add = (host: string, port: number | string) => pairs.add(`${bracketed(host)}:${port}`);
  // Port 0 asks the system for a free port, which no permission can name in advance.
  if (config.port === 0) return undefined;
  add(config.host, config.port);
  for (const url of config.amqpUrls) {
    const parsed = URL.parse(url);
    if (!parsed?.hostname) return undefined;
    add(parsed.hostname, parsed.port || (parsed.protocol === "amqps:" ? 5671 : 5672));
  }
  const socket = config.databaseUrl ? postgresTarget(config.databaseUrl).socket : undefined;
  // Deno grants a Unix socket as a network address of its own (and its file, see below).
  if (socket) pairs.add(`unix:${socket}`);
  else if (config.databaseUrl) {
    // Several hosts in one URL (`h1:5432,h2:5432`) do not parse: the network stays open.
    const parsed = URL.parse(config.databaseUrl);
    if (!parsed?.hostname || parsed.searchParams.has("host")) return undefined;
    // Without a port in the URL the driver takes PGPORT, or 5432: any port of that host.
    if (parsed.port) add(parsed.hostname, parsed.port);
    else pairs.add(bracketed(parsed.hostname));
  }
  if (config.service === "order") {
    const parsed = URL.parse(config.inventoryUrl);
    if (!parsed?.hostname) return undefined;
    add(parsed.hostname, parsed.port || (parsed.protocol === "https:" ? 443 : 80));
  }
  return [...pairs];
}

/**
 * `deno run` arguments that start `services/<service>/main.ts` below `root` in a child process
 * given `env` on top of this process's environment, with the permissions of
 * {@linkcode servicePermissions}: its `DATA_DIR` and the hosts its configuration names. A
 * configuration that does not load gets the data folder alone, and the service then stops
 * saying what is wrong.
 */
export function serviceRunArgs(
  root: string,
  service: ServiceName,
  env: Record<string, string | undefined> = {},
): string[] {
  const seen = { ...readEnv(), ...env };
  let config: Readonly<Config> | undefined;
  try {
    config = loadConfig(service, seen);
  } catch {
    // The service reports the bad variable itself.
  }
  const dataDir = config?.dataDir ?? (seen.DATA_DIR || ENV_DEFAULTS.DATA_DIR);
  const net = config ? serviceNetwork(config) : [];
  const socket = config?.databaseUrl ? postgresTarget(config.databaseUrl).socket : undefined;
  return [
    "run",
    ...servicePermissions(dataDir, net, socket ? [socket] : []),
    serviceMain(root, service),
  ];
}

/**
 * `deno run` arguments of a `source` image: the service below `root` on the dependencies the
 * image build cached (`--cached-only`: nothing is fetched at start), with the permissions of
 * {@linkcode servicePermissions}.
 */
export function sourceRunArgs(root: string, service: string, dataDir: string): string[] {
  return ["run", "--cached-only", ...servicePermissions(dataDir), serviceMain(root, service)];
}

/**
 * The entry program of a `source` image: a shell script that `exec`s `deno`, so the service
 * itself is PID 1 and receives the container's SIGTERM.
 */
export function sourceEntryScript(
  deno: string,
  root: string,
  service: string,
  dataDir: string,
): string {
  const quoted = [deno, ...sourceRunArgs(root, service, dataDir)].map((a) => `'${a}'`);
  return [
    "#!/bin/sh",
    `# The ${service} service from source, on the dependencies cached when the image was built.`,
    `exec ${quoted.join(" ")} "$@"`,
    "",
  ].join("\n");
}

function serviceMain(root: string, service: string): string {
  return `${root.replace(/\/$/, "")}/services/${service}/main.ts`;
}

/** An IPv6 address in the brackets a permission's `host:port` needs. */
function bracketed(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
