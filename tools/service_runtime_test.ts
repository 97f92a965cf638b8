import assert from "node:assert/strict";
import { loadConfig } from "@campus/shared/config";
import {
  SERVICE_ENV,
  serviceNetwork,
  servicePermissions,
  serviceRunArgs,
} from "./service_runtime.ts";

Deno.test("servicePermissions() names the data folder, the variables and the hosts", async (t) => {
  await t.step("with hosts: only those", () => {
    assert.deepEqual(servicePermissions("/data", ["127.0.0.1:5001", "rabbit:5672"]).slice(0, 4), [
      "--allow-net=127.0.0.1:5001,rabbit:5672",
      `--allow-env=${SERVICE_ENV.join(",")}`,
      "--allow-read=/data",
      "--allow-write=/data",
    ]);
  });
  await t.step("without: any host, as a binary needs; with none: no network", () => {
    assert.ok(servicePermissions("/data").includes("--allow-net"));
    assert.ok(!servicePermissions("/data", []).some((flag) => flag.startsWith("--allow-net")));
  });
  await t.step("never more", () => {
    const flags = servicePermissions("/data").join(" ");
    assert.doesNotMatch(flags, /--allow-(run|sys|ffi|all|import)|(^| )-A( |$)/);
  });
});

Deno.test("serviceNetwork() lists where a service listens and what it connects to", async (t) => {
  await t.step("the order service: its address, every broker node, inventory", () => {
    const config = loadConfig("order", {
      HOST: "127.0.0.1",
      PORT: "6001",
      AMQP_URL: "amqp://u:p@n1:5673,amqps://u:p@n2",
      INVENTORY_URL: "http://inventory:5002",
    });
    assert.deepEqual(serviceNetwork(config), [
      "127.0.0.1:6001",
      "n1:5673",
      "n2:5671",
      "inventory:5002",
    ]);
  });
  await t.step("inventory with PostgreSQL (any port without one: PGPORT); IPv6 in brackets", () => {
    const config = loadConfig("inventory", {
      HOST: "::",
      DATABASE_URL: "postgres://app:pw@db/inventory",
    });
    assert.deepEqual(serviceNetwork(config), ["[::]:5002", "127.0.0.1:5672", "db"]);
  });
  await t.step(
    "a database over a Unix socket is its unix: address; several hosts leave all open",
    () => {
      const socket = loadConfig("inventory", {
        DATABASE_URL: "postgres://app@/inventory?host=/run/postgresql",
      });
      assert.deepEqual(serviceNetwork(socket), [
        "0.0.0.0:5002",
        "127.0.0.1:5672",
        "unix:/run/postgresql/.s.PGSQL.5432",
      ]);
      const hosts = loadConfig("inventory", { DATABASE_URL: "postgres://a@h1:1,h2:2/x" });
      assert.equal(serviceNetwork(hosts), undefined);
    },
  );
});

Deno.test("serviceRunArgs() runs main.ts with the permissions its environment calls for", () => {
  const args = serviceRunArgs("/repo/", "notification", {
    HOST: "127.0.0.1",
    PORT: "7003",
    DATA_DIR: "/tmp/campus/notification",
    AMQP_URL: "amqp://guest:guest@127.0.0.1:7672",
    DATABASE_URL: "",
  });
  assert.equal(args[0], "run");
  assert.equal(args.at(-1), "/repo/services/notification/main.ts");
  assert.ok(args.includes("--allow-net=127.0.0.1:7003,127.0.0.1:7672"), args.join(" "));
  assert.ok(args.includes("--allow-read=/tmp/campus/notification"));
  assert.ok(args.includes("--allow-write=/tmp/campus/notification"));
  // Deno asks for reading and writing a Unix socket's file before connecting to it.
  const overSocket = serviceRunArgs("/repo", "inventory", {
    DATA_DIR: "/tmp/campus/inventory",
    DATABASE_URL: "postgresql://campus@/inventory?host=/run/postgresql",
  });
  for (const access of ["read", "write"]) {
    const flag = `--allow-${access}=/tmp/campus/inventory,/run/postgresql/.s.PGSQL.5432`;
    assert.ok(overSocket.includes(flag), overSocket.join(" "));
  }
  // A configuration that does not load: the service will say so, with no network to use.
  const bad = serviceRunArgs("/repo", "order", { PORT: "nope", DATA_DIR: "/d" });
  assert.ok(!bad.some((flag) => flag.startsWith("--allow-net")));
  assert.ok(bad.includes("--allow-read=/d"));
});
