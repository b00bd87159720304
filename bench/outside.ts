/**
 * The outside tester's method (issue 15): `hey`, a Go load generator, posting one fixed `tools/call` body on
 * one established session at concurrency 1, straight to the SSE-answering echo upstream and through toolgate.
 * The upstream runs on CPU 1 and toolgate on CPU 0; hey runs once on CPU 1 (the layout, beside the
 * upstream) and once on CPU 0 (beside the proxy), so the upstream's CPU per call through toolgate ÷ direct is
 * shown with and without a load generator on the upstream's core. CPU per call from /proc.
 *
 *   node bench/outside.ts [--reps 2] [--window-s 5]
 *
 * Builds hey (github.com/rakyll/hey v0.1.4) into bench/results with the Go toolchain; without Go it says so
 * and exits. Concurrency 1 only: hey sends the same request id from every worker, and toolgate refuses a
 * request whose id is still in flight on its session (README, Errors).
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { benchCli } from "./lib/cli.ts";
import { readHey } from "./lib/hey-output.ts";
import { sample } from "./lib/proc-stats.ts";
import { installCleanup, start, stopAll, tasksetAvailable, waitForLine } from "./lib/processes.ts";
import { median } from "./lib/stats.ts";
import { type Cell, fmt, table } from "./lib/table.ts";
import { configDir, echoConfig } from "./lib/toolgate-config.ts";

const cli = benchCli(import.meta.url, {
  reps: { type: "string", default: "2" },
  "window-s": { type: "string", default: "5" },
});
const REPS = cli.whole("reps");
const WINDOW_S = cli.decimal("window-s", 1);
const ROOT = resolve(import.meta.dirname, "..");
const NODE = process.execPath;
const RESULTS = join(ROOT, "bench/results");
const HEY = join(RESULTS, "hey");
const run = promisify(execFile);

if (!tasksetAvailable() || availableParallelism() < 2) {
  console.log("bench/outside: needs taskset and 2 CPUs (the method pins every process); skipped");
  process.exit(0);
}
if (!existsSync(HEY)) {
  try {
    execFileSync("go", ["install", "github.com/rakyll/hey@v0.1.4"], {
      env: { ...process.env, GOBIN: RESULTS },
      stdio: "pipe",
    });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    console.log(`bench/outside: hey could not be built (${stderr || (error as Error).message}); skipped`);
    process.exit(0);
  }
}

installCleanup();
const configs = configDir();
const ACCEPT = "application/json, text/event-stream";
const VERSION = "2025-11-25";

/** initialize + notifications/initialized; the session id. */
async function openSession(url: string): Promise<string> {
  const post = (body: unknown, session?: string) =>
    fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: ACCEPT,
        ...(session && { "mcp-session-id": session, "mcp-protocol-version": VERSION }),
      },
      body: JSON.stringify(body),
    });
  const clientInfo = { name: "hey", version: "0.1.4" };
  const init = await post({
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion: VERSION, capabilities: {}, clientInfo },
  });
  await init.text();
  const session = init.headers.get("mcp-session-id");
  if (!session) throw new Error(`bench/outside: ${url} opened no session (HTTP ${init.status})`);
  await (await post({ jsonrpc: "2.0", method: "notifications/initialized" }, session)).text();
  return session;
}

interface Target {
  name: "direct" | "toolgate";
  url: string;
  session: string;
  body: string;
}

interface Window {
  calls: number;
  callsPerSec: number;
  p50Ms: number;
  upstreamUs: number;
  toolgateUs: number;
}

