/**
 * `npm run bench`: toolgate against a client talking to the upstream directly (the floor) and
 * against three peers (supergateway, mcp-proxy, and a Go proxy on mark3labs/mcp-go built from bench/go-proxy
 * when Go is installed), all in one run on this machine; prints tables and PASS/MISS per target, writes
 * JSON. Absolute numbers are printed, never asserted; every comparison is a ratio of medians measured in
 * this run.
 *
 *   node bench/run.ts [--quick] [--json FILE] [--no-pin] [--layout split|shared] [--sessions N]
 *                     [--only WORKLOAD|SETUP,...] [--profile DIR] [--steady-ms MS] [--reps N]
 *                     [--concurrency 1,16,...] [--window-ms MS] [--warmup-ms MS] [--client wire|sdk]
 *   (workloads: echo, faults, sessions, telemetry; setups: direct-http, toolgate-stdio, go-proxy-http, ...)
 *
 * The echo systems run side by side and take turns, one window each (A, B, C, A, B, C, ...): a ratio compares
 * adjacent windows, so a noisy spell on a shared machine hits every system alike.
 *
 * Layout (the same for every system, printed with the results): `split` (default) puts the proxy on CPU 0
 * and the upstream and the load generator on CPU 1; `shared` puts proxy and upstream on CPU 0 and the load
 * on CPU 1. A stdio upstream is started through `taskset` so it gets the upstream's CPU, not its parent's.
 *
 * The load generator's client (`--client`): `wire` (default) posts JSON-RPC straight onto the wire, as wrk
 * or hey would, and costs a quarter to a third of the SDK client's CPU per call over HTTP, which leaves CPU 1
 * to the upstream; `sdk` drives every system with the official SDK clients (v1, and v2 for 2026-07-28). Idle
 * sessions are always opened by the SDK client, which holds a listen stream as applications do.
 */

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { availableParallelism, cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import type { ConfigInput } from "../src/config/schema.ts";
import { freePort } from "../test/helpers/ports.ts";
import { benchCli } from "./lib/cli.ts";
import {
  exited,
  installCleanup,
  type Started,
  start,
  stop,
  stopAll,
  tasksetAvailable,
  waitForLine,
} from "./lib/processes.ts";
import { summariseProfile } from "./lib/profile-summary.ts";
import { median, quantile, ratio } from "./lib/stats.ts";
import { type Cell, fmt, table } from "./lib/table.ts";
import { configDir, echoConfig, faultConfig, type Upstream } from "./lib/toolgate-config.ts";

const cli = benchCli(import.meta.url, {
  quick: { type: "boolean", default: false },
  json: { type: "string" },
  "no-pin": { type: "boolean", default: false },
  layout: { type: "string", default: "split" },
  sessions: { type: "string" },
  only: { type: "string" },
  profile: { type: "string" },
  "steady-ms": { type: "string" },
  "window-ms": { type: "string" },
  "warmup-ms": { type: "string" },
  reps: { type: "string" },
  concurrency: { type: "string" },
  client: { type: "string", default: "wire" },
});
const { values } = cli;

const ROOT = resolve(import.meta.dirname, "..");
const NODE = process.execPath;
const ECHO = join(ROOT, "bench/upstream-echo.ts");
const LOAD = join(ROOT, "bench/load.ts");
const MAIN = join(ROOT, "src/main.ts");
const LOOPBACK = join(ROOT, "bench/lib/force-loopback.ts");
const SUPERGATEWAY = join(ROOT, "node_modules/supergateway/dist/index.js");

/** Builds the Go baseline proxy with the Go toolchain; a note instead when Go is missing or the build fails. */
function buildGoProxy(): { binary: string } | { note: string } {
  const binary = join(ROOT, "bench/results/go-proxy");
  try {
    execFileSync("go", ["build", "-o", binary, "."], { cwd: join(ROOT, "bench/go-proxy"), stdio: "pipe" });
    return existsSync(binary) ? { binary } : { note: "go build produced no binary" };
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return { note: `Go proxy skipped: ${stderr || (error as Error).message}` };
  }
}
const MCP_PROXY = join(ROOT, "node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs");

const CORES = availableParallelism();
const PIN = !values["no-pin"] && tasksetAvailable() && CORES >= 2;
const LAYOUT = cli.choice("layout", ["split", "shared"]);
const CLIENT = cli.choice("client", ["wire", "sdk"]);
/** Which CPU each role gets (see the header); undefined when not pinned. */
const PROXY_CPUS = PIN ? "0" : undefined;
const UPSTREAM_CPUS = PIN ? (LAYOUT === "split" ? "1" : "0") : undefined;
const LOAD_CPUS = PIN ? "1" : undefined;

const PLAN = values.quick
  ? {
      payloads: [32],
      concurrency: [1, 16],
      reps: 1,
      // A second of warm-up: shorter windows measured a cold JIT (+7 ms p50 in an outside run).
      windowMs: 1000,
      warmupMs: 1000,
      steadyMs: 3000,
      slowConcurrency: [256],
      faultWindowMs: 1500,
      sessions: 100,
      sessionCallMs: 1000,
      sessionSetups: ["toolgate-http"] as const,
    }
  : {
      payloads: [32, 65536],
      concurrency: [1, 16, 64, 256],
      reps: 3,
      windowMs: 1000,
      warmupMs: 1000,
      // V8's top tier (TurboFan) takes a function after thousands of calls: after 5 s of load most of the
      // call path was still mid-tier code, after 20 s it was not (perf, 2026-12-02).
      steadyMs: 20_000,
      slowConcurrency: [256, 1024],
      faultWindowMs: 2000,
      sessions: 1000,
      sessionCallMs: 3000,
      sessionSetups: ["direct-http", "toolgate-http", "mcp-proxy"] as const,
    };
PLAN.reps = cli.whole("reps") ?? PLAN.reps;
PLAN.concurrency = cli.wholeList("concurrency") ?? PLAN.concurrency;
// Longer windows and warm-ups than the plan's, for a host whose calls/s swing from second to second.
PLAN.steadyMs = cli.whole("steady-ms", 0) ?? PLAN.steadyMs;
PLAN.windowMs = cli.whole("window-ms", 100) ?? PLAN.windowMs;
PLAN.warmupMs = cli.whole("warmup-ms", 0) ?? PLAN.warmupMs;
const SESSIONS = cli.whole("sessions") ?? PLAN.sessions;
const SLOW_MS = 50;
const WORKLOADS = ["echo", "faults", "sessions", "telemetry"];
const ECHO_SETUPS: SetupName[] = [
  "direct-http",
  "direct-http-json",
  "direct-stdio",
  "toolgate-http",
  "toolgate-http-json",
  "toolgate-http-2026",
  "toolgate-http-off",
  "toolgate-stdio",
  "toolgate-stdio-off",
  "go-proxy-http",
  "go-proxy-stdio",
  "supergateway",
  "mcp-proxy",
];
const only = values.only?.split(",");
for (const name of only ?? []) {
  if (!WORKLOADS.includes(name) && !(ECHO_SETUPS as string[]).includes(name)) {
    cli.fail(
      `--only takes workloads (${WORKLOADS.join(", ")}) and setups (${ECHO_SETUPS.join(", ")}), not "${name}"`,
    );
  }
}

/** `--only` narrows the run to some workloads and/or setups (for development; reports show gaps as "-"). */
function selected(workload: string, setup?: string): boolean {
  if (!only) return true;
  const workloads = only.filter((o) => WORKLOADS.includes(o));
  const setups = only.filter((o) => !WORKLOADS.includes(o));
  return (
    (workloads.length === 0 || workloads.includes(workload)) &&
    (setup === undefined || setups.length === 0 || setups.includes(setup))
  );
}

/** Built only when a Go setup runs: `go build` takes seconds even with a warm build cache. */
const GO_PROXY =
  selected("echo", "go-proxy-http") || selected("echo", "go-proxy-stdio")
    ? buildGoProxy()
    : { note: "Go proxy not built: no go-proxy setup selected (--only)" };

// ---------------------------------------------------------------------------------------------
// Setups: something to point the load generator at, and the processes to watch in /proc.

interface Setup {
  name: string;
  target: { url: string } | { stdio: string[] };
  /** `role:pid[:children]` for load.ts --watch; roles: gateway, upstream. */
  watch: string[];
  procs: Started[];
  /** Public tool name prefix (`echo__` through toolgate). */
  prefix: string;
  /** The load generator's client: a 2025-11-25 session unless `modern` (stateless 2026-07-28 requests). */
  era?: "modern";
  /** Drives the gateway (and upstream) of this other running setup, which owns the processes. */
  sharesWith?: SetupName;
}

/**
 * The echo setups running now, by name: `toolgate-http-2026` drives `toolgate-http`'s gateway when that runs,
 * so the 2026 ÷ 2025 ratio compares one process in adjacent windows, not two processes that each sat idle
 * between theirs (a Node process back from idle runs its first seconds at a varying extra cost).
 */
const runningSetups = new Map<SetupName, Setup>();

const configs = configDir();

/**
 * The stdio echo upstream's command line, pinned to the upstream's CPU whichever process spawns it, and in a
 * session of its own, as every other process the bench starts. Linux's autogroup scheduling (on by default)
 * shares a CPU between sessions, not processes: an upstream in its proxy's session gets a weight on its CPU
 * that shrinks as the proxy's own CPU use grows elsewhere, runs later, reads more requests per wake-up and
 * so costs less per call. The proxy that burns more CPU got the cheaper upstream (docs/PERFORMANCE.md,
 * fifteenth round); in a session of its own the upstream is weighed by itself behind every proxy.
 */
function echoStdioArgv(extra: string[] = []): string[] {
  const layout = UPSTREAM_CPUS ? ["setsid", "--wait", "taskset", "-c", UPSTREAM_CPUS] : [];
  return [...layout, NODE, ECHO, ...extra];
}

async function startEcho(name: string, extra: string[] = []): Promise<{ proc: Started; url: string }> {
  const proc = start(name, [NODE, ECHO, "--http", "0", ...extra], { cpus: UPSTREAM_CPUS });
  const line = await waitForLine(proc, (l) => l.startsWith('{"url"'));
  return { proc, url: (JSON.parse(line) as { url: string }).url };
}

/** An HTTP echo upstream for a setup (`json`: plain JSON answers, else SSE); `owned` when the setup must stop it. */
type EchoSource = (json: boolean) => Promise<{ proc: Started; url: string; owned: boolean }>;

const ownEcho: EchoSource = async (json) => ({
  ...(await startEcho("upstream-echo", json ? ["--json-response"] : [])),
  owned: true,
});

/**
 * One HTTP echo upstream per answer kind, shared by the setups measured side by side. They take turns, so a
 * window's upstream CPU is its system's alone; and two Node processes started alike can differ by 20 % in CPU
 * per call for as long as they live (two upstreams driven directly in alternated windows: 0.81×, every pair
 * below 1), which separate upstreams would add to every HTTP ratio.
 */
function sharedEchoes(): { source: EchoSource; stop: () => Promise<void> } {
  const started = new Map<boolean, Promise<{ proc: Started; url: string }>>();
  return {
    source: async (json) => {
      let echo = started.get(json);
      if (!echo) {
        echo = startEcho(json ? "upstream-echo-json" : "upstream-echo", json ? ["--json-response"] : []);
        started.set(json, echo);
      }
      return { ...(await echo), owned: false };
    },
    stop: async () => {
      for (const echo of started.values()) await stop((await echo).proc);
    },
  };
}

async function startToolgate(name: string, config: ConfigInput): Promise<{ proc: Started; url: string }> {
  const file = configs.write(name, config);
  const profile = profileDir(name);
  const spawnedAt = performance.now();
  const proc = start(name, [NODE, ...profile, MAIN, "serve", "--config", file, "--http", "0"], {
    cpus: PROXY_CPUS,
    cwd: ROOT,
  });
  const line = await waitForLine(proc, (l) => l.includes('"toolgate listening"'));
  const entry = profiled.at(-1);
  if (profile.length && entry) entry.skipMs += performance.now() - spawnedAt;
  return { proc, url: (JSON.parse(line) as { mcp: string }).mcp };
}

/** Profile directories written so far, one per toolgate started (`--profile`). */
const profiled: { name: string; dir: string; skipMs: number }[] = [];

/** `node --cpu-prof` arguments for one toolgate when `--profile` is given; the gateway writes it on exit. */
function profileDir(name: string): string[] {
  if (!values.profile) return [];
  const dir = join(resolve(values.profile), `${name}-${profiled.length + 1}`);
  mkdirSync(dir, { recursive: true });
  // Start-up is left out of the summary: the ready time is added once the gateway says it listens.
  profiled.push({ name, dir, skipMs: PLAN.steadyMs + PLAN.warmupMs });
  return ["--cpu-prof", `--cpu-prof-dir=${dir}`];
}

/** Each profiled gateway's hottest functions (self time), after the processes have stopped. */
function profileReport(): string {
  const out: string[] = [];
  for (const { name, dir, skipMs } of profiled) {
    const summary = summariseProfile(dir, skipMs);
    if (!summary) {
      out.push(`\n${name}: no profile written (the gateway did not exit cleanly)`);
      continue;
    }
    out.push(
      `\n${name}: ${summary.file} (${summary.busySamples} busy samples; self time, share of busy samples)`,
      ...summary.top.map((t) => `  ${(t.share * 100).toFixed(1).padStart(5)} %  ${t.frame}`),
    );
  }
  return out.length
    ? `\nCPU profiles (open a .cpuprofile in Chrome DevTools or speedscope for the flame graph)${out.join("\n")}`
    : "";
}

/** Peers print nothing machine-readable when ready: poll until their port answers HTTP. */
async function waitForHttp(proc: Started, url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (proc.child.exitCode !== null) break;
    try {
      await fetch(url, { method: "GET", signal: AbortSignal.timeout(1_000) }).then((r) => r.body?.cancel());
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`bench: ${proc.name} did not answer at ${url}; stderr:\n  ${proc.stderrTail.join("\n  ")}`);
}

type SetupName =
  | "direct-http"
  | "direct-http-json"
  | "direct-stdio"
  | "toolgate-http"
  | "toolgate-http-json"
  | "toolgate-http-2026"
  | "toolgate-http-off"
  | "toolgate-stdio"
  | "toolgate-stdio-off"
  | "supergateway"
  | "mcp-proxy"
  | "go-proxy-http"
  | "go-proxy-stdio";

async function startSetup(
  name: SetupName,
  telemetry?: { mode: "on" | "off"; sinkUrl?: string },
  echoes: EchoSource = ownEcho,
): Promise<Setup> {
  const echoStdio: Upstream = { kind: "stdio", argv: echoStdioArgv() };
  switch (name) {
    case "direct-http":
    case "direct-http-json": {
      // The SDK's default Streamable HTTP answers each POST with an SSE stream; `-json` answers plain JSON.
      const echo = await echoes(name.endsWith("-json"));
      return {
        name,
        target: { url: echo.url },
        watch: [`upstream:${echo.proc.pid}`],
        procs: echo.owned ? [echo.proc] : [],
        prefix: "",
      };
    }
    case "direct-stdio":
      return {
        name,
        target: { stdio: echoStdioArgv() },
        watch: ["upstream:self:children"],
        procs: [],
        prefix: "",
      };
    case "toolgate-http":
    case "toolgate-http-json":
    case "toolgate-http-2026":
    case "toolgate-http-off": {
      const base =
        name === "toolgate-http-2026" && !telemetry ? runningSetups.get("toolgate-http") : undefined;
      if (base)
        return {
          ...base,
          name,
          procs: [],
          era: "modern",
          sharesWith: base.name as SetupName,
        };
      const echo = await echoes(name.endsWith("-json"));
      const policies = name === "toolgate-http-off" ? "off" : "on";
      const config = echoConfig({ upstream: { kind: "http", url: echo.url }, policies, telemetry });
      const tg = await startToolgate(`${name}${telemetry ? `-telemetry-${telemetry.mode}` : ""}`, config);
      return {
        name,
        target: { url: tg.url },
        watch: [`gateway:${tg.proc.pid}`, `upstream:${echo.proc.pid}`],
        procs: echo.owned ? [tg.proc, echo.proc] : [tg.proc],
        prefix: "echo__",
        ...(name === "toolgate-http-2026" && { era: "modern" as const }),
      };
    }
    case "toolgate-stdio":
    case "toolgate-stdio-off": {
      const policies = name === "toolgate-stdio" ? "on" : "off";
      const tg = await startToolgate(name, echoConfig({ upstream: echoStdio, policies }));
      return {
        name,
        target: { url: tg.url },
        watch: [`gateway:${tg.proc.pid}`, `upstream:${tg.proc.pid}:children`],
        procs: [tg.proc],
        prefix: "echo__",
      };
    }
    case "supergateway":
      // supergateway cannot be told a host: the preload makes it bind 127.0.0.1.
      return startPeer(name, (port) => [
        NODE,
        "--import",
        LOOPBACK,
        SUPERGATEWAY,
        "--stdio",
        echoStdioArgv().join(" "),
        "--outputTransport",
        "streamableHttp",
        "--stateful",
        "--port",
        String(port),
        "--logLevel",
        "none",
      ]);
    case "mcp-proxy":
      return startPeer(name, (port) => [
        NODE,
        MCP_PROXY,
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--server",
        "stream",
        "--",
        ...echoStdioArgv(),
      ]);
    case "go-proxy-stdio":
    case "go-proxy-http": {
      if (!("binary" in GO_PROXY)) throw new Error(GO_PROXY.note);
      const echo = name === "go-proxy-http" ? await echoes(false) : undefined;
      const upstream = echo ? ["-url", echo.url] : ["-stdio", echoStdioArgv().join(" ")];
      const proc = start(name, [GO_PROXY.binary, ...upstream], { cpus: PROXY_CPUS });
      const line = await waitForLine(proc, (l) => l.startsWith('{"url"'));
      return {
        name,
        target: { url: (JSON.parse(line) as { url: string }).url },
        watch: [`gateway:${proc.pid}`, echo ? `upstream:${echo.proc.pid}` : `upstream:${proc.pid}:children`],
        procs: echo?.owned ? [proc, echo.proc] : [proc],
        prefix: "",
      };
    }
  }
}

/** A peer proxy wrapping the stdio echo server, serving Streamable HTTP at /mcp on a free port. */
async function startPeer(name: string, argv: (port: number) => string[]) {
  const port = await freePort();
  const proc = start(name, argv(port), { cpus: PROXY_CPUS });
  const url = `http://127.0.0.1:${port}/mcp`;
  await waitForHttp(proc, url);
  return {
    name,
    target: { url },
    watch: [`gateway:${proc.pid}`, `upstream:${proc.pid}:children`],
    procs: [proc],
    prefix: "",
  };
}

async function stopSetup(setup: Setup): Promise<void> {
  runningSetups.delete(setup.name as SetupName);
  for (const proc of setup.procs) await stop(proc);
}

// ---------------------------------------------------------------------------------------------
// The load generator: its own process, pinned to its own core.

interface ProcWatch {
  cpuMs: number;
  rssKb: number;
  hwmKb: number;
  pids: number;
}

interface WindowResult {
  kind: "window";
  setup: string;
  tool: string;
  payload: number;
  concurrency: number;
  clients: number;
  rep: number;
  calls: number;
  errors: number;
  errorSample?: string;
  elapsedMs: number;
  callsPerSec: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  watch: Record<string, ProcWatch>;
  /** Function-call interrupts per CPU over the window (bench/lib/proc-stats.ts, wakeUpInterrupts). */
  wakeUps?: number[];
  /** Each CPU's share of the window stolen by the hypervisor, 0–1 (bench/lib/proc-stats.ts, stealShares). */
  steal?: Array<number | null>;
}

interface SessionsResult {
  kind: "sessions";
  setup: string;
  sessions: number;
  openErrors: number;
  openErrorSample?: string;
  openMs: number;
  calls: number;
  errors: number;
  errorSample?: string;
  callsPerSec: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  before: Record<string, ProcWatch>;
  idle: Record<string, ProcWatch>;
  after: Record<string, ProcWatch>;
}

/** The processes a load generator samples around each window of a setup. */
function loadWatch(setup: Setup): string[] {
  return [...setup.watch, "load:self"];
}

/** What a load generator of its own is given for a setup: its target, the processes to watch, the era. */
function loadTarget(setup: Setup): string[] {
  const target =
    "url" in setup.target ? ["--url", setup.target.url] : ["--stdio", JSON.stringify(setup.target.stdio)];
  const watch = loadWatch(setup).flatMap((w) => ["--watch", w]);
  return [...target, ...watch, ...(setup.era ? ["--era", setup.era] : [])];
}

async function runLoad<T>(setup: Setup, args: string[], expectMs: number): Promise<T[]> {
  const proc = start(`load generator (${setup.name})`, [NODE, LOAD, ...loadTarget(setup), ...args], {
    cpus: LOAD_CPUS,
  });
  const timer = setTimeout(() => void stop(proc), expectMs + 60_000);
  const code = await exited(proc);
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(
      `load generator against ${setup.name} failed (exit ${code}):\n  ${proc.stderrTail.join("\n  ")}`,
    );
  }
  return proc.lines
    .filter((l) => l.startsWith("{"))
    .map((l) => ({ setup: setup.name, ...(JSON.parse(l) as object) }) as T);
}

