/**
 * `npm run bench:gc`: what the call path leaves to the garbage collector. One toolgate (default policies,
 * telemetry off) in front of the bench's echo upstream, run with `--trace-gc-nvp`; per concurrency, a warm-up
 * and then one measured window of closed-loop load. Prints per call the bytes allocated (V8's `allocated`, what
 * each collection in the window found allocated since the one before: off by up to one young generation, about
 * 25 MB, when a window sees few collections) and promoted to the old generation, the gateway's CPU, and per
 * window the scavenge pauses, calls/s and p99. A call that leaves nothing reachable once it is answered promotes
 * next to nothing; a few KB per call means part of every call outlives the young generation (README,
 * Performance: where the promoted bytes came from).
 *
 *   node bench/gc.ts [--concurrency 1,64] [--warmup-ms 8000] [--window-ms 10000] [--upstream stdio|http]
 *     [--era legacy|modern]   (the client: a 2025-11-25 session, or stateless 2026-07-28 requests)
 *
 * Pinned like `bench/run.ts` (gateway on CPU 0, upstream and load on CPU 1) when taskset and 2 CPUs exist.
 */
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { benchCli } from "./lib/cli.ts";
import { exited, installCleanup, start, stopAll, tasksetAvailable, waitForLine } from "./lib/processes.ts";
import { type Cell, table } from "./lib/table.ts";
import { configDir, echoConfig, type Upstream } from "./lib/toolgate-config.ts";

const cli = benchCli(import.meta.url, {
  concurrency: { type: "string", default: "1,64" },
  "warmup-ms": { type: "string", default: "8000" },
  "window-ms": { type: "string", default: "10000" },
  upstream: { type: "string", default: "stdio" },
  era: { type: "string", default: "legacy" },
});
const CONCURRENCY = cli.wholeList("concurrency");
const WARMUP_MS = cli.whole("warmup-ms", 0);
const WINDOW_MS = cli.whole("window-ms", 100);
const UPSTREAM = cli.choice("upstream", ["stdio", "http"]);
const ERA = cli.choice("era", ["legacy", "modern"]);

const ROOT = resolve(import.meta.dirname, "..");
const NODE = process.execPath;
const ECHO = join(ROOT, "bench/upstream-echo.ts");
const LOAD = join(ROOT, "bench/load.ts");
const PIN = tasksetAvailable() && availableParallelism() >= 2;
const [GATEWAY_CPUS, OTHER_CPUS] = PIN ? ["0", "1"] : [undefined, undefined];

installCleanup();
const configs = configDir();

async function echoUpstream(): Promise<Upstream> {
  if (UPSTREAM === "stdio") {
    return { kind: "stdio", argv: OTHER_CPUS ? ["taskset", "-c", OTHER_CPUS, NODE, ECHO] : [NODE, ECHO] };
  }
  const echo = start("upstream-echo", [NODE, ECHO, "--http", "0"], { cpus: OTHER_CPUS });
  const line = await waitForLine(echo, (l) => l.startsWith('{"url"'));
  return { kind: "http", url: (JSON.parse(line) as { url: string }).url };
}

/** One closed-loop window of `ms` from a fresh load generator; its result line. */
async function load(url: string, concurrency: number, ms: number, gatewayPid: number) {
  const args = ["--url", url, "--tool", "echo__echo", "--concurrency", String(concurrency), "--era", ERA];
  args.push("--duration-ms", String(ms), "--warmup-ms", "0", "--watch", `gateway:${gatewayPid}`);
  const proc = start("load", [NODE, LOAD, ...args], { cpus: OTHER_CPUS });
  await exited(proc);
  const last = proc.lines.at(-1);
  if (!last) throw new Error(`bench: the load generator printed nothing (${proc.stderrTail.join(" ")})`);
  return JSON.parse(last) as {
    calls: number;
    callsPerSec: number;
    p99Ms: number;
    watch: { gateway: { cpuMs: number } };
  };
}

/** Collections of one kind among `lines` (V8's --trace-gc-nvp output): `s` scavenges, `mc` mark-compacts. */
function collections(lines: string[], kind: "s" | "mc"): string[] {
  return lines.filter((l) => l.includes(` gc=${kind} `));
}

/** Sum of `key=` over the collections among `lines` (of one kind when `kind` is given). */
function gcSum(lines: string[], key: "allocated" | "promoted" | "pause", kind?: "s"): number {
  let sum = 0;
  for (const line of kind ? collections(lines, kind) : lines) {
    const match = line.match(new RegExp(`\\b${key}=([0-9.]+)`));
    if (match) sum += Number(match[1]);
  }
  return sum;
}

try {
  const upstream = await echoUpstream();
  const file = configs.write("gc", echoConfig({ upstream, policies: "on", telemetry: { mode: "off" } }));
  const gateway = start(
    "toolgate",
    [NODE, "--trace-gc-nvp", "src/main.ts", "serve", "--config", file, "--http", "0"],
    {
      cpus: GATEWAY_CPUS,
      cwd: ROOT,
    },
  );
  const listening = await waitForLine(gateway, (l) => l.includes('"toolgate listening"'));
  const url = (JSON.parse(listening) as { mcp: string }).mcp;
  const rows: Cell[][] = [];
  for (const concurrency of CONCURRENCY) {
    await load(url, concurrency, WARMUP_MS, gateway.pid);
    const from = gateway.lines.length;
    const window = await load(url, concurrency, WINDOW_MS, gateway.pid);
    const gcLines = gateway.lines.slice(from);
    rows.push([
      concurrency,
      window.callsPerSec,
      window.p99Ms,
      (window.watch.gateway.cpuMs * 1000) / window.calls,
      Math.round(gcSum(gcLines, "allocated") / window.calls),
      Math.round(gcSum(gcLines, "promoted", "s") / window.calls),
      collections(gcLines, "s").length,
      Math.round(gcSum(gcLines, "pause", "s")),
      collections(gcLines, "mc").length,
    ]);
  }
  const layout = PIN ? "; gateway on CPU 0, upstream and load on CPU 1" : "";
  console.log(
    table(
      `${ERA === "modern" ? "2026-07-28 client" : "2025-11-25 session"} → toolgate → ${UPSTREAM} echo upstream, default policies, telemetry off; ${WINDOW_MS} ms windows after ${WARMUP_MS} ms of load${layout}`,
      [
        "conc",
        "calls/s",
        "p99 ms",
        "gw CPU µs/call",
        "allocated B/call",
        "promoted B/call",
        "scavenges",
        "scavenge pause ms",
        "mark-compacts",
      ],
      rows,
    ),
  );
} finally {
  await stopAll();
  configs.remove();
}
