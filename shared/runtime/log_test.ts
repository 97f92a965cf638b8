import assert from "node:assert/strict";
import { createLogger, errorText, UNCAUGHT_ERROR, UNHANDLED_REJECTION } from "./log.ts";

function recorder() {
  const writes: string[] = [];
  const lines = () => writes.join("").trimEnd().split("\n").map((l) => JSON.parse(l));
  return { writes, lines, sink: (text: string) => void writes.push(text) };
}

Deno.test("createLogger() writes one JSON object per line with the service and fields", async () => {
  const { sink, lines } = recorder();
  const log = createLogger("inventory", "info", sink);
  log.info("stock reserved", { order_id: "o1", item: "Coffee", qty: 2, remaining: 98 });
  log.debug("not at info");
  await null;
  const [line] = lines();
  assert.equal(lines().length, 1, "debug stays out at info");
  assert.equal(typeof line.ts, "string");
  assert.deepEqual({ ...line, ts: undefined }, {
    ts: undefined,
    level: "info",
    service: "inventory",
    msg: "stock reserved",
    order_id: "o1",
    item: "Coffee",
    qty: 2,
    remaining: 98,
  });
});

Deno.test("the lines of one turn are written together, a warning at once", async (t) => {
  await t.step("info lines wait for the end of the turn", async () => {
    const { sink, writes, lines } = recorder();
    const log = createLogger("order", "info", sink);
    for (let i = 0; i < 100; i++) log.info("order placed", { order_id: `o${i}` });
    assert.equal(writes.length, 0, "nothing written during the turn");
    await null;
    assert.equal(writes.length, 1, "one write for the turn");
    assert.deepEqual(
      lines().map((l) => l.order_id),
      Array.from({ length: 100 }, (_, i) => `o${i}`),
    );
  });
  await t.step("a warning is written at once, after the lines before it", () => {
    const { sink, lines } = recorder();
    const log = createLogger("order", "info", sink);
    log.info("order placed", { order_id: "o1" });
    log.warn("duplicate result ignored", { order_id: "o1" });
    assert.deepEqual(lines().map((l) => l.msg), ["order placed", "duplicate result ignored"]);
  });
});

Deno.test("a field JSON cannot hold is written as text, not thrown", async () => {
  const { sink, lines } = recorder();
  createLogger("order", "info", sink).info("odd", { big: 10n, order_id: "o1" });
  await null;
  assert.deepEqual([lines()[0].big, lines()[0].order_id], ["10", "o1"]);
});

Deno.test("buffered lines are written when the process exits", async (t) => {
  const log = new URL("./log.ts", import.meta.url).href;
  for (const [name, ending] of [["at the end", ""], ["by Deno.exit", "Deno.exit(3);"]]) {
    await t.step(name, async () => {
      const script = `import { createLogger } from "${log}";
        const log = createLogger("order");
        for (let i = 0; i < 1000; i++) log.info("order placed", { order_id: "o" + i });
        ${ending}`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", script],
        stdout: "null",
        stderr: "piped",
      }).output();
      const lines = new TextDecoder().decode(out.stderr).trimEnd().split("\n");
      assert.equal(lines.length, 1000, `all 1000 lines written, got ${lines.length}`);
      assert.equal(JSON.parse(lines[999]).order_id, "o999");
    });
  }
});

Deno.test("createLogger() masks passwords, tokens and the configured secrets in every line", async () => {
  const { sink, lines } = recorder();
  const log = createLogger("order", "info", sink, ["signing-key-123", "Db-Pw-9"]);
  log.warn("cannot connect", {
    url: "amqp://app:Broker-Pw-1@rabbit:5672",
    error: 'password "Db-Pw-9" refused',
    header: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTMSJ9.c2ln",
    key: "signing-key-123",
  });
  await null;
  const [line] = lines();
  assert.deepEqual(
    { url: line.url, error: line.error, header: line.header, key: line.key },
    {
      url: "amqp://app:***@rabbit:5672",
      error: 'password "***" refused',
      header: "Bearer ***",
      key: "***",
    },
  );
});

Deno.test("errorText() masks a URL's password in an error message", () => {
  assert.equal(
    errorText(new Error("cannot reach postgres://app:Pw-1234@db:5432/x")),
    "cannot reach postgres://app:***@db:5432/x",
  );
});

Deno.test("surviveUncaught() logs an unhandled rejection or error, and the process goes on", async (t) => {
  const log = new URL("./log.ts", import.meta.url).href;
  const faults = [
    ["a rejection nobody handles", "Promise.reject(new Error('the database refuses'));"],
    [
      "an error thrown in a timer",
      "setTimeout(() => { throw new Error('the database refuses'); });",
    ],
  ];
  for (const [name, fault] of faults) {
    await t.step(name, async () => {
      const script = `import { createLogger, surviveUncaught } from "${log}";
        const log = createLogger("order");
        surviveUncaught(log);
        ${fault}
        setTimeout(() => log.info("still running"), 50);`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", script],
        stdout: "null",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `the process went on to its end:\n${text}`);
      const lines = text.trimEnd().split("\n").map((line) => JSON.parse(line));
      assert.deepEqual(lines.map((line) => line.msg), [
        name.startsWith("a rejection") ? UNHANDLED_REJECTION : UNCAUGHT_ERROR,
        "still running",
      ]);
      assert.equal(lines[0].level, "error");
      assert.equal(lines[0].error, "the database refuses");
      assert.match(lines[0].stack, /Error: the database refuses/);
    });
  }
});
