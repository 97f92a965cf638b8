/**
 * The HTTP router: routes matched with `URLPattern`, 404 and 405 answered here, access checked
 * before a handler runs, and never a client mistake turned into a 500. The responses and the
 * body reader it is used with are in `http_response.ts` and `http_body.ts`, exported here too.
 * @module
 */
import type { Access, Caller } from "./caller.ts";
import type { Logger } from "../runtime/log.ts";
import { type ServiceMetrics, UNMATCHED_ROUTE } from "../runtime/metrics.ts";
import { nameRequestSpan } from "../runtime/tracing.ts";
import { HttpError, json } from "./http_response.ts";

export { HttpError, type HttpErrorOptions, json, jsonArray } from "./http_response.ts";
export { readJson, type ReadJsonOptions } from "./http_body.ts";

/** Path parameters matched by a route, e.g. `{ id: "..." }`. */
export type Params = Record<string, string | undefined>;

/**
 * Handles one matched request; `caller` is who sent it, when authentication is on and the
 * route is not public.
 */
export type RouteHandler = (
  req: Request,
  params: Params,
  url: URL,
  caller?: Caller,
) => Response | Promise<Response>;

/** A method, a `URLPattern` pathname and its handler. */
export interface Route {
  /** HTTP method it answers. */
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** `URLPattern` pathname, e.g. `/orders/:id`. */
  path: string;
  /** What answers a matching request. */
  handler: RouteHandler;
  /** Who may call it when authentication is on; `signed_in` unless given. */
  access?: Access;
}

/**
 * Admits a request to a route of `access`, or throws the {@linkcode HttpError} that refuses it
 * (401, 403); returns the caller, if it is known. `Authenticator.admit` in `auth.ts` is one.
 */
export type RouteGuard = (req: Request, access: Access) => Promise<Caller | undefined>;

/**
 * Builds a request handler from routes. Unknown paths answer 404, known paths with another
 * method 405 with `Allow`, {@linkcode HttpError}s their own status, anything else 500 (logged).
 * With `metrics`, each request's time is recorded under its route's pattern (`/orders/:id`), or
 * `unmatched` for a path no route knows. With `guard` (authentication on), each request must
 * pass it for its route's `access` before the handler runs.
 */
export function createRouter(
  routes: readonly Route[],
  log: Logger,
  metrics?: ServiceMetrics,
  guard?: RouteGuard,
): (req: Request) => Promise<Response> {
  const answer = routeRequest(routes, log, guard);
  if (!metrics) return async (req) => (await answer(req)).response;
  return async (req) => {
    const started = performance.now();
    const { response, route } = await answer(req);
    metrics.request(req.method, route, response.status, (performance.now() - started) / 1000);
    return response;
  };
}

/** The response to a request, and the pattern of the route that answered it. */
function routeRequest(
  routes: readonly Route[],
  log: Logger,
  guard: RouteGuard | undefined,
): (req: Request) => Promise<{ response: Response; route: string }> {
  const compiled = routes.map((r) => ({ ...r, pattern: new URLPattern({ pathname: r.path }) }));
  // Fixed paths are looked up directly; patterns are tried only for the others (URLPattern
  // matching is the costliest step of a small request).
  const fixed = Map.groupBy(compiled.filter((r) => !/[:*(]/.test(r.path)), (r) => r.path);
  const patterned = compiled.filter((r) => !fixed.has(r.path));
  return async (req) => {
    const url = new URL(req.url);
    const onPath = fixed.get(url.pathname) ??
      patterned.filter((r) => r.pattern.test({ pathname: url.pathname }));
    if (onPath.length === 0) {
      return {
        response: json({ error: `Not found: ${url.pathname}` }, 404),
        route: UNMATCHED_ROUTE,
      };
    }
    const route = onPath.find((r) => r.method === req.method) ??
      (req.method === "HEAD" ? onPath.find((r) => r.method === "GET") : undefined);
    if (!route) {
      const allow = [...new Set(onPath.map((r) => r.method))].join(", ");
      return {
        response: json({ error: `Method ${req.method} not allowed on ${url.pathname}` }, 405, {
          allow,
        }),
        route: onPath[0].path,
      };
    }
    nameRequestSpan(req.method, route.path);
    const params = fixed.has(route.path)
      ? {}
      : route.pattern.exec({ pathname: url.pathname })?.pathname.groups ?? {};
    try {
      const caller = guard ? await guard(req, route.access ?? "signed_in") : undefined;
      return { response: await route.handler(req, params, url, caller), route: route.path };
    } catch (err) {
      if (err instanceof HttpError) {
        const response = json(
          err.details === undefined ? { error: err.message } : {
            error: err.message,
            details: err.details,
          },
          err.status,
          err.headers,
        );
        return { response, route: route.path };
      }
      log.error("request failed", { method: req.method, path: url.pathname, error: String(err) });
      return { response: json({ error: "Internal error" }, 500), route: route.path };
    }
  };
}
