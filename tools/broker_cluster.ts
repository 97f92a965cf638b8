/**
 * A private RabbitMQ cluster of three (or more) nodes on this machine, for the cluster suite
 * and for trying quorum queues by hand: each a {@linkcode BrokerNode}, joined to the first with
 * `rabbitmqctl join_cluster`.
 * @module
 */
import { type BrokerNode, createBrokerNode } from "./broker_node.ts";

/** A running cluster whose nodes can be stopped and started one at a time. */
export interface BrokerCluster {
  nodes: readonly BrokerNode[];
  /** Every node's AMQP URL, comma-separated, as `AMQP_URL` takes them. */
  amqpUrl: string;
  /** Stops node `index` cleanly; the others keep serving (quorum queues keep a majority). */
  stopNode(index: number): Promise<void>;
  /** Starts node `index` again; it rejoins the cluster with its data. */
  startNode(index: number): Promise<void>;
  /** Stops every node and deletes their folders. */
  dispose(): Promise<void>;
}

/** Starts `size` private nodes and joins them into one cluster (about 15 s for three). */
export async function startBrokerCluster(size = 3): Promise<BrokerCluster> {
  const nodes: BrokerNode[] = [];
  try {
    for (let i = 0; i < size; i++) nodes.push(await createBrokerNode());
    // Started together: each node boots in a few seconds, mostly waiting.
    await Promise.all(nodes.map((node) => node.start()));
    const [first, ...others] = nodes;
    for (const node of others) {
      await rabbitmqctl(node.node, "stop_app");
      await rabbitmqctl(node.node, "join_cluster", first.node);
      await rabbitmqctl(node.node, "start_app");
    }
    await waitForMembers(first.node, nodes.map((n) => n.node));
  } catch (err) {
    await Promise.all(nodes.map((node) => node.dispose()));
    throw err;
  }
  return {
    nodes,
    amqpUrl: nodes.map((node) => node.url).join(","),
    stopNode: (index) => nodes[index].stop(),
    startNode: (index) => nodes[index].start(),
    async dispose() {
      await Promise.all(nodes.map((node) => node.dispose()));
    },
  };
}

async function waitForMembers(node: string, members: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (true) {
    const status = await rabbitmqctl(node, "cluster_status", "--formatter", "json");
    const running: string[] = JSON.parse(status).running_nodes ?? [];
    if (members.every((member) => running.includes(member))) return;
    if (Date.now() > deadline) {
      throw new Error(`Cluster of ${members.join(", ")} not formed in 60 s; running: ${running}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function rabbitmqctl(node: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("rabbitmqctl", {
    args: ["-n", node, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `rabbitmqctl -n ${node} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}
