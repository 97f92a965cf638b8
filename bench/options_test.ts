/** Tests of the benchmark's option parsing. */
import assert from "node:assert/strict";
import { parseOptions } from "./options.ts";

Deno.test("parseOptions() gives the full run by default", () => {
  const options = parseOptions([]);
  assert.equal(options?.orders, 5000);
  assert.deepEqual(options?.concurrency, [1, 32, 64]);
  assert.equal(options?.backlog, 10_000);
  assert.equal(options?.quick, false);
});

Deno.test("parseOptions() lets explicit values override --quick", () => {
  const options = parseOptions(["--quick", "--orders", "50", "--concurrency", "2, 8"]);
  assert.equal(options?.orders, 50);
  assert.deepEqual(options?.concurrency, [2, 8]);
  assert.equal(options?.backlog, 500);
  assert.equal(options?.quick, true);
});

Deno.test("parseOptions() refuses bad values naming the option", async (t) => {
  await t.step("a fractional order count", () => {
    assert.throws(() => parseOptions(["--orders", "1.5"]), /--orders must be a whole number/);
  });
  await t.step("a zero concurrency", () => {
    assert.throws(() => parseOptions(["--concurrency", "1,0"]), /--concurrency/);
  });
  await t.step("an unknown option", () => {
    assert.throws(() => parseOptions(["--speed"]));
  });
});

Deno.test("parseOptions() reads the replica comparison", async (t) => {
  await t.step("SQLite and the full run by default", () => {
    assert.equal(parseOptions([])?.store, "sqlite");
  });
  await t.step("--store postgres with 1, 2 and 3 inventory replicas unless told", () => {
    const options = parseOptions(["--store", "postgres"]);
    assert.equal(options?.store, "postgres");
    assert.deepEqual(options?.replicas, [1, 2, 3]);
    assert.deepEqual(parseOptions(["--store", "postgres", "--replicas", "2"])?.replicas, [2]);
  });
  await t.step("refused: another store, replicas on SQLite, zero replicas", () => {
    assert.throws(() => parseOptions(["--store", "mysql"]), /--store must be sqlite or postgres/);
    assert.throws(() => parseOptions(["--replicas", "2"]), /--replicas needs --store postgres/);
    assert.throws(() => parseOptions(["--store", "postgres", "--replicas", "0"]), /--replicas/);
  });
});

Deno.test("parseOptions() returns undefined for --help", () => {
  assert.equal(parseOptions(["--help"]), undefined);
});

Deno.test("parseOptions() reads the observability comparison", async (t) => {
  await t.step("off unless asked", () => {
    assert.equal(parseOptions([])?.observe, false);
  });
  await t.step("--observe at the default orders and concurrency", () => {
    const options = parseOptions(["--observe"]);
    assert.equal(options?.observe, true);
    assert.equal(options?.orders, 5000);
    assert.equal(Math.max(...options!.concurrency), 64);
    assert.equal(parseOptions(["--observe", "--orders", "1000"])?.orders, 1000);
  });
  await t.step("refused on PostgreSQL", () => {
    assert.throws(
      () => parseOptions(["--observe", "--store", "postgres"]),
      /--observe runs on SQLite/,
    );
  });
});
