import assert from "node:assert/strict";
import { freePort, listensOn } from "./broker_node.ts";

Deno.test("freePort() never hands out a port twice, though the kernel may free and give it again", () => {
  // 2,000 draws from about 28,000 ephemeral ports: without the memory, two alike are all but sure.
  const ports = Array.from({ length: 2_000 }, () => freePort());
  assert.equal(new Set(ports).size, ports.length, "every port handed out once");
  for (const port of ports.slice(0, 10)) {
    // Nobody listens on it: a listener can take it.
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    listener.close();
  }
});

Deno.test("listensOn() tells the process that listens on a port from the others", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  try {
    assert.equal(await listensOn(Deno.pid, port), true, "this process listens there");
    assert.equal(await listensOn(Deno.pid, freePort()), false, "nobody listens there");
    const other = new Deno.Command("sleep", { args: ["30"] }).spawn();
    try {
      assert.equal(await listensOn(other.pid, port), false, "another process does not");
    } finally {
      other.kill();
      await other.status;
    }
  } finally {
    listener.close();
  }
});
