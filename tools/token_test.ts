import assert from "node:assert/strict";
import { Authenticator } from "@campus/shared/auth";
import { parseTtl, tokenRequest } from "./token.ts";

const SECRET = "token-tool-test-secret-0123456789abcdef";
const TOOL = new URL("./token.ts", import.meta.url).pathname;

Deno.test("parseTtl() reads seconds, minutes, hours and days, and refuses the rest", () => {
  assert.equal(parseTtl("90"), 90);
  assert.equal(parseTtl("90s"), 90);
  assert.equal(parseTtl("15m"), 900);
  assert.equal(parseTtl("1h"), 3600);
  assert.equal(parseTtl("7d"), 604_800);
  for (const bad of ["0", "-1h", "1w", "h", "", "366d"]) {
    assert.throws(() => parseTtl(bad), /--ttl must be/, bad);
  }
});

Deno.test("tokenRequest() names the flag that is wrong", () => {
  assert.deepEqual(tokenRequest(["--role", "student", "--sub", "S1"]), {
    role: "student",
    sub: "S1",
    ttlSeconds: 3600,
  });
  assert.throws(() => tokenRequest(["--role", "admin", "--sub", "S1"]), /--role must be/);
  assert.throws(() => tokenRequest(["--sub", "S1"]), /--role must be student or staff; got none/);
  assert.throws(() => tokenRequest(["--role", "staff"]), /--sub is required/);
  assert.throws(() => tokenRequest(["--role", "staff", "--sub", "x", "--ttl", "soon"]), /--ttl/);
});

async function runTool(args: string[], env: Record<string, string>) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    // The task's own permissions: AUTH_SECRET and nothing else.
    args: ["run", "--allow-env=AUTH_SECRET", "--no-prompt", TOOL, ...args],
    env,
    clearEnv: true,
  }).output();
  return {
    code,
    stdout: new TextDecoder().decode(stdout).trim(),
    stderr: new TextDecoder().decode(stderr),
  };
}

Deno.test("deno task token prints a token the services accept, with only AUTH_SECRET", async () => {
  const { code, stdout, stderr } = await runTool(
    ["--role", "staff", "--sub", "kitchen", "--ttl", "15m"],
    { AUTH_SECRET: SECRET },
  );
  assert.equal(code, 0, stderr);
  const caller = await new Authenticator(SECRET).verify(stdout);
  assert.equal(caller.sub, "kitchen");
  assert.equal(caller.role, "staff");
  const ttl = (caller.expiresAt - Date.now()) / 1000;
  assert.ok(ttl > 800 && ttl <= 900, `expires in ${ttl} s`);
});

Deno.test("deno task token says what is missing, and prints no token", async (t) => {
  await t.step("AUTH_SECRET unset", async () => {
    const { code, stdout, stderr } = await runTool(["--role", "student", "--sub", "S1"], {});
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(stderr, /AUTH_SECRET is not set/);
  });
  await t.step("a role it does not know", async () => {
    const { code, stderr } = await runTool(["--role", "admin", "--sub", "S1"], {
      AUTH_SECRET: SECRET,
    });
    assert.equal(code, 2);
    assert.match(stderr, /--role must be student or staff; got "admin"/);
  });
  await t.step("an AUTH_SECRET too short, without repeating it", async () => {
    const { code, stderr } = await runTool(["--role", "student", "--sub", "S1"], {
      AUTH_SECRET: "short-secret",
    });
    assert.equal(code, 2);
    assert.match(stderr, /AUTH_SECRET must be at least 32 characters/);
    assert.doesNotMatch(stderr, /short-secret/);
  });
});
