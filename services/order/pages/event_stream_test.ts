import assert from "node:assert/strict";
import { EventStreamReader } from "../../../tests/event_stream_client.ts";
import { waitFor } from "../../../tests/poll.ts";
import { HttpError } from "@campus/shared/http";
import { createLogger } from "@campus/shared/log";
import { EventStreams, type SendEvent, STREAM_RETRY_AFTER_S } from "./event_stream.ts";

Deno.test("an event stream sends events, keeps quiet ones alive and ends on closeAll", async () => {
  const streams = new EventStreams({ heartbeatMs: 10 });
  let tornDown = false;
  const res = streams.open((send) => {
    send("hello", { n: 1 });
    return () => tornDown = true;
  });
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assert.equal(res.headers.get("cache-control"), "no-store");
  const reader = new EventStreamReader(res);
  assert.deepEqual(await reader.next("the first event"), { event: "hello", data: { n: 1 } });
  assert.equal(streams.size, 1);
  const heartbeats = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (reader.comments > 0) {
        clearInterval(check);
        resolve();
      }
    }, 5);
  });
  // The reader only sees comments while it reads: ask for an event that never comes.
  const waiting = reader.next("nothing", () => false, 5_000).catch(() => undefined);
  await heartbeats;
  streams.closeAll();
  await waiting;
  assert.ok(tornDown, "the stream's teardown ran");
  assert.equal(streams.size, 0);
  const refused = streams.open(() => () => {});
  assert.equal(refused.status, 503, "no new stream once closing");
  await refused.body?.cancel();
});

Deno.test("a client that hangs up ends its stream's subscription", async () => {
  const streams = new EventStreams();
  let tornDown = false;
  const res = streams.open(() => () => tornDown = true);
  await res.body!.cancel();
  assert.ok(tornDown);
  assert.equal(streams.size, 0);
  streams.closeAll();
});

Deno.test("a stream opened with a token ends when the token expires", async () => {
  const streams = new EventStreams();
  let tornDown = false;
  const res = streams.open((send) => {
    send("hello", {});
    return () => tornDown = true;
  }, { endsAt: Date.now() + 50 });
  const reader = new EventStreamReader(res);
  await reader.next("the first event");
  assert.ok(await reader.ended(), "the stream ended by itself");
  assert.ok(tornDown);
  assert.equal(streams.size, 0);
  streams.closeAll();
});

/** Opens a stream whose `send` the test keeps, to push events at will. */
function openPushed(streams: EventStreams, options: { student?: string; endsAt?: number } = {}) {
  let send: SendEvent = () => {};
  let tornDown = false;
  const res = streams.open((s) => {
    send = s;
    return () => tornDown = true;
  }, options);
  return {
    res,
    send: (event: string, data: unknown) => send(event, data),
    tornDown: () => tornDown,
  };
}

/** The HttpError `open` throws, asserted to be one. */
function refusal(open: () => unknown): HttpError {
  try {
    open();
  } catch (err) {
    assert.ok(err instanceof HttpError, `an HttpError, got ${err}`);
    return err;
  }
  assert.fail("the stream was opened");
}

Deno.test("a stream whose client falls too far behind is closed and its slot freed", async () => {
  const lines: string[] = [];
  const streams = new EventStreams({
    maxUnsentBytes: 1024,
    log: createLogger("test", "warn", (line) => lines.push(line)),
  });
  const stalled = openPushed(streams, { student: "S1" });
  const padding = "x".repeat(200);
  for (let i = 0; i < 20; i++) stalled.send("order", { i, padding });
  assert.ok(stalled.tornDown(), "the stream's teardown ran");
  assert.equal(streams.size, 0);
  assert.equal(streams.openFor("S1"), 0);
  // What was queued is dropped with the stream, not kept for a client that never reads it.
  await assert.rejects(stalled.res.body!.getReader().read(), /bytes unread/);
  assert.match(lines.join("\n"), /event stream closed: its client fell behind/);
  streams.closeAll();
});

Deno.test("the events a stream opens with always go, however large", async () => {
  const streams = new EventStreams({ maxUnsentBytes: 1024 });
  const menu = { items: "x".repeat(4096) };
  const res = streams.open((send) => {
    send("menu", menu);
    send("orders", []);
    return () => {};
  });
  const reader = new EventStreamReader(res);
  assert.deepEqual(await reader.next("the menu"), { event: "menu", data: menu });
  assert.deepEqual(await reader.next("the orders"), { event: "orders", data: [] });
  assert.equal(streams.size, 1, "still open");
  streams.closeAll();
  await reader.cancel();
});

