/**
 * `node bench/cluster.ts [--calls N]`: what Redis adds per call. One gateway (in this process) in front
 * of the fault fixture's `echo` over stdio, measured in one run as: no cluster (memory only), cluster
 * with the shared caps (one Lua round trip to take the permits, one to release), and cluster plus a keyed
 * lock on a per-call key (adds the lease: take, release). A real redis-server on 127.0.0.1 is started
 * for the run. Prints p50 latency at concurrency 1 and calls/s at concurrency 16; asserts nothing.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { FAULT_SERVER, NODE, startGateway } from "../test/helpers/gateway.ts";
import { RedisServer } from "../test/helpers/redis.ts";
import { benchCli } from "./lib/cli.ts";

const cli = benchCli(import.meta.url, { calls: { type: "string", default: "2000" } });
const CALLS = cli.whole("calls");

type Setup = { name: string; cluster: boolean; lock: boolean };
const SETUPS: Setup[] = [
  { name: "memory only (no Redis)", cluster: false, lock: false },
  { name: "Redis: shared caps", cluster: true, lock: false },
  { name: "Redis: shared caps + keyed lock", cluster: true, lock: true },
];

async function open(setup: Setup, redisUrl: string) {
  const gw = await startGateway({
    gateway: { logLevel: "error" },
    mcpServers: { f: { command: NODE, args: [FAULT_SERVER, "--transport", "stdio"] } },
    defaults: { retry: { maxAttempts: 1 } },
    upstreams: setup.lock ? { f: { tools: { echo: { lock: { key: "text" } } } } } : {},
    security: { pinning: { mode: "off" } },
    ...(setup.cluster ? { cluster: { redis: redisUrl, keyPrefix: "bench:" } } : {}),
  });
  const clients = await Promise.all(
    Array.from({ length: 16 }, async () => {
      const c = new Client({ name: "bench", version: "1" });
      await c.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
      return c;
    }),
  );
  await gw.gateway.waitForUpstreams(10_000);
  let n = 0;
  const one = (c: Client) => c.callTool({ name: "f__echo", arguments: { text: `k${n++}` } });
  for (let i = 0; i < 200; i++) await one(clients[0] as Client); // warm-up
  return {
    /** p50 ms of `calls` sequential calls. */
    async sequential(calls: number): Promise<number> {
      const latencies: number[] = [];
      for (let i = 0; i < calls; i++) {
        const t = performance.now();
        await one(clients[0] as Client);
        latencies.push(performance.now() - t);
      }
      return median(latencies);
    },
    /** calls/s of `calls` calls over 16 clients. */
    async parallel(calls: number): Promise<number> {
      const started = performance.now();
      let left = calls;
      await Promise.all(
        clients.map(async (c) => {
          while (left-- > 0) await one(c);
        }),
      );
      return calls / ((performance.now() - started) / 1000);
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await gw.stop();
    },
  };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

// All three gateways run at once and are measured in turns, round after round, so a change in the
// machine's load hits every setup alike; the figures are medians over the rounds.
const ROUNDS = 5;
const redis = await RedisServer.start();
const gateways = [];
try {
  for (const setup of SETUPS) gateways.push(await open(setup, redis.url));
  const p50s: number[][] = SETUPS.map(() => []);
  const rates: number[][] = SETUPS.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, gw] of gateways.entries()) {
      p50s[i]?.push(await gw.sequential(Math.ceil(CALLS / ROUNDS)));
      rates[i]?.push(await gw.parallel(Math.ceil((CALLS * 2) / ROUNDS)));
    }
  }
  const base = median(p50s[0] as number[]);
  console.log(
    `${ROUNDS} rounds; per round ${Math.ceil(CALLS / ROUNDS)} calls at concurrency 1, ${Math.ceil((CALLS * 2) / ROUNDS)} at 16\n`,
  );
  console.log("| setup                            | p50 ms | p50 added | calls/s (conc 16) |");
  console.log("| -------------------------------- | ------ | --------- | ----------------- |");
  for (const [i, setup] of SETUPS.entries()) {
    const p50 = median(p50s[i] as number[]);
    console.log(
      `| ${setup.name.padEnd(32)} | ${p50.toFixed(2).padStart(6)} | ${`+${(p50 - base).toFixed(2)}`.padStart(9)} | ${Math.round(
        median(rates[i] as number[]),
      )
        .toString()
        .padStart(17)} |`,
    );
  }
} finally {
  for (const gw of gateways) await gw.close();
  await redis.stop();
}
