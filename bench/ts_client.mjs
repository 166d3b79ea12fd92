// Drives MCP servers over stdio with the TypeScript SDK's client (@modelcontextprotocol/sdk: what Claude Code and most
// IDEs use), for bench/clients.py. Argument: a JSON object {name: {command, args, env}} of the servers to start. Then,
// on stdin, one JSON line per block: {"calls": [[server, tool, arguments], ...], "rounds": N, "pause_ms": M}; each
// round calls each entry once, in an order shuffled every round, pausing pause_ms after each call (interleaved), and
// the block answers one JSON line on stdout: {"samples": [[ms, ...] per entry]}.
// Like a real client, it lists the tools first, so the client validates structured content against output schemas.
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const servers = JSON.parse(process.argv[2]);
const clients = {};
for (const [name, spec] of Object.entries(servers)) {
  const client = new Client({ name: "bench-ts", version: "0" });
  await client.connect(new StdioClientTransport({ ...spec, stderr: "inherit" }));
  await client.listTools();
  clients[name] = client;
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const block = JSON.parse(line);
  const samples = block.calls.map(() => []);
  const order = [...block.calls.entries()];
  for (let round = 0; round < block.rounds; round++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const [i, [server, tool, args]] of order) {
      const started = process.hrtime.bigint();
      const result = await clients[server].callTool({ name: tool, arguments: args });
      samples[i].push(Number(process.hrtime.bigint() - started) / 1e6);
      await new Promise((resolve) => setTimeout(resolve, block.pause_ms ?? 0));
      if (result.isError) {
        throw new Error(`${server} ${tool} failed: ${JSON.stringify(result.content)}`);
      }
    }
  }
  process.stdout.write(JSON.stringify({ samples }) + "\n");
}
for (const client of Object.values(clients)) {
  await client.close();
}
