/**
 * The inventory service: reserves stock for each `OrderPlaced` and announces the result;
 * `GET /inventory` lists stock levels.
 * @module
 */
import { decodeEvent, OrderPlaced } from "@campus/shared/events";
import { json } from "@campus/shared/http";
import type { ServiceDefinition, ServiceDeps } from "@campus/shared/service";
import { StockStore } from "./stock_store.ts";

/** Why a dead-lettered order failed, as the student reads it; the technical reason follows. */
export const SET_ASIDE_REASON =
  "Inventory could not process this order; it was set aside for staff";

/** Builds the inventory service from its dependencies. */
export function createInventoryService(
  { config, db, outbox, log }: ServiceDeps,
): ServiceDefinition {
  const stock = new StockStore(db, outbox, config.menu);
  return {
    routes: [{ method: "GET", path: "/inventory", handler: () => json(stock.levels()) }],
    subscriptions: {
      order_placed: {
        handle: ({ body, retries }) => {
          const order = decodeEvent("OrderPlaced", body);
          if (config.testFaults) injectFault(order, retries);
          const reservation = stock.reserve(order);
          if (reservation.duplicate) {
            log.info("duplicate order, re-announcing its outcome", {
              order_id: order.order_id,
              outcome: reservation.outcome,
            });
          }
        },
        // A valid order that could not be processed still gets an outcome: the student is told
        // it failed instead of waiting forever, and the message waits in the DLQ for staff.
        onDeadLetter: (raw, reason) => {
          const order = OrderPlaced.safeParse(parseJson(raw));
          if (!order.success) return;
          stock.setAside(order.data, `${SET_ASIDE_REASON} (${reason})`);
        },
      },
    },
  };
}

/**
 * Test-only failures, enabled by `TEST_FAULTS=on`, chosen by the order's student id:
 * `fault:transient:N` fails the first N attempts, `fault:permanent` fails every attempt and
 * `fault:crash` kills the process before the message can be acknowledged.
 */
function injectFault(order: OrderPlaced, retries: number): void {
  const id = order.student_id;
  const transient = /^fault:transient:(\d+)$/.exec(id);
  if (transient && retries < Number(transient[1])) {
    throw new Error(`injected transient fault (attempt ${retries + 1})`);
  }
  if (id === "fault:permanent") throw new Error("injected permanent fault");
  if (id === "fault:crash") Deno.exit(70);
}

function parseJson(raw: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(raw));
  } catch {
    return undefined;
  }
}
