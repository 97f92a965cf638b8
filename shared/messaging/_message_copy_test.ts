import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { CLEANED_HEADER, copyProperties, MAX_COPY_HEADER_BYTES } from "./_message_copy.ts";
import { fakeDelivery } from "./_memory_bus.ts";

/** What amqplib makes of a short string of bytes that are not UTF-8. */
const decodedInvalid = Buffer.from(new Uint8Array(100).fill(0xff)).toString("utf8");

Deno.test("copyProperties() keeps what can be copied as it is", () => {
  const delivery = fakeDelivery("{}", {
    messageId: "m1",
    type: "OrderPlaced",
    correlationId: "o1",
    headers: { "schema-version": 1, "x-death": [{ count: 1, queue: "q" }], flag: true },
  });
  assert.deepEqual(copyProperties(delivery, { "x-retry-count": 1 }), {
    messageId: "m1",
    type: "OrderPlaced",
    correlationId: "o1",
    headers: {
      "schema-version": 1,
      "x-death": [{ count: 1, queue: "q" }],
      flag: true,
      "x-retry-count": 1,
    },
  });
});

Deno.test("copyProperties() drops short strings that cannot be encoded, naming them", async (t) => {
  await t.step("not valid UTF-8: dropped, the lossy text not kept", () => {
    const copy = copyProperties(
      fakeDelivery("{}", { messageId: decodedInvalid, correlationId: "o1" }),
      {},
    );
    assert.equal(copy.messageId, undefined);
    assert.equal(copy.correlationId, "o1");
    assert.equal(copy.headers?.[CLEANED_HEADER], "message_id (not valid UTF-8)");
    assert.equal(copy.headers?.["x-original-message-id"], undefined);
  });
  await t.step("valid but over 255 bytes: kept in a header instead", () => {
    const long = "é".repeat(200);
    const copy = copyProperties(fakeDelivery("{}", { type: long }), {});
    assert.equal(copy.type, undefined);
    assert.equal(copy.headers?.["x-original-type"], long);
    assert.equal(copy.headers?.[CLEANED_HEADER], "type (400 bytes, more than 255)");
  });
});

Deno.test("copyProperties() drops the largest headers when they are over budget", () => {
  const copy = copyProperties(
    fakeDelivery("{}", {
      headers: {
        "x-huge": "h".repeat(70_000),
        "x-large": "l".repeat(MAX_COPY_HEADER_BYTES / 2),
        "x-small": "kept",
      },
    }),
    { "x-dead-letter-reason": "r".repeat(5000) },
  );
  const headers = copy.headers!;
  assert.equal(headers["x-huge"], undefined);
  assert.equal(headers["x-small"], "kept");
  assert.equal(String(headers["x-large"]).length, MAX_COPY_HEADER_BYTES / 2, "it fits once alone");
  assert.match(String(headers[CLEANED_HEADER]), /^header "x-huge" \(70\d{3} bytes\)$/);
  assert.equal(String(headers["x-dead-letter-reason"]).length, 1000, "own text is clipped");
  const encoded = new TextEncoder().encode(JSON.stringify(headers)).byteLength;
  assert.ok(encoded < MAX_COPY_HEADER_BYTES, `about ${encoded} bytes`);
});

Deno.test("copyProperties() drops headers amqplib could not encode again", () => {
  const copy = copyProperties(
    fakeDelivery("{}", {
      headers: {
        ["k".repeat(300)]: "key too long",
        rounded: 2 ** 63,
        nested: { ["n".repeat(256)]: 1 },
        typed: { "!": "mystery", value: 1 },
        stamp: { "!": "timestamp", value: 1_700_000_000 },
        bytes: Buffer.from("abc"),
        fine: -(2 ** 40),
      },
    }),
    {},
  );
  assert.deepEqual(Object.keys(copy.headers!).sort(), ["bytes", "fine", "stamp", CLEANED_HEADER]);
  assert.match(String(copy.headers![CLEANED_HEADER]), /"rounded" \(cannot be encoded\)/);
});