/**
 * A load generator kept running (`load.ts --serve`) that drives the setups added to it, one window at a time:
 * every window reuses that setup's connected clients and the generator's warm JIT. A fresh generator per window
 * spends its first seconds compiling on the upstream's core, which raised a Node upstream's and gateway's CPU
 * per call 2–3× in some windows; and one generator for all the setups measured side by side gives none of them
 * a luckier process than another (two identical Node processes differed by up to 19 % in CPU per call).
 */
class LoadServer {
  readonly #proc: Started;
  readonly #lines: AsyncIterator<string>;
  /** Why it stopped answering: a late answer would be taken for the next request's, so nothing more is asked. */
  #broken: string | undefined;

  private constructor(proc: Started) {
    this.#proc = proc;
    this.#lines = createInterface({ input: proc.child.stdout as NodeJS.ReadableStream })[
      Symbol.asyncIterator
    ]();
  }

  static async start(name: string): Promise<LoadServer> {
    const concurrency = String(Math.max(16, ...PLAN.concurrency));
    const argv = [NODE, LOAD, "--serve", "--concurrency", concurrency, "--clients", "16"];
    const proc = start(`load generator (${name})`, argv, { cpus: LOAD_CPUS, stdin: true });
    const server = new LoadServer(proc);
    await server.#next(60_000);
    return server;
  }

  /** Connects the setup's clients (each setup its own sessions); throws when they cannot connect. */
  async add(setup: Setup): Promise<void> {
    const connect = {
      name: setup.name,
      ...setup.target,
      tool: `${setup.prefix}echo`,
      era: setup.era,
      client: CLIENT,
      watch: loadWatch(setup),
    };
    await this.#ask({ connect }, 60_000);
  }

  /** Warm-up then a measured window of one added setup (none when windowMs is 0); its result line. */
  async window(
    setup: Setup,
    request: { payload: number; concurrency: number; warmupMs: number; windowMs: number },
  ) {
    const timeoutMs = request.warmupMs + request.windowMs + 60_000;
    return (await this.#ask({ ...request, target: setup.name }, timeoutMs)) as unknown as WindowResult;
  }

  async #ask(request: object, timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.#broken) throw new Error(this.#broken);
    this.#proc.child.stdin?.write(`${JSON.stringify(request)}\n`);
    let line: string;
    try {
      line = await this.#next(timeoutMs);
    } catch (error) {
      this.#broken = (error as Error).message;
      throw error;
    }
    const answer = JSON.parse(line) as Record<string, unknown>;
    if (answer.kind === "failed") throw new Error(`${this.#proc.name}: ${String(answer.error)}`);
    return answer;
  }

  async #next(timeoutMs: number): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const next = await Promise.race([this.#lines.next(), timeout]);
      if (next.done) throw new Error("it exited");
      return next.value;
    } catch (error) {
      throw new Error(
        `${this.#proc.name}: ${(error as Error).message}; stderr:\n  ${this.#proc.stderrTail.join("\n  ")}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends its input: it closes its sessions and exits. */
  async stop(): Promise<void> {
    this.#proc.child.stdin?.end();
    const timer = setTimeout(() => void stop(this.#proc), 10_000);
    await exited(this.#proc);
    clearTimeout(timer);
  }
}

function windowArgs(o: {
  tool: string;
  payloads?: number[];
  concurrency: number[];
  reps: number;
  windowMs: number;
  warmupMs: number;
  extra?: string[];
}): { args: string[]; expectMs: number } {
  const payloads = o.payloads ?? [32];
  const args = [
    "--tool",
    o.tool,
    "--payload",
    payloads.join(","),
    "--concurrency",
    o.concurrency.join(","),
    "--clients",
    "16",
    "--reps",
    String(o.reps),
    "--duration-ms",
    String(o.windowMs),
    "--warmup-ms",
    String(o.warmupMs),
    "--client",
    CLIENT,
    ...(o.extra ?? []),
  ];
  return { args, expectMs: payloads.length * o.concurrency.length * (o.warmupMs + o.reps * o.windowMs) };
}

// ---------------------------------------------------------------------------------------------
// Aggregation: medians over repetitions.

interface Summary {
  setup: string;
  tool: string;
  payload: number;
  concurrency: number;
  reps: number;
  calls: number;
  errors: number;
  errorSample: string | undefined;
  callsPerSec: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** CPU time per call (the scheduler's runtime of every thread, bench/lib/proc-stats.ts), microseconds. */
  gatewayCpuUs: number;
  upstreamCpuUs: number;
  /** Function-call interrupts taken by the proxies' CPU (CPU 0 when pinned) per call: wake-ups of a sleeping proxy. */
  proxyWakeUps: number;
  /** Per CPU (0, 1), the share of time stolen by the hypervisor, % (median and worst window). */
  steal: Array<{ median: number; worst: number }>;
  gatewayRssMb: number;
  gatewayPeakMb: number;
  upstreamRssMb: number;
  /** The load generator's CPU use during the window, % of one core (near 100: it is the bottleneck). */
  loadCpuPct: number;
  /** Resident memory at the end of each repetition (gateway, or the upstream when there is none). */
  rssPerRepMb: number[];
}

const mb = (kb: number | undefined) => (kb ?? 0) / 1024;

/** CPU per call (µs) of the process watched as `role` over one window. */
function cpuPerCall(window: WindowResult, role: string): number {
  const watched = window.watch[role];
  return watched ? (watched.cpuMs * 1000) / Math.max(1, window.calls) : Number.NaN;
}

function summarize(rows: WindowResult[]): Summary[] {
  const groups = new Map<string, WindowResult[]>();
  for (const r of rows) {
    const key = `${r.setup}|${r.tool}|${r.payload}|${r.concurrency}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((g) => {
    const first = g[0] as WindowResult;
    const cpuUs = (role: string) => median(g.map((r) => cpuPerCall(r, role)));
    const main = first.watch.gateway ? "gateway" : "upstream";
    return {
      setup: first.setup,
      tool: first.tool,
      payload: first.payload,
      concurrency: first.concurrency,
      reps: g.length,
      calls: g.reduce((s, r) => s + r.calls, 0),
      errors: g.reduce((s, r) => s + r.errors, 0),
      errorSample: g.find((r) => r.errorSample)?.errorSample,
      callsPerSec: median(g.map((r) => r.callsPerSec)),
      p50Ms: median(g.map((r) => r.p50Ms)),
      p95Ms: median(g.map((r) => r.p95Ms)),
      p99Ms: median(g.map((r) => r.p99Ms)),
      gatewayCpuUs: cpuUs("gateway"),
      upstreamCpuUs: cpuUs("upstream"),
      proxyWakeUps: PIN
        ? median(g.map((r) => (r.wakeUps?.[0] ?? Number.NaN) / Math.max(1, r.calls)))
        : Number.NaN,
      steal: [0, 1].map((cpu) => {
        const shares = g.map((r) => 100 * (r.steal?.[cpu] ?? Number.NaN)).filter(Number.isFinite);
        return { median: median(shares), worst: shares.length ? Math.max(...shares) : Number.NaN };
      }),
      gatewayRssMb: Math.max(...g.map((r) => mb(r.watch.gateway?.rssKb))),
      gatewayPeakMb: Math.max(...g.map((r) => mb(r.watch.gateway?.hwmKb))),
      upstreamRssMb: Math.max(...g.map((r) => mb(r.watch.upstream?.rssKb))),
      loadCpuPct: median(g.map((r) => (100 * (r.watch.load?.cpuMs ?? Number.NaN)) / r.elapsedMs)),
      rssPerRepMb: g.map((r) => Math.round(mb(r.watch[main]?.rssKb))),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// The run.

const failures: string[] = [];
const windows: WindowResult[] = [];
const faultRows: WindowResult[] = [];
const sessionRows: SessionsResult[] = [];
const telemetryRows: WindowResult[] = [];

/** Runs one setup's workloads; a failing setup is reported and the run goes on with the others. */
async function withSetup(
  workload: string,
  name: SetupName,
  body: (setup: Setup) => Promise<void>,
  telemetry?: { mode: "on" | "off"; sinkUrl?: string },
): Promise<void> {
  if (!selected(workload, name)) return;
  let setup: Setup | undefined;
  const began = performance.now();
  try {
    setup = await startSetup(name, telemetry);
    await body(setup);
  } catch (error) {
    failures.push(`${name}: ${(error as Error).message}`);
    process.stderr.write(`bench: ${name} failed: ${(error as Error).message}\n`);
  } finally {
    if (setup) await stopSetup(setup);
    process.stderr.write(`bench: ${name} done in ${((performance.now() - began) / 1000).toFixed(1)} s\n`);
  }
}

/**
 * Every system but the two npm peers is measured window by window in turn (A, B, C, A, B, C, ...), all of
 * them running at once and idle between their windows: a ratio then compares windows seconds apart, not
 * phases minutes apart, and a noisy spell on a shared machine hits every system alike. The npm peers
 * (supergateway spawns an upstream per session, mcp-proxy is far behind) keep one load process each, after.
 */
const SEQUENTIAL: ReadonlySet<SetupName> = new Set(["supergateway", "mcp-proxy"]);

async function echoWorkloads(): Promise<void> {
  await interleavedEcho(ECHO_SETUPS.filter((name) => !SEQUENTIAL.has(name) && selected("echo", name)));
  for (const name of ECHO_SETUPS) {
    if (!SEQUENTIAL.has(name)) continue;
    await withSetup("echo", name, async (setup) => {
      const load = await LoadServer.start(setup.name);
      try {
        await load.add(setup);
        await load.window(setup, STEADY);
        for (const payload of PLAN.payloads) {
          for (const concurrency of PLAN.concurrency) {
            for (let rep = 0; rep < PLAN.reps; rep++) {
              const warmupMs = rep === 0 ? PLAN.warmupMs : 0;
              const request = { payload, concurrency, warmupMs, windowMs: PLAN.windowMs };
              const row = await load.window(setup, request);
              windows.push({ ...row, setup: setup.name, rep });
            }
          }
        }
      } finally {
        await load.stop();
      }
    });
  }
}

/**
 * Steady state first, for every system alike: V8 optimizes a function only after many calls, so a Node
 * process measured at concurrency 1 straight after start runs its call path half-compiled (about 2x the CPU
 * per call of the same process a few seconds later). A Go binary needs none. Unmeasured load at concurrency 16.
 */
const STEADY = { payload: 32, concurrency: 16, warmupMs: PLAN.steadyMs, windowMs: 0 };

/**
 * The first round's windows come after the others' steady state, so a system has sat idle for up to minutes:
 * a Node process then spends its first seconds at up to 3x its CPU per call (a Go binary far less), which a
 * 1 s warm-up does not absorb. Later rounds follow seconds of idle.
 */
const FIRST_ROUND_EXTRA_WARMUP_MS = 4_000;

async function interleavedEcho(names: SetupName[]): Promise<void> {
  const running: Setup[] = [];
  const began = performance.now();
  const load = await LoadServer.start("echo, side by side");
  /** A setup that fails is reported and dropped; the others go on. */
  const attempt = async (name: string, step: () => Promise<void>): Promise<boolean> => {
    try {
      await step();
      return true;
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
      process.stderr.write(`bench: ${name} failed: ${(error as Error).message}\n`);
      return false;
    }
  };
  const drop = (setup: Setup) => running.splice(running.indexOf(setup), 1);
  const echoes = sharedEchoes();
  try {
    for (const name of names) {
      await attempt(name, async () => {
        const setup = await startSetup(name, undefined, echoes.source);
        running.push(setup);
        runningSetups.set(name, setup);
      });
    }
    for (const setup of [...running]) {
      const warmed = await attempt(setup.name, async () => {
        await load.add(setup);
        await load.window(setup, STEADY);
      });
      if (!warmed) drop(setup);
    }
    process.stderr.write(
      `bench: ${running.length} systems started and warmed in ${((performance.now() - began) / 1000).toFixed(1)} s\n`,
    );
    for (let rep = 0; rep < PLAN.reps; rep++) {
      for (const payload of PLAN.payloads) {
        for (const concurrency of PLAN.concurrency) {
          // Each rep starts with the next system, so none always runs right after the same other one, and
          // setups sharing a gateway swap places every other rep (the first of them follows the gateway's idle).
          const turn = running.map((_, i) => running[(i + rep) % running.length] as Setup);
          if (rep % 2 === 1) swapSharers(turn);
          for (const setup of turn) {
            const ok = await attempt(setup.name, async () => {
              const warmupMs = rep === 0 ? PLAN.warmupMs + FIRST_ROUND_EXTRA_WARMUP_MS : PLAN.warmupMs;
              const request = { payload, concurrency, warmupMs, windowMs: PLAN.windowMs };
              windows.push({ ...(await load.window(setup, request)), setup: setup.name, rep });
            });
            if (!ok) drop(setup);
          }
        }
      }
    }
    // The slow tool: many calls in flight must overlap, not queue behind each other.
    for (const setup of running) {
      if (setup.name !== "direct-http" && setup.name !== "toolgate-http") continue;
      const slow = windowArgs({
        tool: `${setup.prefix}slow`,
        concurrency: PLAN.slowConcurrency,
        reps: PLAN.reps,
        windowMs: Math.max(PLAN.windowMs, 1000),
        warmupMs: PLAN.warmupMs,
        extra: ["--slow-ms", String(SLOW_MS)],
      });
      await attempt(setup.name, async () => {
        windows.push(...(await runLoad<WindowResult>(setup, slow.args, slow.expectMs)));
      });
    }
  } finally {
    await load.stop();
    for (const setup of running) await stopSetup(setup);
    await echoes.stop();
    process.stderr.write(
      `bench: echo (${names.join(", ")}) done in ${((performance.now() - began) / 1000).toFixed(1)} s\n`,
    );
  }
}

/** Swaps each setup that shares another's gateway with that one in `turn`. */
function swapSharers(turn: Setup[]): void {
  const pairs: Array<[number, number]> = [];
  turn.forEach((setup, i) => {
    const j = turn.findIndex((other) => other.name === setup.sharesWith);
    if (j !== -1) pairs.push([i, j]);
  });
  for (const [i, j] of pairs) [turn[i], turn[j]] = [turn[j] as Setup, turn[i] as Setup];
}

/** 10% of calls fail transiently and upstream `a` flaps (1.5 s up, 0.5 s of HTTP 503). */
async function faultWorkload(): Promise<void> {
  if (!selected("faults")) return;
  const fault = windowArgs({
    tool: "flaky",
    concurrency: [16],
    reps: PLAN.reps,
    windowMs: PLAN.faultWindowMs,
    warmupMs: 0,
    extra: ["--think-ms", "10"],
  });
  let a: Awaited<ReturnType<typeof startEcho>> | undefined;
  let b: Awaited<ReturnType<typeof startEcho>> | undefined;
  try {
    a = await startEcho("upstream-a (flapping)", [
      "--fail-rate",
      "0.1",
      "--flap-up-ms",
      "1500",
      "--flap-down-ms",
      "500",
    ]);
    b = await startEcho("upstream-b", ["--fail-rate", "0.1"]);
    const upA: Upstream = { kind: "http", url: a.url };
    const upB: Upstream = { kind: "http", url: b.url };
    const direct: Setup = {
      name: "faults: direct to a",
      target: { url: a.url },
      watch: [],
      procs: [],
      prefix: "",
    };
    faultRows.push(...(await runLoad<WindowResult>(direct, fault.args, fault.expectMs)));
    for (const resilient of [false, true]) {
      const name = resilient ? "faults: toolgate retry+breaker+fallback" : "faults: toolgate, policies off";
      const tg = await startToolgate(
        resilient ? "faults-resilient" : "faults-plain",
        faultConfig(upA, upB, resilient),
      );
      try {
        const setup: Setup = {
          name,
          target: { url: tg.url },
          watch: [`gateway:${tg.proc.pid}`],
          procs: [],
          prefix: "a__",
        };
        const args = fault.args.map((x) => (x === "flaky" ? "a__flaky" : x));
        faultRows.push(...(await runLoad<WindowResult>(setup, args, fault.expectMs)));
      } finally {
        await stop(tg.proc);
      }
    }
  } catch (error) {
    failures.push(`faults: ${(error as Error).message}`);
  } finally {
    if (a) await stop(a.proc);
    if (b) await stop(b.proc);
  }
}

/** Many concurrent sessions, each calling now and then: memory per session and latency. */
async function sessionsWorkload(): Promise<void> {
  for (const name of PLAN.sessionSetups) {
    await withSetup("sessions", name, async (setup) => {
      const warm = windowArgs({
        tool: `${setup.prefix}echo`,
        concurrency: [1],
        reps: 1,
        windowMs: 300,
        warmupMs: 100,
      });
      await runLoad(setup, warm.args, warm.expectMs);
      const args = [
        "--tool",
        `${setup.prefix}echo`,
        "--sessions",
        String(SESSIONS),
        "--call-interval-ms",
        "1000",
        "--duration-ms",
        String(PLAN.sessionCallMs),
      ];
      sessionRows.push(...(await runLoad<SessionsResult>(setup, args, SESSIONS * 20 + PLAN.sessionCallMs)));
    });
  }
}

/** Telemetry on (traces to a local OTLP sink that discards) vs off, same workload. */
async function telemetryWorkload(): Promise<void> {
  if (!selected("telemetry")) return;
  const sink = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
  });
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
  const address = sink.address();
  const sinkUrl =
    typeof address === "object" && address ? `http://127.0.0.1:${address.port}/v1/traces` : undefined;
  try {
    for (const mode of ["off", "on"] as const) {
      await withSetup(
        "telemetry",
        "toolgate-http",
        async (setup) => {
          const w = windowArgs({
            tool: "echo__echo",
            concurrency: values.quick ? [16] : [1, 16],
            reps: PLAN.reps,
            windowMs: PLAN.windowMs,
            warmupMs: PLAN.warmupMs,
          });
          const rows = await runLoad<WindowResult>(setup, w.args, w.expectMs);
          telemetryRows.push(...rows.map((r) => ({ ...r, setup: `telemetry ${mode}` })));
        },
        { mode, sinkUrl },
      );
    }
  } finally {
    sink.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

interface Target {
  target: string;
  measured: string;
  verdict: "PASS" | "MISS" | "n/a";
}

function verdict(ok: boolean | undefined): Target["verdict"] {
  return ok === undefined ? "n/a" : ok ? "PASS" : "MISS";
}

/**
 * `metric` of setup `a` over setup `b`, window by window: the side-by-side systems are measured in turn, so
 * the windows of one rep are adjacent and share whatever the host was doing then. Their spread is how far
 * this host's noise moves a ratio of medians.
 */
function windowRatios(
  a: string,
  b: string,
  payload: number,
  concurrency: number,
  metric: (window: WindowResult) => number,
): number[] {
  const of = (setup: string) =>
    windows.filter(
      (w) =>
        w.setup === setup &&
        w.tool.endsWith("echo") &&
        w.payload === payload &&
        w.concurrency === concurrency,
    );
  const others = of(b);
  return of(a)
    .map((w) => {
      const other = others.find((o) => o.rep === w.rep);
      return other ? ratio(metric(w), metric(other)) : Number.NaN;
    })
    .filter(Number.isFinite);
}

/** ` [p25–p75]` of window ratios, the middle half; nothing with fewer than two. */
function middleHalf(ratios: number[]): string {
  return ratios.length < 2 ? "" : ` [${fmt(quantile(ratios, 0.25))}–${fmt(quantile(ratios, 0.75))}]`;
}

/** Points of CPU 0 steal (median over windows) between two compared systems beyond which a ratio is flagged. */
const UNEVEN_STEAL_POINTS = 5;

/** toolgate ÷ Go proxy cells whose two systems lost unequal shares of CPU 0 to the hypervisor. */
function unevenSteal(find: (setup: string, tool: string, payload: number, c: number) => Summary | undefined) {
  const lines: string[] = [];
  for (const path of ["http", "stdio"]) {
    for (const payload of PLAN.payloads) {
      for (const c of PLAN.concurrency) {
        const tg = find(`toolgate-${path}`, "echo", payload, c)?.steal[0]?.median;
        const go = find(`go-proxy-${path}`, "echo", payload, c)?.steal[0]?.median;
        if (tg === undefined || go === undefined || !(Math.abs(tg - go) > UNEVEN_STEAL_POINTS)) continue;
        lines.push(
          `${path} ${payload} B c=${c}: ${fmt(tg, 1)} % of toolgate's windows, ${fmt(go, 1)} % of the Go proxy's; that cell compares a ${tg > go ? "slower" : "faster"} machine for toolgate with a ${tg > go ? "faster" : "slower"} one for the Go proxy.`,
        );
      }
    }
  }
  return lines;
}

function report(): { text: string; targets: Target[]; summary: Summary[] } {
  const summary = summarize(windows);
  const find = (setup: string, tool: string, payload: number, c: number) =>
    summary.find(
      (s) => s.setup === setup && s.tool.endsWith(tool) && s.payload === payload && s.concurrency === c,
    );
  const out: string[] = [];

  const cpuModel = cpus()[0]?.model ?? "unknown CPU";
  out.push(
    `toolgate bench — ${new Date().toISOString()} — node ${process.version}`,
    `Machine: ${CORES} cores (${cpuModel}). The load generator runs on this same machine and competes with the servers:`,
    PIN
      ? LAYOUT === "split"
        ? "  layout split (taskset): every proxy (toolgate, Go proxy, supergateway, mcp-proxy) on CPU 0; the upstream and the load generator on CPU 1."
        : "  layout shared (taskset): every proxy and the upstream on CPU 0; the load generator on CPU 1."
      : "  not pinned (taskset missing, fewer than 2 cores, or --no-pin).",
    "  upstream-echo over HTTP answers in SSE (the SDK's default) unless the setup ends in -json (plain JSON answers); the HTTP setups measured side by side share one upstream process per answer kind, each on its own session.",
    CLIENT === "wire"
      ? "  load generator's client: bench/lib/wire-client.ts (JSON-RPC posted straight onto the wire, as wrk would; --client sdk for the SDK clients); idle sessions: the SDK client."
      : "  load generator's client: the official SDK clients (v1; v2 for 2026-07-28).",
    "  goproxy: bench/go-proxy, plain forwarding on github.com/mark3labs/mcp-go (the library TBXark/mcp-proxy uses).",
    ...("note" in GO_PROXY ? [`  ${GO_PROXY.note}`] : []),
    `Absolute numbers describe this machine only; comparisons are ratios of medians from this run (${PLAN.reps} × ${PLAN.windowMs} ms windows after ${PLAN.warmupMs} ms warm-up; each system first runs ${PLAN.steadyMs} ms of load at concurrency 16, unmeasured, to reach steady state; the echo systems other than supergateway and mcp-proxy run side by side, driven by one load generator kept running (each system its own sessions), and are measured window by window in turn, so their ratios compare adjacent windows; their first round gets ${FIRST_ROUND_EXTRA_WARMUP_MS} ms more warm-up after the idle of the others' steady state).`,
    "CPU = the scheduler's runtime of every thread (/proc/PID/task/*/sched, to the µs) per call; RSS = VmRSS at window end; peak = VmHWM. supergateway runs one upstream process per session.",
    "[a–b] after a ratio (targets) = the middle half of that ratio taken window by window, between the adjacent windows of each rep: how far this host's noise moves it.",
    "CPU0 wake-ups/call = function-call interrupts taken by CPU 0 (/proc/interrupts CAL, the whole machine's) per call: how often a message found a process on CPU 0 asleep; the process that sent it pays for the wake-up (npm run bench:wake measures what).",
    "steal % = the share of each CPU's time the hypervisor gave to other guests during the windows (/proc/stat), median (worst window): processes ready to run that could not; a system whose windows lost more than another's was measured on a slower machine.",
  );

  const echoRows = summary.filter((s) => s.tool.endsWith("echo"));
  out.push(
    table(
      "Echo, closed loop",
      [
        "setup",
        "payload",
        "conc",
        "calls/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "gw CPU µs/call",
        "up CPU µs/call",
        "CPU0 wake-ups/call",
        "steal % CPU0",
        "steal % CPU1",
        "gw RSS MB",
        "gw peak MB",
        "up RSS MB",
        "load CPU %",
        "errors",
      ],
      echoRows.map((s) => [
        s.setup,
        s.payload,
        s.concurrency,
        s.callsPerSec,
        s.p50Ms,
        s.p95Ms,
        s.p99Ms,
        fmt(s.gatewayCpuUs, 0),
        fmt(s.upstreamCpuUs, 0),
        fmt(s.proxyWakeUps),
        ...s.steal.map((cpu) =>
          Number.isFinite(cpu.median) ? `${fmt(cpu.median, 1)} (${fmt(cpu.worst, 1)})` : "-",
        ),
        s.gatewayRssMb ? fmt(s.gatewayRssMb, 0) : "-",
        s.gatewayPeakMb ? fmt(s.gatewayPeakMb, 0) : "-",
        fmt(s.upstreamRssMb, 0),
        fmt(s.loadCpuPct, 0),
        s.errors,
      ]),
    ),
  );

  const ratioRows: Cell[][] = [];
  for (const payload of PLAN.payloads) {
    for (const c of PLAN.concurrency) {
      const get = (setup: string) => find(setup, "echo", payload, c);
      const tgHttp = get("toolgate-http");
      const tgStdio = get("toolgate-stdio");
      const goHttp = get("go-proxy-http");
      const goStdio = get("go-proxy-stdio");
      const directHttp = get("direct-http");
      ratioRows.push([
        payload,
        c,
        fmt(ratio(tgHttp?.callsPerSec, directHttp?.callsPerSec)),
        fmt((tgHttp?.p50Ms ?? Number.NaN) - (directHttp?.p50Ms ?? Number.NaN), 3),
        fmt(ratio(get("toolgate-http-json")?.callsPerSec, get("direct-http-json")?.callsPerSec)),
        fmt(ratio(tgHttp?.callsPerSec, goHttp?.callsPerSec)),
        fmt(ratio(tgHttp?.gatewayCpuUs, goHttp?.gatewayCpuUs)),
        fmt(ratio(tgStdio?.callsPerSec, goStdio?.callsPerSec)),
        fmt(ratio(tgStdio?.gatewayCpuUs, goStdio?.gatewayCpuUs)),
        fmt(ratio(tgHttp?.upstreamCpuUs, directHttp?.upstreamCpuUs)),
        fmt(ratio(goHttp?.upstreamCpuUs, directHttp?.upstreamCpuUs)),
        fmt(ratio(tgStdio?.callsPerSec, get("direct-stdio")?.callsPerSec)),
        fmt(ratio(tgStdio?.callsPerSec, get("supergateway")?.callsPerSec)),
        fmt(ratio(tgStdio?.callsPerSec, get("mcp-proxy")?.callsPerSec)),
        fmt(ratio(tgHttp?.gatewayCpuUs, tgHttp?.upstreamCpuUs)),
        fmt(ratio(tgStdio?.gatewayCpuUs, tgStdio?.upstreamCpuUs)),
        fmt(ratio(tgHttp?.gatewayCpuUs, get("toolgate-http-off")?.gatewayCpuUs)),
        fmt(ratio(tgStdio?.gatewayCpuUs, get("toolgate-stdio-off")?.gatewayCpuUs)),
      ]);
    }
  }
  out.push(
    table(
      "Ratios (same run; throughput ratios > 1 favour toolgate)",
      [
        "payload",
        "conc",
        "tg/direct http calls/s",
        "tg−direct http p50 ms",
        "tg/direct json-http calls/s",
        "tg/go http calls/s",
        "tg/go http CPU/call",
        "tg/go stdio calls/s",
        "tg/go stdio CPU/call",
        "upstream CPU/call via tg ÷ direct",
        "upstream CPU/call via go ÷ direct",
        "tg/direct stdio calls/s",
        "tg-stdio/supergateway",
        "tg-stdio/mcp-proxy",
        "gw/up CPU (http)",
        "gw/up CPU (stdio)",
        "on/off CPU (http)",
        "on/off CPU (stdio)",
      ],
      ratioRows,
    ),
  );

  const slowRows = summary.filter((s) => s.tool.endsWith("slow"));
  out.push(
    table(
      `Slow tool (${SLOW_MS} ms): no serialization means calls/s ≈ concurrency / ${SLOW_MS} ms and p50 ≈ ${SLOW_MS} ms`,
      ["setup", "conc", "calls/s", "ideal calls/s", "p50 ms", "p99 ms", "RSS MB per rep", "errors"],
      slowRows.map((s) => [
        s.setup,
        s.concurrency,
        s.callsPerSec,
        (s.concurrency * 1000) / SLOW_MS,
        s.p50Ms,
        s.p99Ms,
        s.rssPerRepMb.join(" → "),
        s.errors,
      ]),
    ),
  );

  const faults = summarize(faultRows);
  out.push(
    table(
      "Faults: 10% transient failures, upstream a flaps (1.5 s up / 0.5 s HTTP 503); 16 workers, 10 ms think time",
      ["setup", "calls", "success %", "p50 ms", "p99 ms", "first error"],
      faults.map((s) => [
        s.setup,
        s.calls,
        fmt((100 * (s.calls - s.errors)) / Math.max(1, s.calls), 1),
        s.p50Ms,
        s.p99Ms,
        (s.errorSample ?? "").slice(0, 60),
      ]),
    ),
  );

  const perSessionKb = (r: SessionsResult) => {
    const role = r.idle.gateway ? "gateway" : "upstream";
    return ((r.idle[role]?.rssKb ?? 0) - (r.before[role]?.rssKb ?? 0)) / Math.max(1, r.sessions);
  };
  out.push(
    table(
      `Many sessions: ${SESSIONS} concurrent sessions, each calling about once a second`,
      [
        "setup",
        "sessions",
        "open ms",
        "RSS before MB",
        "RSS idle MB",
        "KiB/session",
        "RSS after MB",
        "calls",
        "p50 ms",
        "p99 ms",
        "errors",
      ],
      sessionRows.map((r) => {
        const role = r.idle.gateway ? "gateway" : "upstream";
        return [
          r.setup,
          r.sessions,
          r.openMs,
          fmt(mb(r.before[role]?.rssKb), 0),
          fmt(mb(r.idle[role]?.rssKb), 0),
          fmt(perSessionKb(r), 1),
          fmt(mb(r.after[role]?.rssKb), 0),
          r.calls,
          r.p50Ms,
          r.p99Ms,
          r.errors + r.openErrors,
        ];
      }),
    ),
  );

  const telemetry = summarize(telemetryRows);
  if (telemetry.length > 0) {
    out.push(
      table(
        "Telemetry on (OTLP traces to a local sink, Prometheus, process metrics, alerts) vs off",
        ["setup", "conc", "calls/s", "p50 ms", "p99 ms", "gw CPU µs/call"],
        telemetry.map((s) => [
          s.setup,
          s.concurrency,
          s.callsPerSec,
          s.p50Ms,
          s.p99Ms,
          fmt(s.gatewayCpuUs, 0),
        ]),
      ),
    );
  }

  // Targets.
  const targets: Target[] = [];
  const p50Add =
    (find("toolgate-http", "echo", 32, 1)?.p50Ms ?? Number.NaN) -
    (find("direct-http", "echo", 32, 1)?.p50Ms ?? Number.NaN);
  targets.push({
    target: "toolgate adds ≤ 0.5 ms to p50 (small call, concurrency 1, over direct HTTP)",
    measured: `+${fmt(p50Add, 3)} ms`,
    verdict: verdict(Number.isFinite(p50Add) ? p50Add <= 0.5 : undefined),
  });
  const cpuRatios = echoRows
    .filter((s) => s.setup === "toolgate-http")
    .map((s) => ratio(s.gatewayCpuUs, s.upstreamCpuUs))
    .filter(Number.isFinite);
  targets.push({
    target: "gateway CPU per proxied call ≤ 1.0× the upstream echo server's (HTTP, SSE-answering upstream)",
    measured: `median ${fmt(median(cpuRatios))}×, worst ${fmt(Math.max(...cpuRatios))}×`,
    verdict: verdict(cpuRatios.length ? Math.max(...cpuRatios) <= 1.0 : undefined),
  });
  const upstreamLoad = (proxy: string) =>
    echoRows
      .filter((s) => s.setup === proxy)
      .map((s) =>
        ratio(s.upstreamCpuUs, find("direct-http", "echo", s.payload, s.concurrency)?.upstreamCpuUs),
      )
      .filter(Number.isFinite);
  const viaToolgate = upstreamLoad("toolgate-http");
  // The direct client shares the upstream's core, a proxy does not (split layout): the Go proxy's ratio shows
  // what waking a process on the other core costs the upstream by itself.
  const viaGo = upstreamLoad("go-proxy-http");
  targets.push({
    target: "the upstream's CPU per call with toolgate in front ≤ 1.1× a direct client's (HTTP)",
    measured:
      `median ${fmt(median(viaToolgate))}×, worst ${fmt(Math.max(...viaToolgate))}×` +
      (viaGo.length ? ` (Go proxy: median ${fmt(median(viaGo))}×, worst ${fmt(Math.max(...viaGo))}×)` : ""),
    verdict: verdict(viaToolgate.length ? Math.max(...viaToolgate) <= 1.1 : undefined),
  });
  for (const path of ["http", "stdio"]) {
    const go = `go-proxy-${path}`;
    const vsGo = echoRows
      .filter((s) => s.setup === `toolgate-${path}` && s.payload === 32)
      .map((s) => {
        const peer = find(go, "echo", s.payload, s.concurrency);
        const windowsOf = (metric: (w: WindowResult) => number) =>
          windowRatios(s.setup, go, s.payload, s.concurrency, metric);
        return {
          concurrency: s.concurrency,
          tput: ratio(s.callsPerSec, peer?.callsPerSec),
          cpu: ratio(s.gatewayCpuUs, peer?.gatewayCpuUs),
          tputWindows: windowsOf((w) => w.callsPerSec),
          cpuWindows: windowsOf((w) => cpuPerCall(w, "gateway")),
        };
      })
      .filter((r) => Number.isFinite(r.tput) && Number.isFinite(r.cpu));
    targets.push({
      target: `toolgate ≥ the Go proxy's throughput and ≤ its CPU per call (${path} upstream, 32 B, every concurrency)`,
      measured: vsGo.length
        ? vsGo
            .map(
              (r) =>
                `c=${r.concurrency} ${fmt(r.tput)}×${middleHalf(r.tputWindows)} calls/s, ` +
                `${fmt(r.cpu)}×${middleHalf(r.cpuWindows)} CPU`,
            )
            .join("; ")
        : "-",
      verdict: verdict(vsGo.length ? vsGo.every((r) => r.tput >= 1 && r.cpu <= 1) : undefined),
    });
  }
  const onOff = echoRows
    .filter((s) => s.setup === "toolgate-http" || s.setup === "toolgate-stdio")
    .map((s) => ratio(s.gatewayCpuUs, find(`${s.setup}-off`, "echo", s.payload, s.concurrency)?.gatewayCpuUs))
    .filter(Number.isFinite);
  targets.push({
    target: "policies on ≤ 1.10× gateway CPU of policies off (median over echo rows)",
    measured: `median ${fmt(median(onOff))}×, worst ${fmt(Math.max(...onOff))}×`,
    verdict: verdict(onOff.length ? median(onOff) <= 1.1 : undefined),
  });
  for (const peer of ["supergateway", "mcp-proxy"]) {
    const r = echoRows
      .filter((s) => s.setup === "toolgate-stdio")
      .map((s) => ratio(s.callsPerSec, find(peer, "echo", s.payload, s.concurrency)?.callsPerSec))
      .filter(Number.isFinite);
    targets.push({
      target: `toolgate throughput ≥ ${peer} at every concurrency and payload (both over a stdio upstream)`,
      measured: `worst ${fmt(Math.min(...r))}×`,
      verdict: verdict(r.length ? Math.min(...r) >= 1 : undefined),
    });
  }
  const tgSessions = sessionRows.find((r) => r.setup === "toolgate-http");
  targets.push({
    target: "memory per idle downstream session ≤ 64 KiB",
    measured: tgSessions
      ? `${fmt(perSessionKb(tgSessions), 1)} KiB over ${tgSessions.sessions} sessions`
      : "-",
    verdict: verdict(tgSessions ? perSessionKb(tgSessions) <= 64 : undefined),
  });
  const telOn = telemetry.filter((s) => s.setup === "telemetry on");
  const telRatios = telOn
    .map((s) =>
      ratio(
        s.gatewayCpuUs,
        telemetry.find((o) => o.setup === "telemetry off" && o.concurrency === s.concurrency)?.gatewayCpuUs,
      ),
    )
    .filter(Number.isFinite);
  targets.push({
    target: "telemetry overhead (gateway CPU per call, on/off; informational)",
    measured: telRatios.length ? `${telRatios.map((r) => `${fmt(r)}×`).join(", ")}` : "-",
    verdict: "n/a",
  });
  // 2026-07-28 clients (stateless, per-request _meta) against 2025-11-25 sessions, same gateway config.
  const eraRows = echoRows
    .filter((s) => s.setup === "toolgate-http-2026")
    .map((s) => ({
      cpu: ratio(s.gatewayCpuUs, find("toolgate-http", "echo", s.payload, s.concurrency)?.gatewayCpuUs),
      windows: windowRatios(s.setup, "toolgate-http", s.payload, s.concurrency, (w) =>
        cpuPerCall(w, "gateway"),
      ),
    }))
    .filter((r) => Number.isFinite(r.cpu));
  const eraRatios = eraRows.map((r) => r.cpu);
  const worstEra = eraRows.reduce<(typeof eraRows)[number] | undefined>(
    (worst, r) => (worst && worst.cpu >= r.cpu ? worst : r),
    undefined,
  );
  targets.push({
    target: "2026-07-28 calls ≤ 1.0× gateway CPU of 2025-11-25 session calls (every echo row)",
    measured: worstEra
      ? `median ${fmt(median(eraRatios))}×, worst ${fmt(worstEra.cpu)}×${middleHalf(worstEra.windows)}`
      : "-",
    verdict: verdict(worstEra ? worstEra.cpu <= 1 : undefined),
  });
  out.push(
    table(
      "Targets (reported, never enforced)",
      ["target", "measured", "verdict"],
      targets.map((t) => [t.target, t.measured, t.verdict]),
    ),
  );
  const uneven = unevenSteal(find);
  if (uneven.length)
    out.push(
      `\nUneven steal (the hypervisor took CPU 0 from one system's windows more than from the other's):\n  ${uneven.join("\n  ")}`,
    );
  if (failures.length) out.push(`\nFailures:\n  ${failures.join("\n  ")}`);
  return { text: out.join("\n"), targets, summary };
}

installCleanup();
const began = performance.now();
try {
  await echoWorkloads();
  await faultWorkload();
  await sessionsWorkload();
  await telemetryWorkload();
} finally {
  await stopAll();
  configs.remove();
}
const { text, targets, summary } = report();
process.stdout.write(
  `${text}${profileReport()}\n\nTotal ${((performance.now() - began) / 1000).toFixed(0)} s.\n`,
);
const jsonPath = values.json ? resolve(values.json) : join(ROOT, "bench/results/latest.json");
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(
  jsonPath,
  `${JSON.stringify(
    {
      meta: {
        date: new Date().toISOString(),
        node: process.version,
        cores: CORES,
        cpu: cpus()[0]?.model,
        pinned: PIN,
        layout: PIN ? LAYOUT : "unpinned",
        client: CLIENT,
        goProxy: "note" in GO_PROXY ? GO_PROXY.note : "built",
        plan: PLAN,
        sessions: SESSIONS,
      },
      targets,
      summary,
      faults: summarize(faultRows),
      sessions: sessionRows,
      telemetry: summarize(telemetryRows),
      failures,
      windows: [...windows, ...faultRows, ...telemetryRows],
    },
    null,
    2,
  )}\n`,
);
process.stdout.write(`Wrote ${jsonPath}\n`);
process.exitCode = failures.length ? 1 : 0;
