import assert from "node:assert/strict";
import { freePort } from "./broker_node.ts";

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
