/**
 * `deno task compile`: one self-contained binary per service, with least-privilege permissions
 * baked in. Where the Deno runtime (`denort`) that `deno compile` embeds cannot be had, it fails
 * fast and writes nothing.
 * @module
 */
// deno-lint-ignore-file no-console -- a terminal program: talking to the user is its job
import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { servicePermissions } from "./service_runtime.ts";

import { SERVICE_NAMES, type ServiceName } from "@campus/shared/topology";

/** A service a binary is built for. */
export type CompiledService = ServiceName;

/** The only folder the binaries may read and write, unless `--data-dir` says otherwise. */
export const CONTAINER_DATA_DIR = "/data";

/** Where `deno compile` downloads the runtime it embeds. */
export const RUNTIME_BASE_URL = "https://dl.deno.land";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** Settings of one `deno task compile` run. */
export interface CompileOptions {
  /** Services to build, all by default. */
  services: readonly CompiledService[];
  /** Folder that receives the binaries. */
  outDir: string;
  /** The folder the binaries may read and write (absolute). */
  dataDir: string;
  /** `deno compile --target`; the host's when undefined. */
  target?: string;
}

/** Why the binaries could not be built; the message says what to do. */
export class CompileError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CompileError";
  }
}

/** The `deno` arguments that build `service` into `output`. */
export function compileArgs(
  service: CompiledService,
  output: string,
  { dataDir, target }: Pick<CompileOptions, "dataDir" | "target">,
): string[] {
  return [
    "compile",
    ...servicePermissions(dataDir),
    // The lock also holds test-only packages; embed only what the service imports.
    "--exclude-unused-npm",
    ...(target ? ["--target", target] : []),
    "--output",
    output,
    join(ROOT, "services", service, "main.ts"),
  ];
}

/** File name of a service's binary for `target`. */
export function binaryName(service: CompiledService, target = Deno.build.target): string {
  return target.includes("windows") ? `${service}.exe` : service;
}

/** Whether the runtime for `target` can be had, and from where, or why not. */
export type RuntimeStatus =
  | { available: true; source: string }
  | { available: false; reason: string };

/** Outcome of running `deno` with some arguments. */
export interface DenoRun {
  success: boolean;
  stderr: string;
}

/** What {@linkcode compileServices} needs from the outside world; tests replace it. */
export interface CompileDeps {
  findRuntime(target: string): Promise<RuntimeStatus>;
  runDeno(args: string[]): Promise<DenoRun>;
}

/**
 * Finds the runtime `deno compile` embeds: `DENORT_BIN`, then the copy `deno compile` cached in
 * `DENO_DIR`, then a download it could make (probed with a short timeout, so an unreachable
 * network fails in seconds, not after the download's retries).
 */
