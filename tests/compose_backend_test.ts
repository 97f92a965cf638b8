/**
 * The Compose backend's `docker compose` commands, checked against a recording stand-in for
 * `docker` put first on the backend's PATH (no Docker engine runs here).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  BROKER_SERVICE,
  type ComposeOptions,
  DEFAULT_TEST_PROJECT,
  startComposeBackend,
} from "./compose_backend.ts";
import { freePort } from "../tools/broker_node.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const COMPOSE_FILE = join(ROOT, "compose.yaml");
const STARTED_AT = "2026-01-01T10:00:00.123456789Z";

/** A stand-in `docker` in a temp folder, a `/health` server for the services it "runs". */
interface FakeDocker {
  dir: string;
  /** PATH with the stand-in first. */
  path: string;
  amqpPort: number;
  httpPort: number;
  /** The calls so far, each as its arguments joined by spaces. */
  calls(): Promise<string[]>;
  /** `MENU|RETRY_DELAY_MS` as each call saw them. */
  envs(): Promise<string[]>;
  clear(): Promise<void>;
}

/**
 * Writes a shell script that appends its arguments to `calls` and keeps each container's state in
 * a file, answering `compose ps --format json`, `compose port` and `inspect` as Docker does.
 */
async function withFakeDocker(
  test: (fake: FakeDocker) => Promise<void>,
  { compose = true } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "campus-fake-docker-" });
  await Deno.mkdir(join(dir, "bin"));
  await Deno.mkdir(join(dir, "state"));
  const amqpPort = freePort();
  const abort = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: abort.signal, onListen: () => {} },
    (req) =>
      new URL(req.url).pathname === "/health"
        ? Response.json({ status: "ok" })
        : new Response("not found", { status: 404 }),
  );
  const httpPort = server.addr.port;
  const script = `#!/bin/sh
dir='${dir}'
printf '%s\\n' "$*" >> "$dir/calls"
printf '%s|%s\\n' "$MENU" "$RETRY_DELAY_MS" >> "$dir/envs"
if [ "$1" = inspect ]; then
  case $3 in *Pid*) echo 4242;; *StartedAt*) echo "${STARTED_AT}";; esac; exit 0
fi
if [ "$1" = events ]; then cat "$dir/events" 2>/dev/null; exit 0; fi
if [ "$1" = start ]; then echo "running 0" > "$dir/state/$(echo "$2" | sed 's/^id-//')"; exit 0; fi
if [ "$1" != compose ]; then echo "fake docker: unexpected $*" >&2; exit 2; fi
shift
if [ "$1" = version ]; then
  if [ '${compose ? "yes" : "no"}' = no ]; then
    echo "docker: unknown command: docker compose" >&2; exit 1
  fi
  echo "Docker Compose version v2.29.7"; exit 0
fi
while [ "$1" = -p ] || [ "$1" = -f ]; do shift 2; done
cmd=$1; shift
last=""; for a in "$@"; do last=$a; done
set_state() { for a in "$@"; do
  case $a in rabbitmq|*_service) echo "$state" > "$dir/state/$a";; esac
done; }
case $cmd in
  up)
    if [ -f "$dir/fail-up" ]; then echo "container inventory_service is unhealthy" >&2; exit 1; fi
    state="running 0"; set_state "$@";;
  start) state="running 0"; set_state "$@";;
  create) state="created 0"; set_state "$@";;
  stop) state="exited 0"; set_state "$@";;
  kill) state="exited 137"; set_state "$@";;
  down) rm -f "$dir"/state/*;;
  ps)
    if [ -f "$dir/state/$last" ]; then
      read -r st code < "$dir/state/$last"
      health=""; [ "$st" = running ] && health=healthy
      printf '{"ID":"id-%s","Service":"%s","State":"%s","Health":"%s","ExitCode":%s}\\n' \\
        "$last" "$last" "$st" "$health" "$code"
    fi;;
  port) if [ "$1" = rabbitmq ]; then echo "0.0.0.0:${amqpPort}"; else echo "127.0.0.1:${httpPort}"; fi;;
  logs) echo "log of $last";;
esac
`;
  await Deno.writeTextFile(join(dir, "bin", "docker"), script, { mode: 0o755 });
  const lines = async (name: string) =>
    (await Deno.readTextFile(join(dir, name)).catch(() => "")).split("\n").filter(Boolean);
  try {
    await test({
      dir,
      path: `${join(dir, "bin")}:${Deno.env.get("PATH") ?? ""}`,
      amqpPort,
      httpPort,
      calls: () => lines("calls"),
      envs: () => lines("envs"),
      clear: () => Deno.writeTextFile(join(dir, "calls"), ""),
    });
  } finally {
    abort.abort();
    await server.finished;
    await Deno.remove(dir, { recursive: true });
  }
}

