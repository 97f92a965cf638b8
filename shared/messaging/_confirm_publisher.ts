/**
 * Publishing over one confirm channel. Every message is persistent and mandatory, and a publish
 * succeeds only once the broker confirmed it without returning it first. A publish that throws
 * while amqplib encodes it breaks the channel for good: amqplib queued its confirm callback
 * before encoding, so every later confirm on that channel would be matched to the wrong message.
 * @module
 */
// @deno-types="@types/amqplib"
import type { ConfirmChannel, Message, Options } from "amqplib";
import { Buffer } from "node:buffer";
import { BrokerUnavailable, type MessageProperties, UnroutableMessage } from "./message_bus.ts";
import { errorText } from "../runtime/log.ts";
import { PUBLISH_SEQ_HEADER } from "./contract.ts";

interface Pending {
  routingKey: string;
  resolve(): void;
  reject(err: Error): void;
  /** Why the broker returned it, once it did. */
  returned?: string;
}

/** A confirm channel that publishes mandatory messages and matches returns and confirms. */
export class ConfirmPublisher {
  #pending = new Map<number, Pending>();
  #seq = 0;
  #broken: Error | undefined;

  /**
   * Publishes on `channel`, which must be in confirm mode.
   * @param onBroken called once, when a publish threw and the channel was given up
   */
  constructor(
    private readonly channel: ConfirmChannel,
    private readonly onBroken: (reason: Error) => void = () => {},
  ) {
    channel.on("return", (msg: Message) => this.#returned(msg));
    // Ahead of amqplib's own listener, which fails the open confirms with a bare "channel closed".
    channel.prependListener("close", () => {
      this.#broken ??= new BrokerUnavailable("The publish channel closed");
      this.failAll(this.#broken);
    });
  }

  /** False once the channel closed or broke: another publisher must take over. */
  get usable(): boolean {
    return this.#broken === undefined;
  }

  /** Publishes one message; resolves once the broker confirmed it and routed it to a queue. */
  publish(
    exchange: string,
    routingKey: string,
    content: Uint8Array,
    properties: MessageProperties,
  ): Promise<void> {
    if (this.#broken) return Promise.reject(this.#broken);
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { routingKey, resolve, reject });
      const options: Options.Publish = {
        ...properties,
        headers: { ...properties.headers, [PUBLISH_SEQ_HEADER]: seq },
        persistent: true,
        mandatory: true,
        contentType: properties.contentType ?? "application/json",
      };
      try {
        this.channel.publish(exchange, routingKey, asBuffer(content), options, (err) => {
          this.#confirmed(seq, err);
        });
      } catch (err) {
        this.#break(
          new BrokerUnavailable(
            `Cannot publish to "${routingKey}": ${errorText(err)}; the publish channel is replaced`,
            { cause: err },
          ),
        );
      }
    });
  }

  /** Fails every publish still waiting for its confirm, e.g. when the broker blocks publishing. */
  failAll(err: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }

  /** Closes the channel; publishes still waiting fail. */
  async close(): Promise<void> {
    await this.channel.close().catch(() => {});
  }

  #confirmed(seq: number, err: unknown): void {
    const pending = this.#pending.get(seq);
    if (!pending) return; // failed already (blocked, broken or closed)
    this.#pending.delete(seq);
    if (err) {
      // A negative confirm (a full queue, an internal error) fails like any other publish.
      pending.reject(new Error(`The broker refused the message to "${pending.routingKey}"`));
    } else if (pending.returned !== undefined) {
      pending.reject(
        new UnroutableMessage(
          `No queue took the message to "${pending.routingKey}" (${pending.returned})`,
        ),
      );
    } else {
      pending.resolve();
    }
  }

  #returned(msg: Message): void {
    const seq = msg.properties.headers?.[PUBLISH_SEQ_HEADER];
    const pending = typeof seq === "number" ? this.#pending.get(seq) : undefined;
    // A basic.return carries the reply code and text where a delivery has its tag.
    const fields = msg.fields as unknown as { replyCode?: number; replyText?: string };
    if (pending) pending.returned = `${fields.replyCode} ${fields.replyText}`;
  }

  #break(reason: Error): void {
    if (this.#broken) return;
    this.#broken = reason;
    this.failAll(reason);
    this.channel.close().catch(() => {});
    this.onBroken(reason);
  }
}

function asBuffer(content: Uint8Array): Buffer {
  return Buffer.isBuffer(content)
    ? content
    : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
}
