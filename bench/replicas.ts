/**
 * `node bench/replicas.ts [--seconds N]`: throughput and gateway CPU per call for 1, 2 and 3 replicas
 * (`toolgate serve` processes sharing one redis-server, each with its own stdio echo upstream), driven by
 * 24 SDK clients spread round robin over the replicas, closed loop. Every replica is pinned to a CPU when
 * taskset exists (2 cores: replicas share them, so this shows the cost of coordination, not scaling).
 * Prints calls/s and gateway CPU ms per call (replicas and their upstreams from /proc); asserts nothing.
 */
import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type GatewayProcess, NODE, ROOT, spawnGateway } from "../test/helpers/gateway.ts";
import { RedisServer } from "../test/helpers/redis.ts";
import { benchCli } from "./lib/cli.ts";
import { descendants, sample } from "./lib/proc-stats.ts";

const cli = benchCli(import.meta.url, { seconds: { type: "string", default: "8" } });
const SECONDS = cli.decimal("seconds", 1);
const CLIENTS = 24;
const CPUS = availableParallelism();
const ECHO = `${ROOT}bench/upstream-echo.ts`;

async function run(replicaCount: number, redisUrl: string) {
  const config = {
    gateway: { logLevel: "info", maxInFlight: 256 },
    mcpServers: { e: { command: NODE, args: [ECHO] } },
    security: { pinning: { mode: "off" } },
    telemetry: { alerts: { enabled: false } },
    cluster: { redis: redisUrl, replicas: replicaCount, keyPrefix: `bench-${replicaCount}:` },
  };
  const replicas: GatewayProcess[] = [];
  for (let i = 0; i < replicaCount; i++) {
    const replica = await spawnGateway(config);
    if (replica.child.pid && spawnSync("taskset", ["--version"]).status === 0) {
      spawnSync("taskset", ["-a", "-p", "-c", String(i % CPUS), String(replica.child.pid)]);
    }
    replicas.push(replica);
  }
  for (const r of replicas) {
    while (!(await fetch(`${r.base}/readyz`)).ok) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => {
      const c = new Client({ name: "bench", version: "1" });
      await c.connect(
        new StreamableHTTPClientTransport(new URL((replicas[i % replicaCount] as GatewayProcess).url)),
      );
      return c;
    }),
  );
  const call = (c: Client) => c.callTool({ name: "e__echo", arguments: { text: "x".repeat(32) } });
  for (const c of clients) for (let i = 0; i < 20; i++) await call(c); // warm-up
  const pids = () => replicas.flatMap((r) => [r.child.pid as number, ...descendants(r.child.pid as number)]);
  const before = sample(pids());
  const started = performance.now();
  const until = started + SECONDS * 1000;
  let calls = 0;
  await Promise.all(
    clients.map(async (c) => {
      while (performance.now() < until) {
        await call(c);
        calls++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = sample(pids()).cpuMs - before.cpuMs;
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(replicas.map((r) => r.stop()));
  return { perSecond: calls / seconds, cpuMsPerCall: cpuMs / calls };
}

const redis = await RedisServer.start();
try {
  console.log(`${CLIENTS} clients, ${SECONDS} s per setup, ${CPUS} CPUs\n`);
  console.log("| replicas | calls/s | gateway CPU ms per call (replicas + upstreams) |");
  console.log("| -------- | ------- | ---------------------------------------------- |");
  for (const n of [1, 2, 3]) {
    const r = await run(n, redis.url);
    console.log(`| ${n} | ${Math.round(r.perSecond)} | ${r.cpuMsPerCall.toFixed(3)} |`);
  }
} finally {
  await redis.stop();
}