export async function findRuntime(
  target: string,
  { timeoutMs = 10_000, env = Deno.env.toObject() } = {},
): Promise<RuntimeStatus> {
  const override = env.DENORT_BIN;
  if (override) {
    return await exists(override)
      ? { available: true, source: `DENORT_BIN=${override}` }
      : { available: false, reason: `DENORT_BIN=${override} does not exist` };
  }
  const suffix = `release/v${Deno.version.deno}/denort-${target}.zip`;
  const denoDir = await cacheFolder();
  if (denoDir && await exists(join(denoDir, "dl", suffix))) {
    return { available: true, source: join(denoDir, "dl", suffix) };
  }
  const url = `${RUNTIME_BASE_URL}/${suffix}`;
  try {
    // Any answer, a redirect included, shows the download host is reachable.
    const res = await fetch(url, {
      method: "HEAD",
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    if (res.status === 404) {
      return { available: false, reason: `${url} answers 404: no runtime for this version` };
    }
    return { available: true, source: url };
  } catch (err) {
    const why = err instanceof Error && err.name === "TimeoutError"
      ? `no answer within ${timeoutMs / 1000} s`
      : rootCause(err);
    return { available: false, reason: `${url} is unreachable (${why})` };
  }
}

/**
 * Builds every binary into a staging folder beside `outDir` and moves them in only when all
 * succeeded, so `outDir` never holds a partial set. Returns the paths of the binaries.
 */
export async function compileServices(
  options: CompileOptions,
  deps: CompileDeps = { findRuntime, runDeno },
): Promise<string[]> {
  const target = options.target ?? Deno.build.target;
  const runtime = await deps.findRuntime(target);
  if (!runtime.available) throw new CompileError(runtimeMessage(target, runtime.reason));

  const parent = dirname(resolve(options.outDir));
  await Deno.mkdir(parent, { recursive: true });
  const staging = await Deno.makeTempDir({ dir: parent, prefix: ".compile-" });
  try {
    for (const service of options.services) {
      const output = join(staging, binaryName(service, target));
      const run = await deps.runDeno(compileArgs(service, output, { ...options, target }));
      if (!run.success) {
        const detail = run.stderr.trim().split("\n").slice(-12).join("\n");
        throw new CompileError(
          /denort|dl\.deno\.land|base binary/i.test(run.stderr)
            ? runtimeMessage(target, detail)
            : `deno compile failed for ${service}; nothing was written to ${options.outDir}:\n${detail}`,
        );
      }
    }
    await Deno.mkdir(options.outDir, { recursive: true });
    const written: string[] = [];
    for (const service of options.services) {
      const name = binaryName(service, target);
      await Deno.rename(join(staging, name), join(options.outDir, name));
      written.push(join(options.outDir, name));
    }
    return written;
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

function runtimeMessage(target: string, reason: string): string {
  return [
    `deno compile needs the Deno runtime (denort ${Deno.version.deno}, ${target}), which it`,
    `downloads from ${RUNTIME_BASE_URL}, and it cannot be had here: ${reason}.`,
    "No binaries were written. Compile where that download works, or set DENORT_BIN to a denort",
    "binary of the same version. Container images need no download with SERVICE_TARGET=source",
    "(`deno run` on the source instead of a binary; see docs/containers.md).",
  ].join("\n");
}

async function runDeno(args: string[]): Promise<DenoRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "inherit",
    stderr: "piped",
  }).output();
  return { success: out.success, stderr: new TextDecoder().decode(out.stderr) };
}

async function cacheFolder(): Promise<string | undefined> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!out.success) return undefined;
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir?: string }).denoDir;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function rootCause(err: unknown): string {
  let cause = err;
  while (cause instanceof Error && cause.cause) cause = cause.cause;
  const text = cause instanceof Error ? cause.message : String(cause);
  return text.replace(/^error sending request for url \([^)]*\): /, "");
}

function parseOptions(args: string[]): CompileOptions {
  const { values } = parseArgs({
    args,
    options: {
      only: { type: "string", multiple: true },
      out: { type: "string", default: join(ROOT, "dist") },
      "data-dir": { type: "string", default: CONTAINER_DATA_DIR },
      target: { type: "string" },
    },
  });
  const services = (values.only ?? [...SERVICE_NAMES]).flatMap((s) => s.split(","));
  for (const service of services) {
    if (!SERVICE_NAMES.includes(service as CompiledService)) {
      throw new CompileError(
        `Unknown service "${service}": choose from ${SERVICE_NAMES.join(", ")}`,
      );
    }
  }
  return {
    services: services as CompiledService[],
    outDir: resolve(values.out),
    // Permission paths are baked as written, so a relative one is pinned here.
    dataDir: resolve(values["data-dir"]),
    target: values.target,
  };
}

if (import.meta.main) {
  try {
    const options = parseOptions(Deno.args);
    const written = await compileServices(options);
    console.log(`Built ${written.join(", ")}`);
    console.log(
      `They read and write only under ${options.dataDir}: run them with DATA_DIR=${options.dataDir}.`,
    );
  } catch (err) {
    console.error(err instanceof CompileError || err instanceof TypeError ? err.message : err);
    Deno.exit(1);
  }
}
