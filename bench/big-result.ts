/**
 * `node bench/big-result.ts [--mib 8] [--runs 5]`: what passing one large tool result through toolgate
 * costs. The same `big` call of the fault fixture (a stdio upstream) is timed from the official SDK client
 * straight to the upstream, and through the gateway binary over Streamable HTTP; prints the median time of
 * each, the throughput and the ratio. Figures are printed, never asserted (test/integration/faults-upstream
 * checks only that such a result arrives whole). Takes about 20 s on a 2-core machine.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { benchCli } from "./lib/cli.ts";
import { median, ratio } from "./lib/stats.ts";
import { fmt, table } from "./lib/table.ts";

const cli = benchCli(import.meta.url, {
  mib: { type: "string", default: "8" },
  runs: { type: "string", default: "5" },
});
const { values } = cli;
const MIB = cli.decimal("mib", 0.001);
const BYTES = Math.round(MIB * 1024 * 1024);
const RUNS = cli.whole("runs");
const ROOT = resolve(import.meta.dirname, "..");
const NODE = process.execPath;
const FAULT_SERVER = join(ROOT, "test/fixtures/fault-server.ts");

/** Median wall time (ms) of RUNS `big` calls after one warm-up; each result's size is checked. */
async function timeCalls(client: Client, tool: string): Promise<number> {
  const once = async () => {
    const started = performance.now();
    const result = await client.callTool({ name: tool, arguments: { bytes: BYTES } }, undefined, {
      timeout: 600_000,
    });
    const ms = performance.now() - started;
    const content = result.content as Array<{ text?: string }>;
    if (content[0]?.text?.length !== BYTES) throw new Error(`${tool}: the result is not ${BYTES} bytes`);
    return ms;
  };
  await once();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await once());
  return median(times);
}

async function direct(): Promise<number> {
  const client = new Client({ name: "bench-big", version: "1" });
  await client.connect(new StdioClientTransport({ command: NODE, args: [FAULT_SERVER], stderr: "ignore" }));
  try {
    return await timeCalls(client, "big");
  } finally {
    await client.close();
  }
}

/** The gateway binary on 127.0.0.1:0 in front of the fault fixture over stdio; resolves its /mcp URL. */
async function startGateway(): Promise<{ child: ChildProcess; url: string }> {
  const dir = await mkdtemp(join(tmpdir(), "toolgate-bench-big-"));
  const config = join(dir, "toolgate.json");
  await writeFile(config, JSON.stringify({ mcpServers: { f: { command: NODE, args: [FAULT_SERVER] } } }));
  const child = spawn(NODE, [join(ROOT, "src/main.ts"), "serve", "--config", config, "--http", "0"], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (line) => {
      try {
        const record = JSON.parse(line) as { msg?: string; mcp?: string };
        if (record.msg === "toolgate listening" && record.mcp) resolveUrl(record.mcp);
      } catch {
        // not a log record
      }
    });
    child.once("exit", (code) => reject(new Error(`gateway exited with ${code}`)));
  });
  return { child, url };
}

async function throughGateway(): Promise<number> {
  const { child, url } = await startGateway();
  const client = new Client({ name: "bench-big", version: "1" });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    // The upstream connects in the background: wait until its tools are in the catalog.
    for (let i = 0; !(await client.listTools()).tools.some((t) => t.name === "f__big"); i++) {
      if (i > 600) throw new Error("the upstream never became ready");
      await new Promise((r) => setTimeout(r, 50));
    }
    return await timeCalls(client, "f__big");
  } finally {
    await client.close().catch(() => {});
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
}

const directMs = await direct();
const gatewayMs = await throughGateway();
const mibPerS = (ms: number) => MIB / (ms / 1000);
console.log(
  table(
    `One ${values.mib} MiB tool result (text), median of ${RUNS} calls after a warm-up, upstream over stdio`,
    ["path", "median ms", "MiB/s"],
    [
      ["SDK client → upstream (direct)", fmt(directMs, 0), fmt(mibPerS(directMs), 1)],
      ["SDK client → toolgate (HTTP) → upstream", fmt(gatewayMs, 0), fmt(mibPerS(gatewayMs), 1)],
    ],
  ),
);
console.log(`\ntoolgate / direct: ${fmt(ratio(gatewayMs, directMs), 2)}×`);
