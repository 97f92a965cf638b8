/**
 * Where a `DATABASE_URL` points: a host and port, or a Unix socket named as libpq names one, by
 * a `host` parameter that is a directory (`postgresql://campus@/campus?host=/var/run/postgresql`).
 * On the database's own machine a socket costs both ends less CPU per round trip than TCP. The
 * driver (npm:postgres 3.4.9) takes a socket path as an option and would send the `host`
 * parameter to the server as a setting, and a URL with a user but no host does not parse; so the
 * URL is split here, and the service runner grants the socket from the same answer.
 * @module
 */

/** A `DATABASE_URL` as the driver takes it, and its Unix socket, if it names one. */
export interface PostgresTarget {
  /** The URL for the driver: with a socket, `localhost` stands in for the empty host. */
  url: string;
  /** The socket file (`<directory>/.s.PGSQL.<port>`), when the URL names a directory. */
  socket?: string;
}

const URL_PARTS = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/;

/**
 * The driver's URL and socket of `url`. A `host` parameter that does not start with `/` is
 * left alone, as is a URL that does not parse (the driver reports it).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { postgresTarget } from "./postgres_target.ts";
 * assert.deepEqual(postgresTarget("postgresql://campus:pw@/orders?host=/run/postgresql"), {
 *   url: "postgresql://campus:pw@localhost:5432/orders",
 *   socket: "/run/postgresql/.s.PGSQL.5432",
 * });
 * assert.deepEqual(postgresTarget("postgres://db:5433/orders"), { url: "postgres://db:5433/orders" });
 * ```
 */
export function postgresTarget(url: string): PostgresTarget {
  const parts = URL_PARTS.exec(url);
  if (!parts) return { url };
  const [, scheme, credentials = "", authority, path, query = "", fragment = ""] = parts;
  const params = new URLSearchParams(query.slice(1));
  const directory = params.get("host");
  if (!directory?.startsWith("/")) return { url };
  // libpq's own parameter, or the port of the authority (`@:5433/db`): it names the socket file.
  const port = params.get("port") || authority.split(":")[1] || "5432";
  params.delete("host");
  params.delete("port");
  const rest = params.size > 0 ? `?${params}` : "";
  return {
    url: `${scheme}${credentials}localhost:${port}${path}${rest}${fragment}`,
    socket: `${directory.replace(/\/+$/, "")}/.s.PGSQL.${port}`,
  };
}
