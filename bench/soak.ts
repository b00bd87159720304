/**
 * `npm run soak`: minutes of mixed load with faults against toolgate, sampling the gateway's RSS, V8
 * heap (from /metrics when exposed) and open fds every interval; prints a table and a flat/not-flat
 * verdict from least-squares slopes over the samples after the warm-up quarter.
 *
 *   node bench/soak.ts [--minutes 10] [--interval-s 10] [--heap-mb 256] [--json FILE]
 *
 * Load (each its own load.ts process): small echo, 64 KiB echo, the 50 ms slow tool, and a flaky tool
 * (10% transient failures) on an upstream that flaps, with retry, breaker and fallback to a second one.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { benchCli } from "./lib/cli.ts";
import { openFds, sample } from "./lib/proc-stats.ts";
import {
  exited,
  installCleanup,
  type Started,
  start,
  stopAll,
  tasksetAvailable,
  waitForLine,
} from "./lib/processes.ts";
import { median, slope } from "./lib/stats.ts";
import { fmt, table } from "./lib/table.ts";
import { configDir, faultConfig, mcpServer } from "./lib/toolgate-config.ts";

const cli = benchCli(import.meta.url, {
  minutes: { type: "string", default: "10" },
  "interval-s": { type: "string", default: "10" },
  json: { type: "string" },
  "heap-mb": { type: "string", default: "256" },
});
const { values } = cli;
const ROOT = resolve(import.meta.dirname, "..");
const NODE = process.execPath;
const ECHO = join(ROOT, "bench/upstream-echo.ts");
const durationMs = cli.decimal("minutes", 0.1) * 60_000;
const intervalMs = cli.decimal("interval-s", 1) * 1000;
const HEAP_MB = cli.whole("heap-mb", 16);
const PIN = tasksetAvailable() && availableParallelism() >= 2;
const SERVER_CPUS = PIN ? "0" : undefined;
const LOAD_CPUS = PIN ? "1" : undefined;
/**
 * Growth below these counts as flat: RSS by its slope (allocator and JIT noise); fds by the growth of the
 * median from the first to the last third of the steady samples (at most 5 %), since load connections
 * come and go and a slope through that noise says little.
 */
const FLAT_RSS_MB_PER_MIN = 2;
const FLAT_FDS_GROWTH_RATIO = 0.05;

interface Sample {
  tSec: number;
  rssMb: number;
  heapMb: number | undefined;
  fds: number;
  cpuS: number;
}

async function heapUsedMb(base: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
    // OpenTelemetry runtime-node names first, prom-client's second.
    const line = text
      .split("\n")
      .find((l) => /^(v8js_memory_heap_used_bytes|nodejs_heap_size_used_bytes)(\{[^}]*\})?\s/.test(l));
    if (!line) return undefined;
    const used = text
      .split("\n")
      .filter((l) => l.startsWith(line.split(/[{\s]/)[0] ?? "") && !l.startsWith("#"))
      .reduce((sum, l) => sum + Number(l.split(/\s+/).at(-1)), 0);
    return used / 2 ** 20;
  } catch {
    return undefined;
  }
}

async function startEcho(name: string, extra: string[]): Promise<{ proc: Started; url: string }> {
  const proc = start(name, [NODE, ECHO, "--http", "0", ...extra], { cpus: SERVER_CPUS });
  const line = await waitForLine(proc, (l) => l.startsWith('{"url"'));
  return { proc, url: (JSON.parse(line) as { url: string }).url };
}

