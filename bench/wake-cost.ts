/**
 * `node bench/wake-cost.ts [--window-ms 2000] [--reps 3] [--json FILE]` (about 20 s): what waking a sleeping
 * process on the other CPU costs the process that wakes it, on this machine. The bench's stdio echo upstream
 * runs on CPU 1 and this process on CPU 0 (it re-runs itself under `taskset`), talking through toolgate's own
 * stdio transport, one call at a time. Two modes alternate window by window:
 *   sleep  between sending a call and its answer this process waits in epoll_wait, as toolgate does;
 *   poll   it keeps its event loop turning (setImmediate) until the answer is in, so the upstream's answer
 *          finds it running and wakes no one.
 * Printed: calls/s and each side's CPU per call (the scheduler's runtime, /proc). The upstream does the same
 * work in both modes: what its CPU per call drops by in `poll` is what waking this process cost it. In the
 * bench's `split` layout the upstream and the load generator share CPU 1, so that cost is paid on the core
 * that limits throughput (README, Performance).
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { StdioTransport } from "../src/upstreams/stdio-transport.ts";
import { benchCli } from "./lib/cli.ts";
import { sample } from "./lib/proc-stats.ts";
import { median } from "./lib/stats.ts";
import { table } from "./lib/table.ts";

const cli = benchCli(import.meta.url, {
  "window-ms": { type: "string", default: "2000" },
  reps: { type: "string", default: "3" },
  json: { type: "string" },
});
const { values } = cli;
const WINDOW_MS = cli.whole("window-ms", 100);
const REPS = cli.whole("reps");
const ROOT = resolve(import.meta.dirname, "..");
const PINNED = "TOOLGATE_WAKE_COST_PINNED";
/** Set in the re-run under taskset, where this process sees one CPU. */
const pinned = process.env[PINNED] === "1";
const canPin = pinned || (availableParallelism() >= 2 && spawnSync("taskset", ["--version"]).status === 0);

if (canPin && !pinned) {
  // This process on CPU 0, the upstream on CPU 1: the bench's `split` layout.
  const argv = [process.execPath, ...process.execArgv, import.meta.filename, ...process.argv.slice(2)];
  const run = spawnSync("taskset", ["-c", "0", ...argv], {
    stdio: "inherit",
    env: { ...process.env, [PINNED]: "1" },
  });
  process.exit(run.status ?? 1);
}

type Mode = "sleep" | "poll";
interface Window {
  mode: Mode;
  calls: number;
  callsPerSec: number;
  upstreamUsPerCall: number;
  selfUsPerCall: number;
}

const ECHO_SERVER = join(ROOT, "bench/upstream-echo.ts");
const transport = new StdioTransport({
  command: canPin ? "taskset" : process.execPath,
  args: canPin ? ["-c", "1", process.execPath, ECHO_SERVER] : [ECHO_SERVER],
  env: process.env as Record<string, string>,
});
let answered: (() => void) | undefined;
transport.onmessage = (message) => {
  if ("id" in message) answered?.();
};
transport.onerror = (err) => console.error(`wake-cost: ${err.message}`);
let finished = false;
// A call waits for its answer without a timeout: an upstream that dies ends the run instead.
transport.onclose = () => {
  if (finished) return;
  console.error("wake-cost: the echo upstream exited before the run ended");
  process.exit(1);
};
await transport.start();
const upstreamPid = transport.pid;
if (upstreamPid === null) throw new Error("wake-cost: the upstream did not start");

let nextId = 0;
/** One request, answered; in `poll` mode the event loop turns until the answer is in. */
function call(method: string, params: Record<string, unknown>, mode: Mode): Promise<void> {
  return new Promise((resolve) => {
    let polling = mode === "poll";
    const poll = () => {
      if (polling) setImmediate(poll);
    };
    answered = () => {
      polling = false;
      resolve();
    };
    void transport.send({ jsonrpc: "2.0", id: nextId++, method, params } as JSONRPCMessage);
    poll();
  });
}

const ECHO = { name: "echo", arguments: { text: "x".repeat(32) } };

async function window(mode: Mode, ms: number): Promise<Window> {
  const pids = [upstreamPid as number];
  const up0 = sample(pids).cpuMs;
  const self0 = sample([process.pid]).cpuMs;
  const started = performance.now();
  let calls = 0;
  while (performance.now() - started < ms) {
    await call("tools/call", ECHO, mode);
    calls++;
  }
  const elapsed = performance.now() - started;
  return {
    mode,
    calls,
    callsPerSec: (calls * 1000) / elapsed,
    upstreamUsPerCall: ((sample(pids).cpuMs - up0) * 1000) / calls,
    selfUsPerCall: ((sample([process.pid]).cpuMs - self0) * 1000) / calls,
  };
}

await call(
  "initialize",
  { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "wake-cost", version: "1" } },
  "sleep",
);
await transport.send({ jsonrpc: "2.0", method: "notifications/initialized" });
for (const mode of ["sleep", "poll"] as const) await window(mode, 1000); // warm-up, both paths compiled

const windows: Window[] = [];
for (let rep = 0; rep < REPS; rep++) {
  for (const mode of rep % 2 === 0 ? (["sleep", "poll"] as const) : (["poll", "sleep"] as const)) {
    windows.push(await window(mode, WINDOW_MS));
  }
}
finished = true;
await transport.close();

const summary = (["sleep", "poll"] as const).map((mode) => {
  const mine = windows.filter((w) => w.mode === mode);
  return {
    mode,
    callsPerSec: median(mine.map((w) => w.callsPerSec)),
    upstreamUsPerCall: median(mine.map((w) => w.upstreamUsPerCall)),
    selfUsPerCall: median(mine.map((w) => w.selfUsPerCall)),
  };
});
const [asleep, polling] = summary as [(typeof summary)[0], (typeof summary)[0]];
console.log(
  table(
    `Wake-up cost, stdio echo, one call at a time (${canPin ? "this process on CPU 0, upstream on CPU 1" : "not pinned: fewer than 2 CPUs or no taskset"}; medians of ${REPS} windows of ${WINDOW_MS} ms)`,
    ["mode", "calls/s", "upstream µs/call", "this process µs/call"],
    summary.map((s) => [s.mode, s.callsPerSec, s.upstreamUsPerCall, s.selfUsPerCall]),
  ),
);
console.log(
  `\nwaking this process cost the upstream ${(asleep.upstreamUsPerCall - polling.upstreamUsPerCall).toFixed(1)} µs per call; polling did ${(polling.callsPerSec / asleep.callsPerSec).toFixed(2)}× the calls/s`,
);
if (values.json) {
  writeFileSync(
    values.json,
    `${JSON.stringify({ pinned: canPin, windowMs: WINDOW_MS, summary, windows }, null, 2)}\n`,
  );
}