const start = (fake: FakeDocker, options: ComposeOptions = {}) =>
  startComposeBackend({ path: fake.path, ...options });

/** The prefix every project command carries. */
const P = `compose -p ${DEFAULT_TEST_PROJECT} -f ${COMPOSE_FILE}`;

Deno.test("the Compose backend starts a fresh project and learns its published ports", async () => {
  await withFakeDocker(async (fake) => {
    const backend = await start(fake);
    assert.deepEqual(await fake.calls(), [
      "compose version",
      `${P} down -v --remove-orphans`,
      `${P} up -d --build --wait rabbitmq order_service inventory_service notification_service`,
      `${P} port rabbitmq 5672`,
      ...["order_service 5001", "inventory_service 5002", "notification_service 5003"].flatMap(
        (portOf) => {
          const name = portOf.split(" ")[0];
          return [
            `${P} port ${portOf}`,
            `${P} ps --all --format json ${name}`,
            `inspect --format {{.State.StartedAt}} id-${name}`,
          ];
        },
      ),
    ]);
    assert.equal(backend.amqpUrl, `amqp://guest:guest@127.0.0.1:${fake.amqpPort}`);
    assert.equal(backend.baseUrl("inventory"), `http://127.0.0.1:${fake.httpPort}`);
    assert.equal(backend.controlsBroker, true);
  });
});

Deno.test("the Compose backend stops, starts and kills a service's container", async () => {
  await withFakeDocker(async (fake) => {
    const backend = await start(fake);
    await fake.clear();
    await backend.stop("inventory");
    assert.deepEqual(await backend.exitStatus("inventory"), { code: 0 });
    await backend.start("inventory");
    assert.equal(await backend.exitStatus("inventory"), undefined, "running again");
    const events = (await fake.calls()).filter((c) => c.startsWith("events"))
      .map((c) => c.split(" ")[4]);
    assert.match(events[0] ?? "", /^\d{10}\.\d{9}$/, "--until is a Unix time with nanoseconds");
    await backend.kill("inventory");
    assert.deepEqual(await backend.exitStatus("inventory"), { code: 137, signal: "SIGKILL" });
    const ps = `${P} ps --all --format json inventory_service`;
    assert.deepEqual(await fake.calls(), [
      `${P} stop inventory_service`,
      ps,
      ps,
      `${P} ps --all --format json rabbitmq`,
      `${P} start inventory_service`,
      `${P} port inventory_service 5002`,
      ps,
      "inspect --format {{.State.StartedAt}} id-inventory_service",
      ps,
      `events --since ${STARTED_AT} --until ${events[0]}` +
      " --filter container=id-inventory_service --filter event=die" +
      " --format {{.Actor.Attributes.exitCode}}",
      `${P} kill -s SIGKILL inventory_service`,
      ps,
      ps,
    ]);
  });
});

Deno.test("the Compose backend reports a crash the restart policy already undid", async () => {
  await withFakeDocker(async (fake) => {
    const backend = await start(fake);
    assert.equal(await backend.exitStatus("order"), undefined);
    // Docker restarted the container after it died with SIGSEGV: it runs, its events keep the exit.
    await Deno.writeTextFile(join(fake.dir, "events"), "139\n");
    assert.deepEqual(await backend.exitStatus("order"), { code: 139, signal: "SIGSEGV" });
  });
});

Deno.test("the Compose backend stops and starts the broker as the rabbitmq service", async () => {
  await withFakeDocker(async (fake) => {
    const backend = await start(fake);
    await fake.clear();
    await backend.stopBroker();
    await backend.startBroker();
    assert.equal(await backend.pid("broker"), 4242);
    assert.deepEqual(await fake.calls(), [
      `${P} stop ${BROKER_SERVICE}`,
      `${P} start ${BROKER_SERVICE}`,
      `${P} ps --all --format json ${BROKER_SERVICE}`,
      `${P} ps --all --format json ${BROKER_SERVICE}`,
      `inspect --format {{.State.Pid}} id-${BROKER_SERVICE}`,
    ]);
  });
});

