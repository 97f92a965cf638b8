/**
 * A message that kills inventory every time it is handled, among a full prefetch window of
 * innocent ones, while a supervisor restarts inventory each time it dies: only the crashing
 * message is charged for the crashes and dead-lettered, every other order is reserved. After
 * each crash the innocent ones are redelivered beside it, one batch each, handled side by side
 * while the crashing one's handler waits for the database: SQLite's lock, held by the
 * transactions ahead of it, or (PostgreSQL) the Coffee row, held for a moment by another
 * transaction as an operator's `psql` would.
 */
import assert from "node:assert/strict";
import { REASON_HEADER } from "@campus/shared/consumer";
import { PostgresDatabase } from "@campus/shared/postgres";
import { TEST_POSTGRES_URL } from "@campus/testing/store_contract";
import { INTEGRATION, type ServiceExit, Stack } from "./stack.ts";
import { finalOrders, listOrders, type OrderRequest, placeOrders } from "./client.ts";
import { waitFor } from "./poll.ts";

const ORDERS = 150;
const PREFETCH = 100;
const MAX_DELIVERIES = 5;
/** Where the crashing order sits in the queue: inside the first prefetch window, not first. */
const CRASH_AT = 70;
/** Exit code of the injected crash (services/inventory/app.ts). */
const CRASH_EXIT_CODE = 70;
const MENU = { Coffee: 1000 };
/** A body this big arrives in a socket read of its own: one delivery per batch. */
const NOTE_BYTES = 60_000;

for (const store of ["sqlite", "postgres"] as const) {
  Deno.test(
    `a crash loop dead-letters only the message that crashed (${store})`,
    INTEGRATION,
    () => crashLoop(store),
  );
}

async function crashLoop(store: "sqlite" | "postgres") {
  const stack = await Stack.start({
    menu: MENU,
    store,
    env: {
      TEST_FAULTS: "on",
      PREFETCH: String(PREFETCH),
      MAX_DELIVERIES: String(MAX_DELIVERIES),
    },
  });
  let coffeeRow: RowHolder | undefined;
  try {
    // Inventory ran once, so its database has its tables; the orders queue while it is down.
    if (store === "postgres") coffeeRow = new RowHolder(await databaseOf(stack, "inventory"));
    await stack.stop("inventory");
    const requests: OrderRequest[] = Array.from({ length: ORDERS }, (_, i) => ({
      item: "Coffee",
      qty: 1,
      student_id: i === CRASH_AT ? "fault:crash" : `loop-${i}`,
    }));
    // One at a time, so the queue holds them in this order when inventory starts.
    const placed = await placeOrders(stack, requests, { concurrency: 1 });
    const crashing = placed[CRASH_AT].order_id;
    await waitFor(async () => (await stack.queueDepth("order_placed")) === ORDERS, {
      what: `the ${ORDERS} orders queued in order_placed`,
    });
    await spreadOverSocketReads(stack);

    const ids = placed.map((o) => o.order_id);
    const wanted = new Set(ids);
    const decided = async () =>
      (await listOrders(stack)).filter((o) => wanted.has(o.order_id) && o.status !== "PLACED")
        .length === ORDERS;
    // The supervisor: start inventory, and start it again each time it dies, until every
    // order has its outcome. A bound on the rounds turns an endless loop into a failure.
    const exits: ServiceExit[] = [];
    for (let round = 0; round <= 3 * MAX_DELIVERIES; round++) {
      const holder = coffeeRow;
      if (holder) {
        await holder.holdWhile(
          () => startAfterCrash(stack),
          async () =>
            Boolean(await stack.exitStatus("inventory")) ||
            (await windowInHand(stack) && await holder.awaited()),
        );
      } else {
        await startAfterCrash(stack);
      }
      const next = await waitFor(async () => {
        const exit = await stack.exitStatus("inventory");
        if (exit) return { exit };
        return await decided() ? { decided: true } : undefined;
      }, { timeoutMs: 60_000, what: "inventory to die, or every order to have its outcome" });
      if (!next.exit) break;
      exits.push(next.exit);
    }
    assert.equal(await stack.exitStatus("inventory"), undefined, "inventory runs on");

    const final = await finalOrders(stack, ids);
    const failed = [...final.values()].filter((o) => o.status === "FAILED");
    assert.deepEqual(
      failed.map((o) => o.order_id),
      [crashing],
      `only the crashing order fails; failed (position, student, reason): ${
        JSON.stringify(failed.map((o) => [ids.indexOf(o.order_id), o.student_id, o.reason]))
      }`,
    );
    const reserved = [...final.values()].filter((o) => o.status === "RESERVED");
    assert.equal(reserved.length, ORDERS - 1, `the other ${ORDERS - 1} orders are reserved`);

    await waitFor(async () => (await stack.queueDepth("order_placed_dlq")) >= 1, {
      what: "the crashing order in order_placed_dlq",
    });
    const dead = await stack.broker.take("order_placed_dlq", ORDERS);
    assert.deepEqual(
      dead.map((m) => m.properties.correlationId),
      [crashing],
      `exactly the crashing message is dead-lettered; got (position, reason) ${
        JSON.stringify(dead.map((m) => [
          ids.indexOf(String(m.properties.correlationId)),
          m.properties.headers[REASON_HEADER],
        ]))
      }`,
    );
    assert.equal(
      dead[0].properties.headers[REASON_HEADER],
      `delivered ${
        MAX_DELIVERIES + 1
      } times without being acknowledged (the consumer kept stopping)`,
    );
    assert.deepEqual(
      exits.map((e) => e.code),
      Array(MAX_DELIVERIES).fill(CRASH_EXIT_CODE),
      `inventory died once per delivery of the crashing message, ${MAX_DELIVERIES} times`,
    );
    assert.equal(await stack.queueDepth("order_placed"), 0, "nothing is left in the queue");
  } finally {
    await coffeeRow?.close();
    await stack.dispose();
  }
}

