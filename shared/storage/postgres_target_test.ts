import assert from "node:assert/strict";
import { postgresTarget } from "./postgres_target.ts";

Deno.test("postgresTarget() splits a libpq socket directory off the URL", async (t) => {
  await t.step("a host and port are left as they are", () => {
    for (
      const url of [
        "postgres://app:pw@db:5433/inventory",
        "postgresql://app@db/inventory?sslmode=require",
        "postgres://h1:5432,h2:5432/inventory",
        // A host parameter that is not a directory is the driver's (or the server's) business.
        "postgres://app@db/inventory?host=elsewhere",
        "not a url",
      ]
    ) assert.deepEqual(postgresTarget(url), { url }, url);
  });

  await t.step("a directory becomes the socket file of the port", () => {
    assert.deepEqual(
      postgresTarget("postgresql://campus:s3cret@/orders?host=/var/run/postgresql"),
      {
        url: "postgresql://campus:s3cret@localhost:5432/orders",
        socket: "/var/run/postgresql/.s.PGSQL.5432",
      },
    );
    assert.deepEqual(postgresTarget("postgres:///orders?host=/tmp/"), {
      url: "postgres://localhost:5432/orders",
      socket: "/tmp/.s.PGSQL.5432",
    });
  });

  await t.step("the port comes from the parameter or the authority; other parameters stay", () => {
    assert.deepEqual(
      postgresTarget("postgres://app@:5433/orders?sslmode=disable&host=%2Frun%2Fpg&port=5434"),
      {
        url: "postgres://app@localhost:5434/orders?sslmode=disable",
        socket: "/run/pg/.s.PGSQL.5434",
      },
    );
    assert.deepEqual(postgresTarget("postgres://app@:5433/orders?host=/run/pg"), {
      url: "postgres://app@localhost:5433/orders",
      socket: "/run/pg/.s.PGSQL.5433",
    });
  });
});
