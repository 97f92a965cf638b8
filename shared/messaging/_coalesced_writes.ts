/**
 * One socket write for all the frames amqplib sends in a turn, instead of one per frame.
 * @module
 */
// @deno-types="@types/amqplib"
import type { ChannelModel } from "amqplib";

/** The parts of amqplib 0.10's connection that send: its frame multiplexer and the socket. */
interface Multiplexed {
  connection?: {
    muxer?: { _readIncoming?: () => void; out?: { cork(): void; uncork(): void } };
  };
}

/**
 * Has `connection` write each round of its multiplexer as one buffer. amqplib queues the frames
 * of every channel (publishes, acks) and, once per turn of the event loop, writes them to the
 * socket one `write` each: a relay batch of 100 publishes was 100 system calls for the service
 * and 100 wake-ups for the broker. With the socket corked for the round, Node's stream hands
 * them over together. Returns false, changing nothing, if the connection is not built as
 * amqplib 0.10 builds it (a new version must be checked by the test beside this file).
 */
export function coalesceWrites(connection: ChannelModel): boolean {
  const mux = (connection as unknown as Multiplexed).connection?.muxer;
  const readIncoming = mux?._readIncoming;
  const socket = mux?.out;
  if (!mux || typeof readIncoming !== "function" || typeof socket?.cork !== "function") {
    return false;
  }
  mux._readIncoming = function (this: unknown) {
    socket.cork();
    try {
      readIncoming.call(this);
    } finally {
      socket.uncork();
    }
  };
  return true;
}
