import assert from "node:assert/strict";
import { groupOf, groupTimes, profileMarkdown } from "./profile.ts";

const frame = (functionName: string, url = "") => ({ functionName, url, scriptId: "0" });

Deno.test("groupOf() names the nearest library or project frame of a sample", () => {
  const npm = "file:///root/.cache/deno/npm/registry.npmjs.org";
  assert.equal(
    groupOf([frame("writeBuffer"), frame("go", `${npm}/amqplib/0.10.9/lib/x.js`)]),
    "amqplib (frames, socket writes)",
  );
  assert.equal(groupOf([frame("parse", `${npm}/zod/4.6.7/index.js`)]), "zod (schemas)");
  assert.equal(
    groupOf([frame("run"), frame("x", "file:///w/services/order/order_store_sqlite.ts")]),
    "SQLite",
  );
  assert.equal(groupOf([frame("x", "file:///w/services/order/order.ts")]), "handlers and domain");
  assert.equal(groupOf([frame("(program)")]), "V8 and native, unattributed");
  assert.equal(
    groupOf([frame("serve", "ext:deno_http/00_serve.ts")]),
    "Deno runtime (HTTP server, sockets, timers)",
  );
});

Deno.test("groupTimes() counts the samples inside the window, idle left out", () => {
  const profile = {
    nodes: [
      { id: 1, callFrame: frame("(root)"), children: [2, 3, 4] },
      { id: 2, callFrame: frame("(idle)") },
      { id: 3, callFrame: frame("(garbage collector)") },
      { id: 4, callFrame: frame("log", "file:///w/shared/runtime/log.ts") },
    ],
    startTime: 10_000_000, // 10 s on the uptime clock
    // Samples at 10.5 s (GC), 11 s (idle), 11.5 s (log), 12.5 s (GC), each lasting until the next.
    samples: [3, 2, 4, 3],
    timeDeltas: [500_000, 500_000, 500_000, 1_000_000],
  };
  assert.deepEqual(groupTimes(profile, { from: 10.2, to: 12 }), {
    "GC (main thread)": 500,
    logging: 1000,
  });
  const table = profileMarkdown({ order: { logging: 30, SQLite: 70 } }, 100);
  assert.match(table, /\| SQLite \| 70 % \|\n\| logging \| 30 % \|/);
  assert.match(table, /1 ms \|$/);
});