/**
 * Gives every queued `OrderPlaced` a note of {@linkcode NOTE_BYTES} (the schema tolerates extra
 * fields), keeping the queue's order. A window of such messages reaches inventory a delivery
 * per socket read, so each redelivery is a batch of its own and they are all handled side by
 * side, as ordinary ones are when they trickle in: the widest concurrency a consumer sees.
 */
async function spreadOverSocketReads(stack: Stack): Promise<void> {
  const note = "n".repeat(NOTE_BYTES);
  const queued = await stack.broker.take("order_placed", ORDERS);
  assert.equal(queued.length, ORDERS, "every order was queued");
  for (const { body, properties } of queued) {
    const padded = { ...JSON.parse(new TextDecoder().decode(body)), note };
    await stack.broker.sendToQueue(
      "order_placed",
      new TextEncoder().encode(JSON.stringify(padded)),
      properties,
    );
  }
}

/** Starts inventory; it may die again before it answers, which the supervisor sees next. */
async function startAfterCrash(stack: Stack): Promise<void> {
  try {
    await stack.start("inventory");
  } catch (err) {
    if (!(await stack.exitStatus("inventory"))) throw err;
  }
}

/** True once inventory holds every delivery its prefetch allows: the whole window reached it. */
async function windowInHand(stack: Stack): Promise<boolean> {
  const listing = await stack.rabbitmqctl(
    "list_queues",
    "-q",
    "--no-table-headers",
    "name",
    "messages_ready",
    "messages_unacknowledged",
  );
  const line = listing.split("\n").map((l) => l.trim().split(/\s+/))
    .find(([name]) => name === "order_placed");
  const [ready, unacked] = [Number(line?.[1]), Number(line?.[2])];
  return unacked === PREFETCH || (unacked > 0 && ready === 0);
}

/** A PostgreSQL database a running service is connected to, found by its connection's name. */
async function databaseOf(stack: Stack, service: "inventory"): Promise<string> {
  const pid = await stack.backend.pid(service);
  const server = PostgresDatabase.connect(TEST_POSTGRES_URL, { name: "crash-loop-test" });
  try {
    const name = await waitFor(async () => {
      const [row] = await server.sql`SELECT datname FROM pg_stat_activity
        WHERE application_name = ${`${service}-${pid}`} LIMIT 1`;
      return row?.datname as string | undefined;
    }, { what: `a connection of ${service} (pid ${pid}) in pg_stat_activity` });
    const url = new URL(TEST_POSTGRES_URL);
    url.pathname = `/${name}`;
    return url.toString();
  } finally {
    await server.close();
  }
}

/** Another transaction on inventory's Coffee row, as an operator's `psql` would hold it. */
class RowHolder {
  #db: PostgresDatabase;

  constructor(url: string) {
    this.#db = PostgresDatabase.connect(url, { name: "operator" });
  }

  /** Locks the row, runs `start`, and lets the row go once `until` holds. */
  async holdWhile(start: () => Promise<void>, until: () => Promise<boolean>): Promise<void> {
    let locked = () => {};
    const isLocked = new Promise<void>((resolve) => locked = resolve);
    let release = () => {};
    const released = new Promise<void>((resolve) => release = resolve);
    const holding = this.#db.transaction(async () => {
      await this.#db.sql`SELECT item FROM stock WHERE item = 'Coffee' FOR UPDATE`;
      locked();
      await released;
    });
    await isLocked;
    try {
      await start();
      await waitFor(until, {
        what: "inventory's whole window delivered and its handling waiting for the Coffee row",
      });
    } finally {
      release();
      await holding;
    }
  }

  /** True when some transaction waits for a lock in this database. */
  async awaited(): Promise<boolean> {
    const [{ n }] = await this.#db.sql`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`;
    return n > 0;
  }

  /** Closes its connections. */
  close(): Promise<void> {
    return this.#db.close();
  }
}
