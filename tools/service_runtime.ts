/**
 * How a service process runs, in one place for `deno task dev`, the test stack, the benchmark,
 * the compiled binaries and the `source` container images: the permissions it needs and the V8
 * heap settings.
 * @module
 */

/**
 * V8 heap settings of a service. Small young-generation semispaces and a bounded old space
 * make V8 collect early instead of growing: it keeps a service near 80 MB of resident memory
 * under load at no measurable cost in throughput.
 */
export const SERVICE_V8_FLAGS = "--max-semi-space-size=1,--max-old-space-size=64";

/** `deno run` arguments that start `services/<service>/main.ts` below `root`. */
export function serviceRunArgs(root: string, service: string): string[] {
  return [
    "run",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-write",
    `--v8-flags=${SERVICE_V8_FLAGS}`,
    serviceMain(root, service),
  ];
}

/**
 * The least-privilege permissions (and V8 heap settings) of a deployed service: network (broker,
 * HTTP), environment (configuration) and files only under `dataDir` (the SQLite database).
 * Nothing else: no `-A`, no subprocesses. The compiled binaries and the `source` images share them.
 */
export function servicePermissions(dataDir: string): string[] {
  return [
    "--allow-net",
    "--allow-env",
    `--allow-read=${dataDir}`,
    `--allow-write=${dataDir}`,
    "--no-prompt",
    `--v8-flags=${SERVICE_V8_FLAGS}`,
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
