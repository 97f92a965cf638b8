/**
 * `deno task test:docs`: the documentation of `shared/` is checked like code. `deno doc --lint`
 * on its public API (the `exports` of shared/deno.json), then every JSDoc example of shared/ run
 * as a test with `deno test --doc`. Exits non-zero when either fails.
 * @module
 */
// deno-lint-ignore-file no-console -- a terminal program: its output is the point

const shared = new URL("../shared/", import.meta.url);

const { exports } = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", shared)),
) as { exports: Record<string, string> };
const entries = Object.values(exports).map((path) => new URL(path, shared).pathname);

// Private modules (`_*.ts`) may carry examples too; test files have none worth running twice.
const modules: string[] = [];
async function collect(dir: URL): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) await collect(new URL(`${entry.name}/`, dir));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
      modules.push(new URL(entry.name, dir).pathname);
    }
  }
}
await collect(shared);
modules.sort();

for (
  const [what, args] of [
    // Quiet: it would warn about every Node built-in that amqplib's types mention; lint errors
    // still print.
    ["deno doc --lint", ["doc", "--quiet", "--lint", ...entries]],
    // TAP prints no "ok | N passed | N failed" summary: .ci/run reads the last such line of
    // `deno task test` as the suite's, and a suite that stopped before its summary must not
    // borrow this one.
    ["deno test --doc", [
      "test",
      "--doc",
      "--no-prompt",
      "--allow-env",
      "--reporter=tap",
      ...modules,
    ]],
  ] as const
) {
  const { code } = await new Deno.Command(Deno.execPath(), { args: [...args] }).spawn().status;
  if (code !== 0) {
    console.error(`${what} failed on shared/ (exit code ${code})`);
    Deno.exit(code);
  }
}
