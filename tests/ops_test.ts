/**
 * The files in `ops/` are valid for the Prometheus that runs them: the scrape config loads, the
 * alert rules pass `promtool check rules`, and their unit tests (`ops/alerts_test.yml`) show each
 * alert firing on the series it is meant for, and not before its time.
 */
import assert from "node:assert/strict";
import { hasPrometheus } from "./prometheus_server.ts";

const OPS = new URL("../ops/", import.meta.url).pathname;

async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command("promtool", { args, cwd: OPS }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, output: decode(stdout) + decode(stderr) };
}

Deno.test("ops/ passes promtool", async (t) => {
  assert.ok(hasPrometheus(), "this suite needs Debian's prometheus package (promtool on PATH)");

  await t.step("the scrape config and the rules it names are valid", async () => {
    const { code, output } = await promtool("check", "config", "prometheus.yml");
    assert.equal(code, 0, output);
    assert.match(output, /SUCCESS: 1 rule files found/);
  });

  await t.step("the alert rules pass promtool check rules", async () => {
    const { code, output } = await promtool("check", "rules", "alerts.yml");
    assert.equal(code, 0, output);
    assert.match(output, /SUCCESS: 6 rules found/);
  });

  await t.step("each alert fires on its series in the rule unit tests", async () => {
    const { code, output } = await promtool("test", "rules", "alerts_test.yml");
    assert.equal(code, 0, output);
    assert.match(output, /SUCCESS/);
  });
});