/** hey for `seconds` on `cpu`; the watched processes' CPU over exactly that window. */
async function hey(target: Target, cpu: string, seconds: number): Promise<Window> {
  const args = ["-c", cpu, HEY, "-z", `${seconds}s`, "-c", "1", "-m", "POST", "-T", "application/json"];
  args.push("-H", `accept: ${ACCEPT}`, "-H", `mcp-session-id: ${target.session}`);
  args.push("-H", `mcp-protocol-version: ${VERSION}`, "-D", target.body, target.url);
  const before = [sample([upstream.pid]).cpuMs, sample([gateway.pid]).cpuMs];
  const { stdout } = await run("taskset", args);
  const after = [sample([upstream.pid]).cpuMs, sample([gateway.pid]).cpuMs];
  const summary = readHey(stdout, `bench/outside: hey against ${target.name}`);
  return {
    ...summary,
    upstreamUs: (((after[0] ?? 0) - (before[0] ?? 0)) * 1000) / summary.calls,
    toolgateUs: (((after[1] ?? 0) - (before[1] ?? 0)) * 1000) / summary.calls,
  };
}

const upstream = start("upstream-echo", [NODE, join(ROOT, "bench/upstream-echo.ts"), "--http", "0"], {
  cpus: "1",
});
const upstreamUrl = (
  JSON.parse(await waitForLine(upstream, (l) => l.startsWith('{"url"'))) as { url: string }
).url;
const file = configs.write(
  "outside",
  echoConfig({ upstream: { kind: "http", url: upstreamUrl }, policies: "on" }),
);
const gateway = start("toolgate", [NODE, "src/main.ts", "serve", "--config", file, "--http", "0"], {
  cpus: "0",
  cwd: ROOT,
});
const listening = await waitForLine(gateway, (l) => l.includes('"toolgate listening"'));
const gatewayUrl = (JSON.parse(listening) as { mcp: string }).mcp;

try {
  const targets: Target[] = [];
  for (const [name, url, tool] of [
    ["direct", upstreamUrl, "echo"],
    ["toolgate", gatewayUrl, "echo__echo"],
  ] as const) {
    const body = join(RESULTS, `outside-${name}.json`);
    const call = { name: tool, arguments: { text: "x".repeat(32) } };
    writeFileSync(body, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: call }));
    targets.push({ name, url, session: await openSession(url), body });
  }
  const placements = [
    ["CPU 1 (beside the upstream, the issue's layout)", "1"],
    ["CPU 0 (beside the proxy)", "0"],
  ] as const;
  const windows = new Map<string, Window[]>();
  for (const target of targets) for (const [, cpu] of placements) await hey(target, cpu, 3); // warm-up
  for (let rep = 0; rep < REPS; rep++) {
    for (const [, cpu] of placements) {
      for (const target of targets) {
        const key = `${cpu}:${target.name}`;
        windows.set(key, [...(windows.get(key) ?? []), await hey(target, cpu, WINDOW_S)]);
      }
    }
  }
  const rows: Cell[][] = [];
  const med = (ws: Window[], pick: (w: Window) => number) => median(ws.map(pick));
  for (const [where, cpu] of placements) {
    for (const target of targets) {
      const ws = windows.get(`${cpu}:${target.name}`) ?? [];
      rows.push([
        where,
        target.name,
        fmt(
          med(ws, (w) => w.callsPerSec),
          0,
        ),
        fmt(
          med(ws, (w) => w.p50Ms),
          2,
        ),
        fmt(
          med(ws, (w) => w.upstreamUs),
          0,
        ),
        target.name === "toolgate"
          ? fmt(
              med(ws, (w) => w.toolgateUs),
              0,
            )
          : "-",
      ]);
    }
  }
  const title = `hey, one session, concurrency 1, ${WINDOW_S} s windows, medians of ${REPS}; upstream on CPU 1, toolgate on CPU 0`;
  const header = ["hey on", "target", "calls/s", "p50 ms", "upstream µs/call", "toolgate µs/call"];
  console.log(table(title, header, rows));
  for (const [where, cpu] of placements) {
    const up = (name: string) => med(windows.get(`${cpu}:${name}`) ?? [], (w) => w.upstreamUs);
    console.log(
      `upstream CPU per call via toolgate ÷ direct, hey on ${where}: ${fmt(up("toolgate") / up("direct"))}×`,
    );
  }
} finally {
  await stopAll();
  configs.remove();
}