Deno.test("the Compose backend starts a service by itself while the broker is down", async () => {
  await withFakeDocker(async (fake) => {
    const backend = await start(fake);
    await backend.stop("inventory");
    await backend.stopBroker();
    await fake.clear();
    await backend.start("inventory");
    const calls = await fake.calls();
    assert.ok(calls.includes("start id-inventory_service"), calls.join("\n"));
    assert.ok(!calls.includes(`${P} start inventory_service`), "compose would wait for the broker");
    assert.equal(await backend.exitStatus("inventory"), undefined, "running");
  });
});

Deno.test("the Compose backend leaves a container the restart policy brings back", async () => {
  await withFakeDocker(async (fake) => {
    const backend = await start(fake);
    await fake.clear();
    await backend.start("order");
    const calls = await fake.calls();
    assert.ok(!calls.some((c) => / start /.test(` ${c} `)), calls.join("\n"));
    assert.ok(calls.includes(`${P} port order_service 5001`));
  });
});

Deno.test("the Compose backend reads logs and removes the project with its volumes", async () => {
  await withFakeDocker(async (fake) => {
    const backend = await start(fake, { project: "campus-x" });
    await fake.clear();
    assert.equal((await backend.logs("order")).trim(), "log of order_service");
    await backend.dispose();
    const prefix = `compose -p campus-x -f ${COMPOSE_FILE}`;
    assert.deepEqual(await fake.calls(), [
      `${prefix} logs --no-color --no-log-prefix --tail 500 order_service`,
      `${prefix} down -v --remove-orphans`,
    ]);
  });
});

Deno.test("the Compose backend creates the services of `without` without starting them", async () => {
  await withFakeDocker(async (fake) => {
    const backend = await start(fake, { without: ["inventory"], build: false });
    const calls = await fake.calls();
    assert.ok(calls.includes(`${P} up -d --wait rabbitmq order_service notification_service`));
    assert.ok(calls.includes(`${P} create inventory_service`));
    assert.ok(!calls.includes(`${P} port inventory_service 5002`), "not running: no port yet");
    assert.equal(backend.baseUrl("inventory"), "http://127.0.0.1:5002");
    await backend.start("inventory");
    assert.equal(backend.baseUrl("inventory"), `http://127.0.0.1:${fake.httpPort}`);
  });
});

Deno.test("the Compose backend hands the suite's settings to docker compose", async (t) => {
  await t.step("settings compose.yaml passes on reach every call", async () => {
    await withFakeDocker(async (fake) => {
      await start(fake, { env: { MENU: "Coffee=100,Pizza=2" } });
      const envs = await fake.envs();
      assert.ok(envs.length > 0);
      for (const env of envs) assert.equal(env, "Coffee=100,Pizza=2|200");
    });
  });
  await t.step("a setting compose.yaml would drop is refused before any call", async () => {
    await withFakeDocker(async (fake) => {
      await assert.rejects(
        start(fake, { env: { NOT_A_SETTING: "1" } }),
        (err: Error) => err instanceof TypeError && /does not pass NOT_A_SETTING/.test(err.message),
      );
      assert.deepEqual(await fake.calls(), []);
    });
  });
});

Deno.test("a Compose stack that does not come up is removed, its logs in the error", async () => {
  await withFakeDocker(async (fake) => {
    await Deno.writeTextFile(join(fake.dir, "fail-up"), "");
    await assert.rejects(
      start(fake),
      /up -d --build --wait .* failed with exit code 1:\ncontainer inventory_service is unhealthy\n--- docker compose logs ---\nlog of 100/,
    );
    assert.deepEqual((await fake.calls()).slice(-2), [
      `${P} logs --no-color --tail 100`,
      `${P} down -v --remove-orphans`,
    ]);
  });
});

Deno.test("the Compose backend says so when Docker Compose v2 is missing", async () => {
  await withFakeDocker(async (fake) => {
    await assert.rejects(start(fake), /STACK=compose needs Docker Compose v2.*unknown command/s);
    assert.deepEqual(await fake.calls(), ["compose version"]);
  }, { compose: false });
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
    await withFakeDocker(async (fake) => {
      const run = await startStack({ STACK: "compose", PATH: fake.path });
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /STACK=compose needs Docker Compose v2/);
      assert.deepEqual(await fake.calls(), ["compose version"]);
    }, { compose: false });
  });
  await t.step("an unknown STACK is refused", async () => {
    const run = await startStack({ STACK: "kubernetes" });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /STACK must be "local" or "compose", got "kubernetes"/);
  });
});
