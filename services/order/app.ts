/**
 * The order service: `POST /order`, `GET /orders`, `GET /orders/{id}`, and the consumer that
 * moves orders to `RESERVED` or `FAILED` when inventory answers.
 * @module
 */
import { decodeInventoryResult, describeIssues, PlaceOrderRequest } from "@campus/shared/events";
import { HttpError, json, jsonArray, readJson } from "@campus/shared/http";
import type { ServiceDefinition, ServiceDeps } from "@campus/shared/service";
import { OrderIntake } from "./order_intake.ts";
import { type OrderStatus, OrderStore } from "./order_store.ts";

const STATUSES: readonly OrderStatus[] = ["PLACED", "RESERVED", "FAILED"];

/** Builds the order service from its dependencies. */
export function createOrderService({ db, outbox, log }: ServiceDeps): ServiceDefinition {
  const orders = new OrderStore(db, outbox);
  const intake = new OrderIntake(orders);
  return {
    routes: [
      {
        method: "POST",
        path: "/order",
        handler: async (req) => {
          const parsed = PlaceOrderRequest.safeParse(await readJson(req));
          if (!parsed.success) {
            const details = describeIssues(parsed.error);
            throw new HttpError(
              400,
              `Invalid order: ${details[0].field}: ${details[0].message}`,
              details,
            );
          }
          const order = await intake.place(parsed.data);
          return json(order, 201, { location: `/orders/${order.order_id}` });
        },
      },
      {
        method: "GET",
        path: "/orders",
        handler: (_req, _params, url) => jsonArray(orders.pages(orderQuery(url.searchParams))),
      },
      {
        method: "GET",
        path: "/orders/:id",
        handler: (_req, { id }) => {
          const order = orders.get(id ?? "");
          return order ? json(order) : json({ error: `Order "${id}" not found` }, 404);
        },
      },
    ],
    subscriptions: {
      order_status: {
        handle: ({ routingKey, body }) => {
          const result = decodeInventoryResult(routingKey, body);
          if (orders.applyResult(result)) {
            log.debug("order final", { order_id: result.event.order_id, status: result.outcome });
          }
        },
      },
    },
  };
}

function orderQuery(params: URLSearchParams) {
  const status = params.get("status") ?? undefined;
  if (status && !STATUSES.includes(status as OrderStatus)) {
    throw new HttpError(400, `Invalid status "${status}"; use one of ${STATUSES.join(", ")}`, [
      { field: "status", message: `must be one of ${STATUSES.join(", ")}` },
    ]);
  }
  const limitText = params.get("limit");
  const limit = limitText === null ? undefined : Number(limitText);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
    throw new HttpError(400, `Invalid limit "${limitText}"; use a positive whole number`, [
      { field: "limit", message: "must be a positive whole number" },
    ]);
  }
  return {
    student_id: params.get("student_id") ?? undefined,
    status: status as OrderStatus | undefined,
    limit,
  };
}
