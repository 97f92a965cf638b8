/**
 * Queue depths for metrics and the board: ready messages per queue, read with passive
 * declares, which never create a queue and work on quorum queues too.
 * @module
 */
// @deno-types="@types/amqplib"
import type { ChannelModel } from "amqplib";
import { beforeDeadline } from "../runtime/deadline.ts";

/**
 * Ready messages in each of `queues`, read on a channel of its own (a handful of round trips).
 * Queues it could not read are left out: all of them when the broker does not answer within
 * `timeoutMs`.
 */
export async function readQueueDepths(
  connection: ChannelModel,
  queues: readonly string[],
  timeoutMs: number,
): Promise<Map<string, number>> {
  const depths = new Map<string, number>();
  const read = (async () => {
    const channel = await connection.createChannel();
    // A queue deleted under us closes the channel with an error; it is only not counted.
    channel.on("error", () => {});
    try {
      for (const queue of queues) {
        depths.set(queue, (await channel.checkQueue(queue)).messageCount);
      }
    } finally {
      await channel.close().catch(() => {});
    }
  })().catch(() => {});
  await beforeDeadline(read, timeoutMs);
  return new Map(depths);
}
