/**
 * What a student reads about an order that could not be processed: a plain reason and an error
 * id, never the handler's or driver's error text. The text goes to staff under that id: one
 * error line in the service's log and the `x-error-id` header of the dead-lettered message,
 * beside its reason. Reasons meant for students (out of stock, not on the menu) stay as they are.
 */
import assert from "node:assert/strict";
import { ERROR_ID_HEADER, REASON_HEADER } from "@campus/shared/consumer";
import { SET_ASIDE_REASON } from "../services/inventory/app.ts";
import { INTEGRATION, Stack } from "./stack.ts";
import { finalOrder, listNotifications, placeOrder } from "./client.ts";
import { logLines } from "./log_lines.ts";
import { waitFor } from "./poll.ts";

const MENU = { Coffee: 100, Taco: 3 };
/** What a student reads about an order set aside, with its error id captured. */
const SET_ASIDE = new RegExp(`^${escape(SET_ASIDE_REASON)} \\(error ([0-9a-f]{8})\\)$`);

Deno.test("internal error text reaches staff, not students", INTEGRATION, async (t) => {
  const stack = await Stack.start({
    menu: MENU,
    env: { TEST_FAULTS: "on", MAX_RETRIES: "1", RETRY_DELAY_MS: "200" },
  });
  try {
    for (
      const [studentId, detail] of [
        // A handler's own error, and a driver's long one dumping its statement.
        ["fault:permanent", "injected permanent fault"],
        ["fault:verbose", "injected verbose fault: the statement was"],
      ]
    ) {
      await t.step(`${studentId}: the student reads an error id, staff the error`, async () => {
        const placed = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: studentId });
        const final = await finalOrder(stack, placed.order_id, 30_000);
        assert.equal(final.status, "FAILED");
        const reason = final.reason ?? "";
        const errorId = SET_ASIDE.exec(reason)?.[1];
        assert.ok(errorId, `a plain reason with an error id, got: ${reason}`);

        const note = await waitFor(
          () => listNotifications(stack, placed.order_id).then((n) => n[0]),
          { what: `the apology for ${placed.order_id}` },
        );
        assert.ok(note.message.includes(`(error ${errorId})`), note.message);
        for (const text of [reason, note.message]) {
          assert.ok(!/injected|statement|attempts/.test(text), `no internal text in: ${text}`);
        }

        const lines = await waitFor(async () => {
          const found = (await logLines(stack, "inventory")).filter((l) => l.error_id === errorId);
          return found.length > 0 ? found : undefined;
        }, { what: `inventory's log line for error ${errorId}` });
        assert.equal(lines.length, 1, `one log line with error ${errorId}`);
        assert.equal(lines[0].level, "error");
        assert.equal(lines[0].order_id, placed.order_id);
        assert.ok(String(lines[0].reason).includes(detail), JSON.stringify(lines[0]));

        await waitFor(async () => (await stack.queueDepth("order_placed_dlq")) === 1, {
          what: `${placed.order_id} in order_placed_dlq`,
        });
        const [dead] = await stack.broker.take("order_placed_dlq", 10);
        assert.equal(dead.properties.correlationId, placed.order_id);
        assert.equal(dead.properties.headers[ERROR_ID_HEADER], errorId);
        assert.ok(String(dead.properties.headers[REASON_HEADER]).includes(detail));
      });
    }

    await t.step("reasons meant for students stay as they are", async () => {
      const scarce = await placeOrder(stack, { item: "Taco", qty: 5, student_id: "E1" });
      assert.equal(
        (await finalOrder(stack, scarce.order_id)).reason,
        'Cannot reserve "Taco": 5 requested, 3 in stock',
      );
      const unknown = await placeOrder(stack, { item: "cofee", qty: 1, student_id: "E2" });
      assert.equal(
        (await finalOrder(stack, unknown.order_id)).reason,
        '"cofee" is not on the menu; did you mean "Coffee"?',
      );
      const note = await waitFor(
        () => listNotifications(stack, unknown.order_id).then((n) => n[0]),
        { what: `the apology for ${unknown.order_id}` },
      );
      assert.match(note.message, /"cofee" is not on the menu; did you mean "Coffee"\?/);
    });
  } finally {
    await stack.dispose();
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
