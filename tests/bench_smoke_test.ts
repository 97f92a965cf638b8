/**
 * The quick benchmark as a smoke test: it must run to the end and find every order final,
 * carts of its cart round included, none reserved twice. Speed is never checked here;
 * `deno task bench` reports it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const BENCH = new URL("../bench/bench.ts", import.meta.url).pathname;

Deno.test("the quick benchmark loses no order and reserves none twice", async () => {
  const out = await Deno.makeTempDir({ prefix: "campus-bench-" });
  try {
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", BENCH, "--quick", "--out", out],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const printed = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, `the quick bench exited with ${run.code}:\n${printed}`);
    const files = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.endsWith(".json"));
    assert.equal(files.length, 1, `expected one JSON result in ${out}, found ${files.join(", ")}`);
    const result = JSON.parse(await Deno.readTextFile(join(out, files[0])));
    const { correctness } = result;
    assert.ok(correctness.accepted > 0, "the bench placed orders");
    assert.equal(correctness.lost, 0, printed);
    assert.equal(correctness.double_reserved, 0, printed);
    assert.equal(correctness.stock_unaccounted, 0, printed);
    assert.equal(correctness.notifications_missing, 0, printed);
    assert.equal(correctness.notifications_duplicate, 0, printed);
    assert.equal(correctness.ok, true, printed);
    const carts = result.cart_round;
    assert.ok(carts, `the result has a cart round:\n${printed}`);
    assert.equal(carts.lines_per_order, 3, "the cart round placed carts of three lines");
    assert.ok(carts.accepted > 0, "the cart round placed carts");
    assert.equal(carts.errors, 0, `no cart was refused:\n${printed}`);
    assert.equal(carts.unfinished, 0, `every cart became final:\n${printed}`);
    assert.match(printed, /carts c=\d+/, "the cart round is reported beside the others");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
