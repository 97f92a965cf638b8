/**
 * `deno task test:docs`: documentation is checked like code. First `deno doc --lint` on every
 * public API of the workspace: the `exports` of each workspace member (shared/, services/*) and
 * the `@campus/testing/*` entries of the root import map (testing/). Then every JSDoc example
 * of shared/ runs as a test with `deno test --doc`. Exits non-zero when either fails.
 *
 * Each API is linted as a package, as `deno doc` documents it: a type is public when one of its
 * entries exports it. The services and testing/ are linted together with shared/'s entries, as
 * the types they take from `@campus/shared` are documented there.
 * @module
 */
// deno-lint-ignore-file no-console -- a terminal program: its output is the point

import { relative } from "node:path";

const root = new URL("../", import.meta.url);

/** One public API: a name, and the entry files that make it up. */
interface Api {
  name: string;
  entries: string[];
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(new URL(path, root))) as T;
}

/** The entry files of a workspace member, from the `exports` of its deno.json. */
async function memberEntries(member: string): Promise<string[]> {
  const { exports } = await readJson<{ exports?: string | Record<string, string> }>(
    `${member}/deno.json`,
  );
  const paths = typeof exports === "string" ? [exports] : Object.values(exports ?? {});
  return [...new Set(paths.map((path) => new URL(path, new URL(`${member}/`, root)).pathname))];
}

/** Every public API of the workspace; shared/ first, as the others are linted with it. */
async function publicApis(): Promise<Api[]> {
  const config = await readJson<{ workspace: string[]; imports: Record<string, string> }>(
    "deno.json",
  );
  const shared = await memberEntries("shared");
  const apis: Api[] = [{ name: "shared", entries: shared }];
  for (const member of config.workspace.filter((m) => m !== "shared")) {
    apis.push({ name: member, entries: [...await memberEntries(member), ...shared] });
  }
  const testing = Object.entries(config.imports)
    .filter(([specifier]) => specifier.startsWith("@campus/testing/"))
    .map(([, path]) => new URL(path, root).pathname);
  apis.push({ name: "testing", entries: [...testing, ...shared] });
  return apis;
}

/** A diagnostic of `deno doc --lint`: its text, and the file it points at. */
export interface Diagnostic {
  /** The diagnostic as printed, from its `error[...]` line on. */
  text: string;
  /** The file it points at, relative to the repository; undefined when it names none. */
  file?: string;
}

/** Splits `deno doc --lint` output (without colours) into its diagnostics. */
export function parseDiagnostics(output: string, rootPath: string): Diagnostic[] {
  const found: Diagnostic[] = [];
  for (const block of output.split(/^(?=error\[)/m).filter((b) => b.startsWith("error["))) {
    // The closing "error: Found N documentation lint errors." is a summary, not a diagnostic.
    const text = block.split(/^error: Found /m)[0].trimEnd();
    const at = /^\s*--> (.+?):\d+:\d+$/m.exec(text)?.[1];
    found.push({ text, file: at === undefined ? undefined : relative(rootPath, at) });
  }
  return found;
}

/** Lints one API; returns its diagnostics. Throws when `deno doc` failed without any. */
async function lint(api: Api): Promise<Diagnostic[]> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    // Quiet: it would warn about every Node built-in that amqplib's types mention.
    args: ["doc", "--quiet", "--lint", ...api.entries],
    cwd: root.pathname,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  const diagnostics = parseDiagnostics(output, root.pathname);
  // A module that does not resolve fails the run without a diagnostic to show for it.
  if (code !== 0 && diagnostics.length === 0) {
    throw new Error(`deno doc --lint failed on ${api.name} (exit code ${code}):\n${output}`);
  }
  return diagnostics;
}

if (import.meta.main) {
  let failed = 0;
  const seen = new Set<string>();
  for (const api of await publicApis()) {
    for (const diagnostic of await lint(api)) {
      // shared/'s own diagnostics come back with every API linted beside it; count them once.
      if (seen.has(diagnostic.text)) continue;
      seen.add(diagnostic.text);
      console.error(`${diagnostic.text}\n`);
      failed++;
    }
  }
  if (failed > 0) {
    console.error(`deno doc --lint: ${failed} diagnostic(s) on the public APIs`);
    Deno.exit(1);
  }
  console.log("deno doc --lint: the public APIs are clean");

  // Private modules (`_*.ts`) may carry examples too; test files have none worth running twice.
  const shared = new URL("shared/", root);
  const modules: string[] = [];
  const collect = async (dir: URL): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory) await collect(new URL(`${entry.name}/`, dir));
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
        modules.push(new URL(entry.name, dir).pathname);
      }
    }
  };
  await collect(shared);
  modules.sort();
  // TAP prints no "ok | N passed | N failed" summary: .ci/run reads the last such line of
  // `deno task test` as the suite's, and a suite that stopped before its summary must not
  // borrow this one.
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--doc", "--no-prompt", "--allow-env", "--reporter=tap", ...modules],
  }).spawn().status;
  if (code !== 0) {
    console.error(`deno test --doc failed on shared/ (exit code ${code})`);
    Deno.exit(code);
  }
}
