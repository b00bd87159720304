/**
 * The upstream Streamable HTTP client transport alone, without the gateway around it: CPU of this process per
 * tools/call sent and answered, toolgate's lean transport (src/upstreams/http-transport.ts) against the SDK v1
 * StreamableHTTPClientTransport over toolgate's former fetch shim (src/upstreams/http-client.ts), alternating
 * windows of each. Run it pinned to one CPU and the upstream to another:
 *
 *   node bench/upstream-echo.ts --http 0          (prints {"url": ...}; pin it with taskset -c 1)
 *   taskset -c 0 node bench/http-transport.ts --url URL --concurrency 1,16 --duration-ms 3000 --reps 3
 *
 * Prints one JSON line per window: transport, concurrency, calls, µs of CPU per call, calls per second.
 */
import { parseArgs } from "node:util";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { upstreamFetch } from "../src/upstreams/http-client.ts";
import { HttpClientTransport } from "../src/upstreams/http-transport.ts";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    concurrency: { type: "string", default: "1,16" },
    "duration-ms": { type: "string", default: "3000" },
    "warmup-ms": { type: "string", default: "1000" },
    reps: { type: "string", default: "3" },
  },
});
if (!values.url) throw new Error("--url is required");
const url = new URL(values.url);
const durationMs = Number(values["duration-ms"]);
const warmupMs = Number(values["warmup-ms"]);

const makers: Record<string, () => Transport> = {
  lean: () => new HttpClientTransport(url, { fetch: upstreamFetch }),
  "sdk+shim": () => new StreamableHTTPClientTransport(url, { fetch: upstreamFetch }),
};

/** A transport with an initialized session, and a way to call echo over it. */
async function connect(make: () => Transport) {
  const transport = make();
  const waiting = new Map<number | string, () => void>();
  transport.onmessage = (message: JSONRPCMessage) => {
    if ("id" in message && !("method" in message)) waiting.get(message.id as number)?.();
  };
  await transport.start();
  let next = 0;
  const request = (method: string, params: Record<string, unknown>) =>
    new Promise<void>((resolve, reject) => {
      const id = ++next;
      waiting.set(id, () => {
        waiting.delete(id);
        resolve();
      });
      transport.send({ jsonrpc: "2.0", id, method, params }).catch(reject);
    });
  await request("initialize", {
    protocolVersion: "2025-11-25",
    capabilities: {},
    clientInfo: { name: "bench", version: "0" },
  });
  (transport as { setProtocolVersion?(v: string): void }).setProtocolVersion?.("2025-11-25");
  await transport.send({ jsonrpc: "2.0", method: "notifications/initialized" });
  const call = () => request("tools/call", { name: "echo", arguments: { text: "x".repeat(32) } });
  return { transport, call };
}

async function window(call: () => Promise<void>, concurrency: number, ms: number) {
  let calls = 0;
  const end = performance.now() + ms;
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await call();
        calls++;
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  return { calls, cpuUs: used.user + used.system };
}

for (const concurrency of values.concurrency.split(",").map(Number)) {
  for (let rep = 0; rep < Number(values.reps); rep++) {
    for (const [name, make] of Object.entries(makers)) {
      const { transport, call } = await connect(make);
      await window(call, concurrency, warmupMs);
      const { calls, cpuUs } = await window(call, concurrency, durationMs);
      await transport.close();
      const line = {
        transport: name,
        concurrency,
        rep,
        calls,
        cpuUsPerCall: Math.round(cpuUs / calls),
        callsPerSec: Math.round((calls * 1000) / durationMs),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  }
}
