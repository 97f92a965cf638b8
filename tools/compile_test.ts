/**
 * tools/compile.ts: the permissions baked into the binaries, and all-or-nothing output, with a
 * stand-in for `deno compile`. The run of `deno task compile` itself is tests/compile_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SERVICE_NAMES } from "@campus/shared/topology";
import {
  compileArgs,
  type CompileDeps,
  CompileError,
  type CompileOptions,
  compileServices,
} from "./compile.ts";
import { SERVICE_ENV } from "./service_runtime.ts";

import { entries, inTempDir } from "./_temp_dir.ts";
const ROOT = new URL("..", import.meta.url).pathname;

/** `deno compile` stand-in: writes the binary for services in `succeed`, fails for others. */
function fakeDeno(succeed: readonly string[], stderr = "error: type check failed"): CompileDeps {
  return {
    findRuntime: () => Promise.resolve({ available: true, source: "test" }),
    async runDeno(args) {
      const output = args[args.indexOf("--output") + 1];
      const service = args.at(-1)!.split("/").at(-2)!;
      if (!succeed.includes(service)) return { success: false, stderr };
      await Deno.writeTextFile(output, `binary of ${service}`);
      return { success: true, stderr: "" };
    },
  };
}

const options = (dir: string): CompileOptions => ({
  services: SERVICE_NAMES,
  outDir: join(dir, "dist"),
  dataDir: "/data",
});

Deno.test("the binaries may use the network, their variables and only the data folder", () => {
  const args = compileArgs("inventory", "/out/inventory", { dataDir: "/data" });
  const permissions = args.filter((a) => /^-(A|-allow|-deny|-no-prompt)/.test(a)).sort();
  assert.deepEqual(permissions, [
    `--allow-env=${SERVICE_ENV.join(",")}`,
    // The broker, database and listening address are named at run time, by the environment.
    "--allow-net",
    "--allow-read=/data",
    "--allow-write=/data",
    "--no-prompt",
  ]);
  for (const name of ["AMQP_URL", "DATABASE_URL", "DATA_DIR", "AUTH_SECRET", "ORDER_RATE_LIMIT"]) {
    assert.ok(SERVICE_ENV.includes(name), `${name} may be read`);
  }
  assert.equal(args[0], "compile");
  assert.equal(args.at(-1), join(ROOT, "services", "inventory", "main.ts"));
  assert.deepEqual(args.slice(args.indexOf("--output"), args.indexOf("--output") + 2), [
    "--output",
    "/out/inventory",
  ]);
});

Deno.test("compile writes nothing when the runtime cannot be had", async () => {
  await inTempDir(async (dir) => {
    let compiled = 0;
    const deps: CompileDeps = {
      findRuntime: () => Promise.resolve({ available: false, reason: "offline" }),
      runDeno: () => {
        compiled++;
        return Promise.resolve({ success: true, stderr: "" });
      },
    };
    await assert.rejects(
      compileServices(options(dir), deps),
      (err: Error) => err instanceof CompileError && /Deno runtime \(denort/.test(err.message),
    );
    assert.equal(compiled, 0, "no deno compile was started");
    assert.deepEqual(await entries(dir), []);
  });
});

Deno.test("a compile that fails part-way leaves no binaries", async () => {
  await inTempDir(async (dir) => {
    await assert.rejects(
      compileServices(options(dir), fakeDeno(["order"])),
      /deno compile failed for inventory; nothing was written.*\nerror: type check failed/s,
    );
    assert.deepEqual(await entries(dir), [], "no dist/, no staging folder");
  });
});

Deno.test("a runtime download failing during compile is reported as such", async () => {
  await inTempDir(async (dir) => {
    const stderr = "error: Writing deno compile executable\n    0: Setting up base binary.\n" +
      "    1: error sending request for url (https://dl.deno.land/release/v2/denort.zip)";
    await assert.rejects(
      compileServices(options(dir), fakeDeno([], stderr)),
      /Deno runtime \(denort.*No binaries were written/s,
    );
    assert.deepEqual(await entries(dir), []);
  });
});

Deno.test("compile moves the binaries in only when every one was built", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "dist"));
    await Deno.writeTextFile(join(dir, "dist", "order"), "old binary");
    const written = await compileServices(options(dir), fakeDeno(SERVICE_NAMES));
    assert.deepEqual(written, SERVICE_NAMES.map((s) => join(dir, "dist", s)));
    assert.deepEqual(await entries(dir), ["dist"], "the staging folder is gone");
    assert.deepEqual(await entries(join(dir, "dist")), [...SERVICE_NAMES].sort());
    assert.equal(await Deno.readTextFile(join(dir, "dist", "order")), "binary of order");
  });
});
