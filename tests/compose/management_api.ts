/** RabbitMQ's management HTTP API, read as an operator reads the UI's Queues tab. */

/** A queue's counts as `GET /api/queues/{vhost}/{name}` reports them. */
export interface QueueCounts {
  name: string;
  /** Messages waiting for a consumer ("Ready" in the UI). */
  messages_ready: number;
  /** Messages delivered and not yet acknowledged ("Unacked"). */
  messages_unacknowledged: number;
  /** Ready plus unacknowledged ("Total"). */
  messages: number;
  consumers: number;
}

/**
 * The counts of `queue` in the default vhost, from the management API at `baseUrl`
 * (e.g. `http://127.0.0.1:15672`). The API refreshes its numbers every few seconds, so callers
 * poll for the value they expect.
 */
export async function queueCounts(
  baseUrl: string,
  queue: string,
  { user = "guest", password = "guest" } = {},
): Promise<QueueCounts> {
  const res = await fetch(`${baseUrl}/api/queues/%2F/${encodeURIComponent(queue)}`, {
    headers: { authorization: `Basic ${btoa(`${user}:${password}`)}` },
  });
  if (!res.ok) {
    throw new Error(`GET ${res.url} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  }
  const body = await res.json();
  // Counts the broker has not reported yet are absent: none is the truthful reading.
  return {
    name: body.name,
    messages_ready: body.messages_ready ?? 0,
    messages_unacknowledged: body.messages_unacknowledged ?? 0,
    messages: body.messages ?? 0,
    consumers: body.consumers ?? 0,
  };
}
