/**
 * `deno task compile`: a fast, clear failure where the Deno runtime that `deno compile` embeds
 * cannot be downloaded. What tools/compile.ts builds is tools/compile_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort } from "../tools/broker_node.ts";

import { entries, inTempDir } from "../tools/_temp_dir.ts";
const ROOT = new URL("..", import.meta.url).pathname;

Deno.test(
  "deno task compile fails fast, says why and writes nothing where the runtime download is unreachable",
  async () => {
    await inTempDir(async (dir) => {
      // This machine's condition, made certain anywhere: no cached runtime (a DENO_DIR of its own,
      // sharing only the npm cache), no DENORT_BIN, and every download through a dead proxy.
      const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
      const { npmCache } = JSON.parse(new TextDecoder().decode(info.stdout)) as {
        npmCache: string;
      };
      await Deno.mkdir(join(dir, "deno-dir"));
      await Deno.symlink(npmCache, join(dir, "deno-dir", "npm"));
      const deadProxy = `http://127.0.0.1:${freePort()}`;
      const env = Object.fromEntries(
        Object.entries(Deno.env.toObject()).filter(([name]) =>
          !/^(DENORT_BIN|DENO_DIR|(https?|no|all)_proxy)$/i.test(name)
        ),
      );
      const started = Date.now();
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "compile", "--out", join(dir, "dist")],
        cwd: ROOT,
        clearEnv: true,
        env: {
          ...env,
          DENO_DIR: join(dir, "deno-dir"),
          HTTPS_PROXY: deadProxy,
          HTTP_PROXY: deadProxy,
          NO_COLOR: "1",
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const elapsed = Date.now() - started;
      const stderr = new TextDecoder().decode(out.stderr);
      assert.notEqual(out.code, 0, stderr);
      assert.match(stderr, /deno compile needs the Deno runtime \(denort /);
      assert.match(stderr, /dl\.deno\.land\/release\/v[\d.]+\/denort-[\w-]+\.zip is unreachable/);
      assert.match(stderr, /No binaries were written/);
      assert.ok(elapsed < 30_000, `took ${elapsed} ms`);
      assert.deepEqual(await entries(dir), ["deno-dir"], "no dist/ and no staging folder");
    });
  },
);