installCleanup();
const configs = configDir();
const samples: Sample[] = [];
const loads: Array<{ name: string; proc: Started }> = [];
try {
  const a = await startEcho("upstream-a (flapping)", [
    "--fail-rate",
    "0.1",
    "--flap-up-ms",
    "8000",
    "--flap-down-ms",
    "2000",
  ]);
  const b = await startEcho("upstream-b", ["--fail-rate", "0.1"]);
  const config = faultConfig({ kind: "http", url: a.url }, { kind: "http", url: b.url }, true);
  config.mcpServers.echo = mcpServer({ kind: "stdio", argv: [NODE, ECHO] });
  const file = configs.write("soak", config);
  const gateway = start(
    "toolgate",
    // A capped old space makes V8 collect instead of growing: RSS then tracks live memory, so a slope
    // means a leak (and a real leak ends in an out-of-memory exit, which the soak reports).
    [
      NODE,
      `--max-old-space-size=${HEAP_MB}`,
      join(ROOT, "src/main.ts"),
      "serve",
      "--config",
      file,
      "--http",
      "0",
    ],
    {
      cpus: SERVER_CPUS,
      cwd: ROOT,
    },
  );
  const url = (
    JSON.parse(await waitForLine(gateway, (l) => l.includes('"toolgate listening"'))) as { mcp: string }
  ).mcp;
  const base = url.replace(/\/mcp$/, "");

  const windowMs = Math.min(intervalMs, durationMs);
  const reps = String(Math.max(1, Math.round(durationMs / windowMs)));
  const common = [
    "--url",
    url,
    "--clients",
    "4",
    "--duration-ms",
    String(windowMs),
    "--reps",
    reps,
    "--warmup-ms",
    "0",
  ];
  const mixes: Array<[string, string[]]> = [
    ["echo 32 B", ["--tool", "echo__echo", "--payload", "32", "--concurrency", "8", "--think-ms", "2"]],
    ["echo 64 KiB", ["--tool", "echo__echo", "--payload", "65536", "--concurrency", "4", "--think-ms", "5"]],
    ["slow 50 ms", ["--tool", "echo__slow", "--concurrency", "64", "--slow-ms", "50"]],
    ["flaky + flap", ["--tool", "a__flaky", "--concurrency", "8", "--think-ms", "10"]],
  ];
  for (const [name, args] of mixes) {
    loads.push({
      name,
      proc: start(`load (${name})`, [NODE, join(ROOT, "bench/load.ts"), ...common, ...args], {
        cpus: LOAD_CPUS,
      }),
    });
  }

  process.stderr.write(`soak: ${values.minutes} min against ${url}, sampling every ${intervalMs / 1000} s\n`);
  const began = performance.now();
  let previousCpu = 0;
  while (performance.now() - began < durationMs) {
    await sleep(Math.min(intervalMs, durationMs - (performance.now() - began)));
    if (gateway.child.exitCode !== null)
      throw new Error(`toolgate exited (${gateway.child.exitCode}): ${gateway.stderrTail.join("\n")}`);
    const proc = sample([gateway.pid]);
    const s: Sample = {
      tSec: Math.round((performance.now() - began) / 1000),
      rssMb: proc.rssKb / 1024,
      heapMb: await heapUsedMb(base),
      fds: openFds(gateway.pid),
      cpuS: (proc.cpuMs - previousCpu) / 1000,
    };
    previousCpu = proc.cpuMs;
    samples.push(s);
    process.stderr.write(
      `  t=${s.tSec}s rss=${fmt(s.rssMb, 1)} MB heap=${fmt(s.heapMb, 1)} MB fds=${s.fds}\n`,
    );
  }
  await Promise.all(loads.map((l) => exited(l.proc)));
} finally {
  await stopAll();
  configs.remove();
}

// Report: the first quarter is warm-up (JIT, pools, heap sizing); slopes come from the rest.
const steady = samples.slice(Math.floor(samples.length / 4));
const perMin = (pick: (s: Sample) => number | undefined) => {
  const points = steady.flatMap((s) => {
    const v = pick(s);
    return v === undefined ? [] : [[s.tSec / 60, v] as const];
  });
  return slope(points);
};
const rssSlope = perMin((s) => s.rssMb);
const heapSlope = perMin((s) => s.heapMb);
const fdSlope = perMin((s) => s.fds);
const third = Math.max(1, Math.floor(steady.length / 3));
const fdsBefore = median(steady.slice(0, third).map((s) => s.fds));
const fdGrowth = median(steady.slice(-third).map((s) => s.fds)) - fdsBefore;
const flat = !(rssSlope > FLAT_RSS_MB_PER_MIN) && !(fdGrowth > fdsBefore * FLAT_FDS_GROWTH_RATIO);

const loadTotals = loads.map(({ name, proc }) => {
  const rows = proc.lines
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { calls: number; errors: number; p50Ms: number; p99Ms: number });
  const calls = rows.reduce((s, r) => s + r.calls, 0);
  const errors = rows.reduce((s, r) => s + r.errors, 0);
  return {
    name,
    calls,
    errors,
    successPct: (100 * (calls - errors)) / Math.max(1, calls),
    p50Ms: median(rows.map((r) => r.p50Ms)),
    p99Ms: median(rows.map((r) => r.p99Ms)),
  };
});

const out = [
  table(
    "Gateway over time",
    ["t s", "RSS MB", "heap MB", "open fds", "CPU s in interval"],
    samples.map((s) => [s.tSec, fmt(s.rssMb, 1), fmt(s.heapMb, 1), s.fds, fmt(s.cpuS, 2)]),
  ),
  table(
    "Load",
    ["stream", "calls", "success %", "median p50 ms", "median p99 ms"],
    loadTotals.map((l) => [l.name, l.calls, fmt(l.successPct, 2), l.p50Ms, l.p99Ms]),
  ),
  `\nSlopes after warm-up: RSS ${fmt(rssSlope, 2)} MB/min, heap ${fmt(heapSlope, 2)} MB/min, fds ${fmt(fdSlope, 2)}/min`,
  `Verdict: ${flat ? "FLAT" : "NOT FLAT"} (flat: RSS < ${FLAT_RSS_MB_PER_MIN} MB/min, open fds up by at most ${FLAT_FDS_GROWTH_RATIO * 100} % from the first to the last third: ${fdGrowth >= 0 ? "+" : ""}${fdGrowth})`,
];
process.stdout.write(`${out.join("\n")}\n`);
if (values.json) {
  const path = resolve(values.json);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(
    path,
    `${JSON.stringify({ samples, loadTotals, rssSlope, heapSlope, fdSlope, fdGrowth, flat }, null, 2)}\n`,
  );
}