Deno.test("a client that keeps up is never closed, however much it is sent", async () => {
  const streams = new EventStreams({ maxUnsentBytes: 1024 });
  const live = openPushed(streams);
  const reader = new EventStreamReader(live.res);
  const padding = "x".repeat(600);
  for (let i = 0; i < 200; i++) {
    live.send("order", { i, padding });
    assert.equal(((await reader.next(`event ${i}`)).data as { i: number }).i, i);
  }
  assert.equal(streams.size, 1);
  streams.closeAll();
  await reader.cancel();
});

Deno.test("one student's streams and all streams are capped, and a slot comes back", async (t) => {
  const streams = new EventStreams({ perStudent: 2, max: 4 });
  const s1 = [openPushed(streams, { student: "S1" }), openPushed(streams, { student: "S1" })];

  await t.step("a student past the cap gets 429 with Retry-After", () => {
    const refused = refusal(() => streams.open(() => () => {}, { student: "S1" }));
    assert.equal(refused.status, 429);
    assert.equal(refused.headers?.["retry-after"], String(STREAM_RETRY_AFTER_S));
    assert.match(refused.message, /Too many event streams for student "S1": at most 2/);
    assert.deepEqual((refused.details as { field: string }[])[0].field, "student_id");
    assert.equal(streams.openFor("S1"), 2, "the refused stream took no slot");
  });

  await t.step("other students and streams of no student still open", () => {
    openPushed(streams, { student: "S2" });
    openPushed(streams);
    assert.equal(streams.size, 4);
  });

  await t.step("the service past its cap gets 503 with Retry-After", () => {
    const refused = refusal(() => streams.open(() => () => {}, { student: "S3" }));
    assert.equal(refused.status, 503);
    assert.equal(refused.headers?.["retry-after"], String(STREAM_RETRY_AFTER_S));
    assert.match(refused.message, /at most 4/);
    assert.equal(streams.openFor("S3"), 0);
  });

  await t.step("a stream its client left frees its slot", async () => {
    await s1[0].res.body!.cancel();
    assert.ok(s1[0].tornDown());
    assert.equal(streams.openFor("S1"), 1);
    openPushed(streams, { student: "S1" });
    assert.equal(streams.openFor("S1"), 2);
  });

  await t.step("closeAll frees every slot", () => {
    streams.closeAll();
    assert.equal(streams.size, 0);
    assert.equal(streams.openFor("S1"), 0);
    assert.equal(streams.openFor("S2"), 0);
  });
});

Deno.test("a stream that ends with its token frees its slot", async () => {
  const streams = new EventStreams({ perStudent: 1 });
  const expiring = openPushed(streams, { student: "S1", endsAt: Date.now() + 50 });
  assert.equal(refusal(() => streams.open(() => () => {}, { student: "S1" })).status, 429);
  assert.ok(await new EventStreamReader(expiring.res).ended(), "the stream ended by itself");
  assert.equal(streams.openFor("S1"), 0);
  const next = openPushed(streams, { student: "S1" });
  assert.equal(next.res.status, 200);
  streams.closeAll();
});

Deno.test("a setup that throws takes no slot", () => {
  const streams = new EventStreams({ perStudent: 1 });
  assert.throws(() =>
    streams.open(() => {
      throw new Error("no store");
    }, { student: "S1" }), /no store/);
  assert.equal(streams.size, 0);
  assert.equal(streams.openFor("S1"), 0);
  streams.closeAll();
});

Deno.test("an update sent on many streams reaches each of them whole over HTTP", async () => {
  const streams = new EventStreams();
  const sends: SendEvent[] = [];
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () =>
      streams.open((send) => {
        sends.push(send);
        return () => {};
      }),
  );
  const readers = await Promise.all(
    [1, 2, 3].map(async () =>
      new EventStreamReader(await fetch(`http://127.0.0.1:${server.addr.port}/`))
    ),
  );
  await waitFor(() => sends.length === 3, { what: "three open streams" });
  // The same object to every stream, as the hub fans an update out: its bytes are shared.
  for (let n = 0; n < 3; n++) {
    const menu = { n, items: Array.from({ length: 500 }, (_, i) => ({ item: `Dish ${i}` })) };
    for (const send of sends) send("menu", menu);
    for (const reader of readers) {
      assert.deepEqual(await reader.next(`menu ${n}`), { event: "menu", data: menu });
    }
  }
  streams.closeAll();
  for (const reader of readers) await reader.ended();
  await server.shutdown();
});

Deno.test("a stalled stream whose token expires is dropped with what it held", async () => {
  const streams = new EventStreams({ perStudent: 1 });
  const stalled = openPushed(streams, { student: "S1", endsAt: Date.now() + 50 });
  stalled.send("order", { padding: "x".repeat(1000) });
  await waitFor(() => streams.openFor("S1") === 0, { what: "the token's end to free the slot" });
  assert.ok(stalled.tornDown());
  await assert.rejects(stalled.res.body!.getReader().read(), /bytes unread/);
  streams.closeAll();
});
