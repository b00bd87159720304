/**
 * `node bench/openapi.ts`: the OpenAPI adapter's costs, in one run on this machine (under a minute).
 * 1. Loading a large real spec (GitHub's REST description from @octokit/openapi) in a fresh process: load
 *    and mapping time, heap, peak resident memory.
 * 2. One HTTP endpoint called directly (fetch, keep-alive) and through toolgate (SDK client → toolgate →
 *    the same endpoint), sequentially: the latency toolgate adds and its CPU time per call (from /proc).
 * Numbers are printed, never asserted.
 *
 *   node bench/openapi.ts [--calls N] [--json FILE]
 */
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { benchCli } from "./lib/cli.ts";
import { sample } from "./lib/proc-stats.ts";
import { exited, installCleanup, start, stopAll, tasksetAvailable, waitForLine } from "./lib/processes.ts";
import { median } from "./lib/stats.ts";
import { table } from "./lib/table.ts";
import { configDir } from "./lib/toolgate-config.ts";

const cli = benchCli(import.meta.url, {
  calls: { type: "string", default: "2000" },
  json: { type: "string" },
  "child-load": { type: "string" },
  "child-api": { type: "boolean", default: false },
});
const { values } = cli;

const ROOT = resolve(import.meta.dirname, "..");
const SELF = join(ROOT, "bench/openapi.ts");
const NODE = process.execPath;

if (values["child-load"]) await childLoad(values["child-load"]);
else if (values["child-api"]) await childApi();
else await main();

/** Child: load one spec, print one JSON line of figures. */
async function childLoad(spec: string): Promise<void> {
  const { openapiTransport } = await import("../src/config/openapi-schema.ts");
  const { loadDocument } = await import("../src/upstreams/openapi/load.ts");
  const { planOperations } = await import("../src/upstreams/openapi/operations.ts");
  const transport = openapiTransport({ spec, baseUrl: "https://api.example.com" }, "$", ".", []);
  if (!transport) throw new Error("bad transport");
  const t0 = performance.now();
  const doc = await loadDocument(transport);
  const t1 = performance.now();
  const { plans } = planOperations(doc, transport);
  const t2 = performance.now();
  const toolsBytes = Buffer.byteLength(JSON.stringify(plans.map((p) => p.tool)));
  globalThis.gc?.();
  const hwm = /VmHWM:\s+(\d+) kB/.exec(
    await import("node:fs").then((fs) => fs.readFileSync("/proc/self/status", "utf8")),
  );
  process.stdout.write(
    `${JSON.stringify({
      operations: plans.length,
      loadMs: t1 - t0,
      mapMs: t2 - t1,
      toolsListMB: toolsBytes / 2 ** 20,
      heapMB: process.memoryUsage().heapUsed / 2 ** 20,
      peakRssMB: Number(hwm?.[1] ?? 0) / 1024,
    })}\n`,
  );
}

/** Child: the test fixture API on 127.0.0.1:0; prints its URL. */
async function childApi(): Promise<void> {
  const { startOpenApiServer } = await import("../test/fixtures/openapi-server.ts");
  const api = await startOpenApiServer();
  process.stdout.write(`${api.url}\n`);
  process.once("SIGTERM", () => void api.close().then(() => process.exit(0)));
}

async function main(): Promise<void> {
  installCleanup();
  const calls = cli.whole("calls");
  const warmup = Math.min(300, calls);
  const cpus = tasksetAvailable() ? "0" : undefined;
  const report: Record<string, unknown> = {};
  try {
    // 1. The large spec, in a fresh process so its memory is its own.
    const require = createRequire(import.meta.url);
    const github = join(
      dirname(require.resolve("@octokit/openapi/package.json")),
      "generated/api.github.com.json",
    );
    const loader = start("spec-load", [NODE, "--expose-gc", SELF, "--child-load", github]);
    await exited(loader);
    const load = JSON.parse(loader.lines.at(-1) ?? "{}") as Record<string, number>;
    report.largeSpec = { spec: "api.github.com.json (@octokit/openapi)", ...load };
    console.log(
      table(
        "Large spec: GitHub REST (api.github.com.json, 13 MB)",
        ["operations", "load+deref ms", "map ms", "tools/list MB", "heap MB", "peak RSS MB"],
        [[load.operations, load.loadMs, load.mapMs, load.toolsListMB, load.heapMB, load.peakRssMB]],
      ),
    );

    // 2. Direct vs through toolgate.
    const api = start("api", [NODE, SELF, "--child-api"], { cpus });
    const apiUrl = await waitForLine(api, (l) => l.startsWith("http://"));
    const endpoint = `${apiUrl}/echo?text=hello`;
    const direct = async () => {
      const response = await fetch(endpoint);
      await response.text();
    };
    const directMs = await timeCalls(direct, warmup, calls);

    const dir = configDir();
    const specFile = dir.write(
      "inventory-spec",
      (await fetch(`${apiUrl}/openapi.json`).then((r) => r.json())) as never,
    );
    const config = dir.write("toolgate", {
      mcpServers: { api: { type: "openapi", spec: specFile, baseUrl: apiUrl } },
    } as never);
    const gateway = start(
      "toolgate",
      [NODE, join(ROOT, "src/main.ts"), "serve", "--config", config, "--http", "0"],
      {
        cpus,
      },
    );
    const listening = await waitForLine(gateway, (l) => l.includes("toolgate listening"));
    const mcpUrl = /"mcp":"([^"]+)"/.exec(listening)?.[1];
    if (!mcpUrl) throw new Error(`no MCP URL in: ${listening}`);
    const client = new Client({ name: "bench", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl)));
    for (let i = 0; i < 100; i++) {
      if ((await client.listTools()).tools.some((t) => t.name === "api__echo")) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const viaGateway = async () => {
      await client.request(
        { method: "tools/call", params: { name: "api__echo", arguments: { text: "hello" } } },
        CallToolResultSchema,
      );
    };
    for (let i = 0; i < warmup; i++) await viaGateway();
    const cpuBefore = sample([gateway.pid]).cpuMs;
    const gatewayMs = await timeCalls(viaGateway, 0, calls);
    const cpuAfter = sample([gateway.pid]).cpuMs;
    await client.close();
    dir.remove();

    const cpuPerCall = (cpuAfter - cpuBefore) / calls;
    const p = (xs: number[], q: number) =>
      [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))] ?? Number.NaN;
    const added = median(gatewayMs) - median(directMs);
    report.perCall = {
      calls,
      directMedianMs: median(directMs),
      directP95Ms: p(directMs, 0.95),
      gatewayMedianMs: median(gatewayMs),
      gatewayP95Ms: p(gatewayMs, 0.95),
      addedMedianMs: added,
      gatewayCpuMsPerCall: cpuPerCall,
    };
    console.log(
      table(
        `One GET endpoint, ${calls} sequential calls`,
        ["setup", "median ms", "p95 ms", "toolgate CPU ms/call"],
        [
          ["direct (fetch)", median(directMs), p(directMs, 0.95), undefined],
          ["via toolgate (SDK client, Streamable HTTP)", median(gatewayMs), p(gatewayMs, 0.95), cpuPerCall],
        ],
      ),
    );
    console.log(`\nadded latency (median): ${added.toFixed(3)} ms per call`);
    if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await stopAll();
  }
}

async function timeCalls(fn: () => Promise<void>, warmup: number, calls: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return times;
}
