/**
 * What the Compose backend does before it reaches a Docker engine, which the suites that run on
 * one (tests/compose/, `deno task test:compose`) cannot show: it refuses settings compose.yaml
 * would drop, and says what is missing where Docker Compose v2 is not installed.
 */
import assert from "node:assert/strict";
import { startComposeBackend } from "./compose_backend.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Runs `test` with an empty folder to serve as PATH: no `docker` program can be found. */
async function withoutDocker(test: (path: string) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempDir({ prefix: "campus-no-docker-" });
  try {
    await test(path);
  } finally {
    await Deno.remove(path, { recursive: true });
  }
}

Deno.test("a setting compose.yaml would not pass to the services is refused", async () => {
  await withoutDocker(async (path) => {
    await assert.rejects(
      startComposeBackend({ path, env: { MENU: "Coffee=1", NOT_A_SETTING: "1" } }),
      (err: Error) =>
        err instanceof TypeError && /does not pass NOT_A_SETTING to the services/.test(err.message),
    );
  });
});

Deno.test("the Compose backend says so when Docker Compose v2 is missing", async () => {
  await withoutDocker(async (path) => {
    await assert.rejects(
      startComposeBackend({ path }),
      /STACK=compose needs Docker Compose v2 \(`docker compose`\) and a Docker engine/,
    );
  });
});

Deno.test("Stack.start picks its backend from STACK", async (t) => {
  const startStack = async (env: Record<string, string>) => {
    const code = `const { Stack } = await import("./tests/stack.ts");
      try { await Stack.start(); } catch (err) { console.error(err.message); Deno.exit(3); }`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      cwd: ROOT,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  };
  await t.step("STACK=compose runs docker compose", async () => {
    await withoutDocker(async (path) => {
      const run = await startStack({ STACK: "compose", PATH: path });
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /STACK=compose needs Docker Compose v2/);
    });
  });
  await t.step("an unknown STACK is refused", async () => {
    const run = await startStack({ STACK: "kubernetes" });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /STACK must be "local" or "compose", got "kubernetes"/);
  });
});
