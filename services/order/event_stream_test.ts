import assert from "node:assert/strict";
import { EventStreamReader } from "../../tests/event_stream_client.ts";
import { EventStreams } from "./event_stream.ts";

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
