/**
 * The order service's event streams on a real stack, against clients that open them and never
 * read: what each one may cost in memory, how many one student and the whole service may hold,
 * and that a slot comes back when its stream ends, however it ends.
 */
import assert from "node:assert/strict";
import { signToken, type TokenClaims } from "@campus/shared/auth";
import { placeOrders, waitUntilFinal } from "../bench/load.ts";
import { readProcess } from "../bench/footprint.ts";
import { INTEGRATION, Stack } from "./stack.ts";
import { waitFor } from "./poll.ts";

/** A stream held open on a raw connection whose body is never read. */
interface RawStream {
  status: number;
  /** The response's head, lower-cased header names. */
  headers: Record<string, string>;
  conn: Deno.TcpConn;
}

/**
 * Sends `GET path` on a connection of its own and reads the response's head only: the body, if
 * the service streams one, waits unread in the socket as it would for a stalled client.
 */
async function openRaw(
  baseUrl: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<RawStream> {
  const { hostname, port } = new URL(baseUrl);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    "Accept: text/event-stream",
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  await conn.write(new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`));
  let head = "";
  const buffer = new Uint8Array(1024);
  const decoder = new TextDecoder();
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error(`GET ${path}: connection closed before the response head`);
    head += decoder.decode(buffer.subarray(0, n));
  }
  const [statusLine, ...fields] = head.slice(0, head.indexOf("\r\n\r\n")).split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const parsed = Object.fromEntries(fields.map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
  }));
  return { status, headers: parsed, conn };
}

/** Ends a raw stream from the client's side. */
function hangUp(stream: RawStream): void {
  try {
    stream.conn.close();
  } catch {
    // already closed
  }
}

/** Places `perStudent` orders for each of `students` at once; every one must get `201`. */
async function placeFor(stack: Stack, students: readonly string[], perStudent: number) {
  const rounds = await Promise.all(students.map((studentId) =>
    placeOrders({
      orderUrl: stack.url("order"),
      count: perStudent,
      concurrency: 1,
      studentId,
      items: ["Coffee", "Tea", "Cake"],
    })
  ));
  const errors = rounds.flatMap((r) => r.errorSamples);
  assert.equal(rounds.reduce((n, r) => n + r.errors, 0), 0, `every POST got 201: ${errors[0]}`);
  for (const studentId of students) {
    const final = await waitUntilFinal({
      orderUrl: stack.url("order"),
      studentId,
      timeoutMs: 120_000,
      intervalMs: 250,
    });
    assert.ok(final, `every order of ${studentId} final within 2 minutes`);
  }
}

/** Resident memory of the order service now, and its peak so far, in MB. */
async function orderMemory(stack: Stack): Promise<{ rssMb: number; peakMb: number }> {
  const pid = await stack.backend.pid("order");
  const reading = pid === undefined ? undefined : await readProcess(pid);
  if (!reading) {
    throw new Error(
      `The order service is not running (${JSON.stringify(await stack.exitStatus("order"))}):\n` +
        (await stack.logs("order")).slice(-2000),
    );
  }
  return { rssMb: reading.rssKb / 1024, peakMb: reading.hwmKb / 1024 };
}

const STUDENTS = Array.from({ length: 40 }, (_, i) => `S-stall-${i}`);
/**
 * A long menu: every stock change sends it whole to every stream. With a short one, the few
 * hundred kB a stream gets in a round all fit in the sockets' kernel buffers and the service
 * never holds any of it; with this one each stream gets megabytes, well past those buffers.
 */
const LONG_MENU = Object.fromEntries([
  ...["Coffee", "Tea", "Cake"].map((item) => [item, 1_000_000]),
  ...Array.from({ length: 1_000 }, (_, i) => [`Dish ${String(i).padStart(4, "0")}`, 1_000]),
]);
const STREAMS = 200;
const ORDERS = 5_000;
/** What 200 stalled streams may add to the order service's memory. */
const STALLED_STREAMS_BUDGET_MB = 50;

Deno.test({
  name: `${STREAMS} streams that never read add less than ${STALLED_STREAMS_BUDGET_MB} MB ` +
    `to the order service over ${ORDERS} orders`,
  ...INTEGRATION,
  fn: async () => {
    const stack = await Stack.start({
      menu: LONG_MENU,
      env: { LOG_LEVEL: "warn" },
    });
    const streams: RawStream[] = [];
    try {
      // Each run on a fresh order process, so each peak is its own.
      await stack.stop("order");
      await stack.start("order");
      await placeFor(stack, STUDENTS, ORDERS / STUDENTS.length);
      const control = await orderMemory(stack);

      await stack.stop("order");
      await stack.start("order");
      for (let i = 0; i < STREAMS; i++) {
        const student = STUDENTS[i % STUDENTS.length];
        const stream = await openRaw(stack.url("order"), `/events?student_id=${student}`);
        streams.push(stream);
        assert.equal(stream.status, 200, `stream ${i} for ${student} opened`);
      }
      await placeFor(stack, STUDENTS, ORDERS / STUDENTS.length);
      const stalled = await orderMemory(stack);
      // How many fell further behind than the sockets' buffers hold depends on the machine's
      // speed (how many menus went out meanwhile); the bound must hold either way.
      const closed = (await stack.logs("order")).split("\n")
        .filter((line) => line.includes("event stream closed: its client fell behind")).length;

      const figures = `without streams: peak ${control.peakMb.toFixed(1)} MB, now ` +
        `${control.rssMb.toFixed(1)} MB; with ${STREAMS} stalled streams: peak ` +
        `${stalled.peakMb.toFixed(1)} MB, now ${stalled.rssMb.toFixed(1)} MB, ${closed} of them ` +
        "closed for falling behind";
      // Kept for the record on a pass too (test-output/ is not committed).
      const output = new URL("../test-output/", import.meta.url);
      await Deno.mkdir(output, { recursive: true });
      await Deno.writeTextFile(new URL("stalled-streams-memory.txt", output), `${figures}\n`);
      assert.ok(
        stalled.peakMb - control.peakMb < STALLED_STREAMS_BUDGET_MB,
        `the stalled streams cost at most ${STALLED_STREAMS_BUDGET_MB} MB at the peak; ${figures}`,
      );
      assert.ok(
        stalled.rssMb - control.rssMb < STALLED_STREAMS_BUDGET_MB,
        `the stalled streams hold at most ${STALLED_STREAMS_BUDGET_MB} MB at the end; ${figures}`,
      );
    } finally {
      streams.forEach(hangUp);
      await stack.dispose();
    }
  },
});

const SECRET = "stream-limits-secret-0123456789abcdefghij";
const token = (sub: string, role: TokenClaims["role"], ttlSeconds = 600) =>
  signToken(SECRET, { sub, role, ttlSeconds });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Asserts a refused stream: `status`, with `Retry-After` in whole seconds. */
function assertRefused(stream: RawStream, status: number, what: string): void {
  assert.equal(stream.status, status, what);
  assert.match(stream.headers["retry-after"] ?? "", /^[1-9][0-9]*$/, `${what}: Retry-After`);
  hangUp(stream);
}

Deno.test({
  name: "STREAMS_PER_STUDENT caps a student's streams, from the token or from ?student_id=",
  ...INTEGRATION,
  fn: async (t) => {
    const stack = await Stack.start({ env: { AUTH_SECRET: SECRET } });
    const open: RawStream[] = [];
    const openStream = async (path: string, headers: Record<string, string>) => {
      const stream = await openRaw(stack.url("order"), path, headers);
      if (stream.status === 200) open.push(stream);
      return stream;
    };
    try {
      const alice = await token("S-alice", "student");
      const staff = await token("chef", "staff");

      await t.step("five streams of one student open, by token and by ?student_id=", async () => {
        const answers = [
          await openStream("/events", bearer(alice)),
          await openStream("/events", bearer(alice)),
          await openStream("/events?student_id=S-alice", bearer(alice)),
          await openStream("/events?student_id=S-alice", bearer(staff)),
          await openStream("/events?student_id=S-alice", bearer(staff)),
        ];
        assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200]);
      });

      await t.step("the sixth gets 429 with Retry-After, whichever way it names her", async () => {
        assertRefused(await openStream("/events", bearer(alice)), 429, "by her token");
        assertRefused(
          await openStream("/events?student_id=S-alice", bearer(staff)),
          429,
          "by a staff token's ?student_id=",
        );
        const bob = await openStream("/events", bearer(await token("S-bob", "student")));
        assert.equal(bob.status, 200, "another student is not held back");
      });

      await t.step("a stream its client left gives its slot back", async () => {
        hangUp(open.shift()!);
        await waitFor(async () => (await openStream("/events", bearer(alice))).status === 200, {
          what: "a stream for S-alice once one of hers was closed",
        });
      });

      await t.step("streams that end with their token give their slots back", async () => {
        const briefly = await token("S-carol", "student", 3);
        for (let i = 0; i < 5; i++) {
          assert.equal((await openStream("/events", bearer(briefly))).status, 200);
        }
        const carol = await token("S-carol", "student");
        assertRefused(await openStream("/events", bearer(carol)), 429, "S-carol's sixth");
        await waitFor(async () => {
          const stream = await openStream("/events", bearer(carol));
          if (stream.status !== 200) hangUp(stream);
          return stream.status === 200;
        }, { what: "a stream for S-carol once her first token expired" });
      });
    } finally {
      open.forEach(hangUp);
      await stack.dispose();
    }
  },
});

Deno.test({
  name: "MAX_STREAMS caps all streams with 503, ?student_id= without tokens too, and a stream " +
    "that falls behind is closed",
  ...INTEGRATION,
  fn: async (t) => {
    const stack = await Stack.start({ menu: LONG_MENU, env: { MAX_STREAMS: "8" } });
    const open: RawStream[] = [];
    const openStream = async (path: string) => {
      const stream = await openRaw(stack.url("order"), path);
      if (stream.status === 200) open.push(stream);
      return stream;
    };
    try {
      await t.step("a sixth ?student_id= stream gets 429 with Retry-After", async () => {
        for (let i = 0; i < 5; i++) {
          assert.equal((await openStream("/events?student_id=S1")).status, 200, `S1 stream ${i}`);
        }
        assertRefused(await openStream("/events?student_id=S1"), 429, "S1's sixth stream");
      });

      await t.step("past MAX_STREAMS every stream gets 503 with Retry-After", async () => {
        assert.equal((await openStream("/events?student_id=S2")).status, 200);
        assert.equal((await openStream("/events")).status, 200, "a menu-only stream");
        const board = await openStream("/board/events");
        assert.equal(board.status, 200, "a board stream");
        assertRefused(await openStream("/events?student_id=S3"), 503, "a ninth stream");
        assertRefused(await openStream("/board/events"), 503, "a ninth stream, for a board");
        hangUp(board);
        await waitFor(async () => {
          const stream = await openStream("/events?student_id=S3");
          if (stream.status !== 200) hangUp(stream);
          return stream.status === 200;
        }, { what: "a stream for S3 once the board's stream was closed" });
      });

      await t.step("streams that fall behind are closed and give their slots back", async () => {
        assertRefused(await openStream("/events?student_id=S4"), 503, "while all 8 are open");
        // Every stock change sends the long menu to all eight streams, none of which reads.
        const stalled = () =>
          stack.logs("order").then((log) =>
            log.includes("event stream closed: its client fell behind")
          );
        await waitFor(async () => {
          if (await stalled()) return true;
          await placeFor(stack, ["S-load"], 50);
          return false;
        }, { timeoutMs: 120_000, what: "the service to close a stream that fell behind" });
        await waitFor(async () => {
          const stream = await openStream("/events?student_id=S4");
          if (stream.status !== 200) hangUp(stream);
          return stream.status === 200;
        }, { what: "a stream for S4 once a stalled one was closed" });
      });
    } finally {
      open.forEach(hangUp);
      await stack.dispose();
    }
  },
});
