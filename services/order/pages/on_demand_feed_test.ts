import assert from "node:assert/strict";
import type { Logger } from "@campus/shared/log";
import { type Delay, type FeedConnection, OnDemandFeed } from "./on_demand_feed.ts";
import { waitFor } from "../../../tests/poll.ts";

/** A listener that records what was done to it; its close waits for `finishClose()`. */
class FakeListener implements FeedConnection {
  started = 0;
  closed = 0;
  #finish: (() => void) | undefined;
  constructor(readonly holdClose = false) {}
  start() {
    this.started++;
  }
  close() {
    this.closed++;
    if (!this.holdClose) return Promise.resolve();
    return new Promise<void>((resolve) => this.#finish = resolve);
  }
  finishClose() {
    this.#finish?.();
  }
}

/** A feed whose grace ends when the test says so, and the listeners it made. */
function setup({ holdClose = false, listen }: {
  holdClose?: boolean;
  listen?: () => FeedConnection;
} = {}) {
  const listeners: FakeListener[] = [];
  const graces: { ms: number; run: () => void; cancelled: boolean }[] = [];
  const delay: Delay = (ms, run) => {
    const grace = { ms, run, cancelled: false };
    graces.push(grace);
    return () => grace.cancelled = true;
  };
  const errors: string[] = [];
  const log: Logger = {
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: (msg, fields) => errors.push(`${msg}: ${fields?.error}`),
  };
  const feed = new OnDemandFeed({
    graceMs: 1234,
    log,
    delay,
    listen: listen ?? (() => {
      const listener = new FakeListener(holdClose);
      listeners.push(listener);
      return listener;
    }),
  });
  /** Ends the pending grace, as its timer would. */
  const endGrace = () => {
    const grace = graces.at(-1);
    assert.ok(grace && !grace.cancelled, "a grace is pending");
    grace.run();
  };
  return { feed, listeners, graces, endGrace, errors };
}

Deno.test("nothing listens until a page watches; the last one leaves, and a grace later it closes", async () => {
  const { feed, listeners, graces, endGrace } = setup();
  assert.equal(listeners.length, 0, "no listener before a page watches");
  const first = feed.watch();
  const second = feed.watch();
  await waitFor(() => feed.active, { what: "the listener to start" });
  assert.equal(listeners.length, 1, "one listener for every page");
  assert.equal(listeners[0].started, 1);
  first();
  first();
  assert.equal(graces.length, 0, "a page still watches: no grace yet");
  second();
  assert.deepEqual(graces.map((g) => g.ms), [1234], "the grace starts with the last page gone");
  assert.equal(listeners[0].closed, 0, "kept through the grace");
  endGrace();
  await waitFor(() => listeners[0].closed === 1, { what: "the listener to close" });
  assert.equal(feed.active, false);
});

Deno.test("a page that watches within the grace keeps the listener", async () => {
  const { feed, listeners, graces } = setup();
  const first = feed.watch();
  await waitFor(() => listeners.length === 1, { what: "the listener to start" });
  first();
  const again = feed.watch();
  assert.equal(graces[0].cancelled, true, "the pending close is cancelled");
  again();
  assert.equal(graces.length, 2, "a new grace after the page leaves again");
  assert.equal(listeners.length, 1, "the same listener all along");
  assert.equal(listeners[0].closed, 0);
  await feed.stop();
  assert.equal(listeners[0].closed, 1, "stop closes it at once");
  assert.equal(graces[1].cancelled, true, "and drops the grace");
});

Deno.test("after a close a new listener starts, never two alive at once", async () => {
  const { feed, listeners, endGrace } = setup({ holdClose: true });
  const first = feed.watch();
  await waitFor(() => listeners.length === 1, { what: "the first listener to start" });
  first();
  endGrace();
  await waitFor(() => listeners[0].closed === 1, { what: "the first listener's close" });
  const release = feed.watch();
  await Promise.resolve();
  assert.equal(listeners.length, 1, "no new listener while the first is still closing");
  listeners[0].finishClose();
  await waitFor(() => listeners.length === 2, { what: "a new listener after the close" });
  assert.equal(listeners[1].started, 1);
  assert.equal(feed.active, true);
  release();
  const stopped = feed.stop();
  await waitFor(() => listeners[1].closed === 1, { what: "stop to close the second listener" });
  listeners[1].finishClose();
  await stopped;
  assert.equal(listeners[1].closed, 1);
  feed.watch();
  await Promise.resolve();
  assert.equal(listeners.length, 2, "a stopped feed starts nothing");
});

Deno.test("a page that leaves before the listener starts leaves none behind", async () => {
  const { feed, listeners, endGrace } = setup();
  feed.watch()();
  endGrace();
  await feed.stop();
  assert.equal(listeners.length, 0, "nobody watched once the listener's turn came");
});

Deno.test("a listener that fails to start is logged, and the next page tries again", async () => {
  let attempts = 0;
  const started: FakeListener[] = [];
  const { feed, errors } = setup({
    listen: () => {
      if (++attempts === 1) throw new Error("no broker URL");
      const listener = new FakeListener();
      started.push(listener);
      return listener;
    },
  });
  const first = feed.watch();
  await waitFor(() => attempts === 1, { what: "a first attempt" });
  assert.equal(feed.active, false, "nothing alive after a failed start");
  assert.deepEqual(errors, ["cannot start the event feed: no broker URL"]);
  const second = feed.watch();
  await waitFor(() => feed.active, { what: "the second page's attempt to start the listener" });
  assert.equal(started.length, 1);
  first();
  second();
  await feed.stop();
  assert.equal(started[0].closed, 1);
});

Deno.test("a listener that fails to close is logged, and a new one starts after it", async () => {
  const made: FeedConnection[] = [];
  const { feed, errors, endGrace } = setup({
    listen: () => {
      const listener: FeedConnection = {
        start: () => {},
        close: () => Promise.reject(new Error("socket gone")),
      };
      made.push(listener);
      return listener;
    },
  });
  const first = feed.watch();
  await waitFor(() => feed.active, { what: "the first listener to start" });
  first();
  endGrace();
  await waitFor(() => errors.length === 1, { what: "the failed close to be logged" });
  assert.deepEqual(errors, ["cannot close the event feed: socket gone"]);
  feed.watch();
  await waitFor(() => made.length === 2, { what: "a new listener after the failed close" });
  await feed.stop();
  assert.equal(errors.length, 2, "stop logs its failed close too, and resolves");
});
