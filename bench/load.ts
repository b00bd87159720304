/**
 * Closed-loop load generator, run as its own process so it can be pinned to its own core.
 *
 *   node bench/load.ts --url URL | --stdio '["cmd","arg"]'
 *     --tool echo --payload 32,65536 --concurrency 1,16 --clients 16 --duration-ms 1000 --reps 3
 *     [--warmup-ms 300] [--slow-ms 50] [--think-ms 0] [--watch role:pid[:children]]...
 *     [--era modern]   (stateless 2026-07-28 requests, no session)
 *     [--client sdk|wire]   (the official SDK clients, v1 and v2 by era, or bench/lib/wire-client.ts)
 *   node bench/load.ts --url URL --sessions 1000 --call-interval-ms 1000 --duration-ms 3000 [--watch ...]
 *   node bench/load.ts [--url URL --tool echo__echo [--watch ...]] --serve --concurrency 16
 *     (windows on request: one JSON line per window on stdin, {"payload":32,"concurrency":1,"warmupMs":1000,
 *     "windowMs":1000[,"target":"NAME"]}, one result line each on stdout; windowMs 0 only warms up; more
 *     targets by {"connect":{"name":"NAME","url":URL | "stdio":[...],"tool":...,"era":...,"watch":[...]}})
 *
 * Prints one JSON line per measured window (or one for the sessions run). `--serve` keeps its clients
 * connected and its own JIT warm from window to window, so a window measures the system, not a load generator
 * that started a second ago and is still compiling on the upstream's core; given several targets it drives
 * them in turn from one process, so no system gets a luckier load generator than another. Each window runs
 * `concurrency` workers spread over min(concurrency, clients) clients; each worker calls, waits for
 * the answer (plus --think-ms), and calls again. `--watch` samples /proc CPU and memory of a process
 * (`self` = this process) or of its descendants at the window's edges; every window also records the
 * function-call interrupts each CPU took (`wakeUps`, from /proc/interrupts where it has them) and each CPU's
 * share of time stolen by the hypervisor (`steal`, 0–1, from /proc/stat).
 * `--tool` is the public name (`echo__echo` through toolgate); its last `__` part picks the arguments.
 */
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { benchCli } from "./lib/cli.ts";
import { exitWhenOrphaned } from "./lib/orphan.ts";
import {
  cpuTimes,
  descendants,
  type ProcSample,
  sample,
  stealShares,
  wakeUpInterrupts,
} from "./lib/proc-stats.ts";
import { type BenchClient, connectWire } from "./lib/wire-client.ts";

const cli = benchCli(import.meta.url, {
  url: { type: "string" },
  stdio: { type: "string" },
  tool: { type: "string", default: "echo" },
  payload: { type: "string", default: "32" },
  concurrency: { type: "string", default: "1" },
  clients: { type: "string", default: "16" },
  "duration-ms": { type: "string", default: "1000" },
  "warmup-ms": { type: "string", default: "300" },
  reps: { type: "string", default: "1" },
  "slow-ms": { type: "string", default: "50" },
  "think-ms": { type: "string", default: "0" },
  "timeout-ms": { type: "string", default: "30000" },
  sessions: { type: "string" },
  "call-interval-ms": { type: "string", default: "1000" },
  watch: { type: "string", multiple: true, default: [] },
  era: { type: "string", default: "legacy" },
  client: { type: "string", default: "sdk" },
  serve: { type: "boolean", default: false },
});
const { values } = cli;

const payloads = cli.wholeList("payload", 0);
const concurrencies = cli.wholeList("concurrency");
const durationMs = cli.whole("duration-ms");
const warmupMs = cli.whole("warmup-ms", 0);
const timeoutMs = cli.whole("timeout-ms");
const thinkMs = cli.whole("think-ms", 0);
const slowMs = cli.whole("slow-ms", 0);
const clientCount = cli.whole("clients");
const reps = cli.whole("reps");
const sessions = cli.whole("sessions");
const callIntervalMs = cli.whole("call-interval-ms");
const era = cli.choice("era", ["legacy", "modern"]);
const clientKind = cli.choice("client", ["sdk", "wire"]);

interface Watch {
  role: string;
  pid: number;
  children: boolean;
}

/** One system the clients call, its tool, and the processes to sample around its windows. */
interface Target {
  /** Names the target in `--serve` request lines. */
  name: string;
  /** A Streamable HTTP endpoint, or a stdio server each client starts. */
  endpoint: { url: URL } | { argv: string[] };
  era: "legacy" | "modern";
  /** Which client drives it: the official SDK's, or the lean wire client. */
  client: "sdk" | "wire";
  /** The public name (`echo__echo` through toolgate); its last `__` part picks the arguments. */
  tool: string;
  watches: Watch[];
}

/** What a target is given as: the command line's flags, or a `--serve` "connect" line's JSON. */
interface TargetSpec {
  name: string;
  url?: string | undefined;
  stdio?: string[] | undefined;
  tool?: string | undefined;
  era?: string | undefined;
  client?: string | undefined;
  watch?: string[] | undefined;
}

/** A checked target; `fail` is told the first mistake in words. */
function targetOf(spec: TargetSpec, fail: (message: string) => never): Target {
  const watches = (spec.watch ?? []).map((w) => watchOf(w, fail));
  const targetEra = spec.era ?? "legacy";
  if (targetEra !== "legacy" && targetEra !== "modern") fail(`era is legacy or modern, not "${targetEra}"`);
  const kind = spec.client ?? "sdk";
  if (kind !== "sdk" && kind !== "wire") fail(`client is sdk or wire, not "${kind}"`);
  let endpoint: Target["endpoint"];
  if (spec.stdio !== undefined) {
    const argv = spec.stdio;
    const ok = Array.isArray(argv) && argv.length > 0 && argv.every((part) => typeof part === "string");
    endpoint = ok ? { argv } : fail(`--stdio is a JSON array of strings, not ${JSON.stringify(argv)}`);
  } else if (spec.url !== undefined) {
    endpoint = URL.canParse(spec.url)
      ? { url: new URL(spec.url) }
      : fail(`--url is a URL, not "${spec.url}"`);
  } else {
    return fail('pass --url URL or --stdio \'["cmd","arg"]\'');
  }
  if (targetEra === "modern" && !("url" in endpoint)) fail("--era modern needs --url");
  return { name: spec.name, endpoint, era: targetEra, client: kind, tool: spec.tool ?? "echo", watches };
}

function watchOf(spec: string, fail: (message: string) => never): Watch {
  const [role = "", pid = "", scope] = spec.split(":");
  const id = pid === "self" ? process.pid : Number(pid);
  if (!(role && Number.isInteger(id) && id > 0 && (scope === undefined || scope === "children"))) {
    fail(`--watch is role:PID[:children] (PID a process id or "self"), not "${spec}"`);
  }
  return { role, pid: id, children: scope === "children" };
}

/** The command line's target; `--serve` may start without one and be given its targets on stdin. */
const cliTarget: Target | undefined =
  values.serve && values.url === undefined && values.stdio === undefined
    ? undefined
    : targetOf(
        {
          name: "default",
          url: values.url,
          stdio: values.stdio === undefined ? undefined : argvOf(values.stdio),
          tool: values.tool,
          era,
          client: clientKind,
          watch: values.watch,
        },
        cli.fail,
      );

if (values.serve && sessions !== undefined) cli.fail("--sessions and --serve are separate runs");
if (!cliTarget && values.watch.length > 0) {
  cli.fail("--watch belongs to a target: pass --url or --stdio, or a watch list in each connect line");
}

function argvOf(json: string): string[] {
  try {
    return JSON.parse(json) as string[];
  } catch {
    return cli.fail(`--stdio is a JSON array of strings, not ${json}`);
  }
}

function sampleWatches(watches: Watch[]): Record<string, ProcSample> {
  return Object.fromEntries(
    watches.map((w) => [w.role, sample(w.children ? descendants(w.pid) : [w.pid])] as const),
  );
}

function delta(before: Record<string, ProcSample>, after: Record<string, ProcSample>) {
  return Object.fromEntries(
    Object.entries(after).map(([role, a]) => [role, { ...a, cpuMs: a.cpuMs - (before[role]?.cpuMs ?? 0) }]),
  );
}

/** One client of the target's kind, connected (over HTTP a session, or for 2026-07-28 nothing to open). */
async function connect(target: Target): Promise<BenchClient> {
  const { endpoint } = target;
  // A flapping upstream (fault workload) may refuse the handshake for a moment: retry, bounded.
  for (let attempt = 1; ; attempt++) {
    try {
      if (target.client === "wire") return await connectWire(endpoint, target.era);
      if ("argv" in endpoint) return await connectSdkStdio(endpoint.argv);
      return target.era === "modern" ? await connectModern(endpoint.url) : await connectSdkHttp(endpoint.url);
    } catch (err) {
      if (attempt >= 50 || "argv" in endpoint) throw err;
      await sleep(100);
    }
  }
}

async function connectSdkStdio(argv: string[]): Promise<BenchClient> {
  const [command = "", ...args] = argv;
  const client = new Client({ name: "toolgate-bench", version: "1.0.0" }, { capabilities: {} });
  await client.connect(new StdioClientTransport({ command, args, stderr: "inherit" }));
  return sdkClient(client, () => client.close());
}

async function connectSdkHttp(url: URL): Promise<BenchClient> {
  const client = new Client({ name: "toolgate-bench", version: "1.0.0" }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(url);
  await client.connect(transport);
  return sdkClient(client, async () => {
    await transport.terminateSession().catch(() => {});
    await client.close();
  });
}

/** A 2026-07-28 client of the SDK v2, pinned to that revision. */
async function connectModern(url: URL): Promise<BenchClient> {
  const client = new ModernClient(
    { name: "toolgate-bench", version: "1.0.0" },
    { versionNegotiation: { mode: { pin: "2026-07-28" } } },
  );
  await client.connect(new ModernTransport(url));
  return {
    listTools: () => client.listTools(),
    callTool: (name, args, timeout) => client.callTool({ name, arguments: args }, { timeout }),
    close: () => client.close(),
  };
}

function sdkClient(client: Client, close: () => Promise<void>): BenchClient {
  return {
    listTools: () => client.listTools(),
    callTool: (name, args, timeout) => client.callTool({ name, arguments: args }, undefined, { timeout }),
    close,
  };
}

async function closeClient(client: BenchClient): Promise<void> {
  await client.close().catch(() => {});
}

/** A gateway may listen before its upstreams are connected: wait until the tool is listed. */
async function waitForTool(client: BenchClient, toolName: string, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let seen: string[] = [];
  while (performance.now() < deadline) {
    seen = (await client.listTools().catch(() => ({ tools: [] }))).tools.map((t) => t.name);
    if (seen.includes(toolName)) return;
    await sleep(100);
  }
  throw new Error(
    `load: tool ${toolName} not listed after ${timeoutMs} ms (tools: ${seen.join(", ") || "none"})`,
  );
}

function argumentsFor(toolName: string, payload: number): Record<string, unknown> {
  const toolKind = toolName.split("__").at(-1);
  if (toolKind === "slow") return { ms: slowMs };
  if (toolKind === "flaky") return {};
  return { text: "x".repeat(payload) };
}

interface Tally {
  calls: number;
  errors: number;
  errorSample: string | undefined;
  latency: RecordableHistogram;
}

function newTally(): Tally {
  return { calls: 0, errors: 0, errorSample: undefined, latency: createHistogram() };
}

/** One call; a thrown error or an `isError` result counts as a failure seen by the client. */
async function timedCall(
  client: BenchClient,
  toolName: string,
  args: Record<string, unknown>,
  tally: Tally,
): Promise<void> {
  const start = process.hrtime.bigint();
  let failure: string | undefined;
  try {
    const result = await client.callTool(toolName, args, timeoutMs);
    if (result.isError === true) failure = JSON.stringify(result.content).slice(0, 200);
  } catch (error) {
    failure = String(error).slice(0, 200);
  }
  tally.latency.record(Math.max(1, Number(process.hrtime.bigint() - start)));
  tally.calls++;
  if (failure !== undefined) {
    tally.errors++;
    tally.errorSample ??= failure;
  }
}

async function closedLoop(
  clients: BenchClient[],
  toolName: string,
  concurrency: number,
  payload: number,
  ms: number,
): Promise<Tally> {
  const tally = newTally();
  const args = argumentsFor(toolName, payload);
  const end = performance.now() + ms;
  const worker = async (i: number) => {
    const client = clients[i % clients.length] as BenchClient;
    while (performance.now() < end) {
      await timedCall(client, toolName, args, tally);
      if (thinkMs > 0) await sleep(thinkMs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  return tally;
}

function summary(tally: Tally, elapsedMs: number) {
  const ms = (ns: number) => Math.round(ns / 1e3) / 1e3;
  const h = tally.latency;
  return {
    calls: tally.calls,
    errors: tally.errors,
    errorSample: tally.errorSample,
    elapsedMs: Math.round(elapsedMs),
    callsPerSec: Math.round((tally.calls * 1000) / elapsedMs),
    p50Ms: tally.calls ? ms(h.percentile(50)) : 0,
    p95Ms: tally.calls ? ms(h.percentile(95)) : 0,
    p99Ms: tally.calls ? ms(h.percentile(99)) : 0,
    maxMs: tally.calls ? ms(h.max) : 0,
  };
}

const emit = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

/** A target with the clients every window of it shares, connected once. */
interface Connected {
  target: Target;
  clients: BenchClient[];
}

/** Connects a target's clients; the tool is listed before any window runs. */
async function connectClients(target: Target): Promise<Connected> {
  // Over stdio one client is one upstream process: every worker shares it, as a real stdio host would.
  const maxClients = "argv" in target.endpoint ? 1 : Math.min(clientCount, Math.max(...concurrencies));
  const settled = await Promise.allSettled(Array.from({ length: maxClients }, () => connect(target)));
  const clients = settled.flatMap((client) => (client.status === "fulfilled" ? [client.value] : []));
  try {
    const refused = settled.find((client) => client.status === "rejected");
    if (refused) throw refused.reason;
    await waitForTool(clients[0] as BenchClient, target.tool);
  } catch (error) {
    await Promise.all(clients.map(closeClient));
    throw error;
  }
  return { target, clients };
}

/** Warm-up, then one measured window: its line on stdout. */
async function window(
  { target, clients }: Connected,
  w: { payload: number; concurrency: number; warmupMs: number; windowMs: number; rep: number },
) {
  const toolName = target.tool;
  const used = clients.slice(0, Math.min(w.concurrency, clients.length));
  if (w.warmupMs > 0) await closedLoop(used, toolName, w.concurrency, w.payload, w.warmupMs);
  if (w.windowMs <= 0) return emit({ kind: "warm", target: target.name });
  const before = sampleWatches(target.watches);
  const wakeUpsBefore = wakeUpInterrupts();
  const timesBefore = cpuTimes();
  const start = performance.now();
  const tally = await closedLoop(used, toolName, w.concurrency, w.payload, w.windowMs);
  const elapsed = performance.now() - start;
  const wakeUpsAfter = wakeUpInterrupts();
  const timesAfter = cpuTimes();
  emit({
    kind: "window",
    target: target.name,
    tool: toolName,
    payload: w.payload,
    concurrency: w.concurrency,
    clients: used.length,
    rep: w.rep,
    ...summary(tally, elapsed),
    watch: delta(before, sampleWatches(target.watches)),
    ...(wakeUpsBefore &&
      wakeUpsAfter && { wakeUps: wakeUpsAfter.map((count, cpu) => count - (wakeUpsBefore[cpu] ?? count)) }),
    ...(timesBefore && timesAfter && { steal: stealShares(timesBefore, timesAfter) }),
  });
}

async function runWindows(target: Target): Promise<void> {
  const connected = await connectClients(target);
  try {
    for (const payload of payloads) {
      for (const concurrency of concurrencies) {
        for (let rep = 0; rep < reps; rep++) {
          const warm = rep === 0 ? warmupMs : 0;
          await window(connected, { payload, concurrency, warmupMs: warm, windowMs: durationMs, rep });
        }
      }
    }
  } finally {
    await Promise.all(connected.clients.map(closeClient));
  }
}

/**
 * `--serve`: one JSON request per stdin line until stdin ends, one answer line each. `{"connect": {name, url |
 * stdio, tool, era, watch}}` adds a target (answer `ready` or `failed`); any other line is a window of the
 * target it names (`"target"`, default the command line's). One generator can so take turns over several
 * systems: every system is then driven by the same process, warm alike.
 */
async function serveWindows(): Promise<void> {
  const targets = new Map<string, Connected>();
  if (cliTarget) targets.set(cliTarget.name, await connectClients(cliTarget));
  emit({ kind: "ready" });
  const failed = (target: unknown, error: unknown) =>
    emit({ kind: "failed", target, error: error instanceof Error ? error.message : String(error) });
  try {
    for await (const line of createInterface({ input: process.stdin })) {
      if (!line.trim()) continue;
      let request: Record<string, unknown>;
      try {
        request = JSON.parse(line) as Record<string, unknown>;
      } catch {
        failed(undefined, `not a JSON line: ${line.slice(0, 80)}`);
        continue;
      }
      if (request.connect !== undefined) {
        const spec = (typeof request.connect === "object" ? (request.connect ?? {}) : {}) as TargetSpec;
        try {
          if (typeof spec.name !== "string" || !spec.name) throw new Error("a connect line needs a name");
          if (targets.has(spec.name)) throw new Error(`a target named ${spec.name} is connected already`);
          const target = targetOf(spec, (message) => {
            throw new Error(message);
          });
          targets.set(target.name, await connectClients(target));
          emit({ kind: "ready", target: target.name });
        } catch (error) {
          failed(spec.name, error);
        }
        continue;
      }
      const name = String(request.target ?? "default");
      const connected = targets.get(name);
      if (!connected) failed(name, `no target named ${name} is connected`);
      else await window(connected, { rep: 0, ...(request as object) } as Parameters<typeof window>[1]);
    }
  } finally {
    await Promise.all([...targets.values()].flatMap((t) => t.clients.map(closeClient)));
  }
}

/** Many sessions: open them all, measure memory while idle, then each calls now and then. */
async function runSessions(target: Target, count: number): Promise<void> {
  const before = sampleWatches(target.watches);
  const clients: BenchClient[] = [];
  let openErrors = 0;
  let openErrorSample: string | undefined;
  const openStart = performance.now();
  const OPEN_PARALLELISM = 32;
  for (let i = 0; i < count; i += OPEN_PARALLELISM) {
    const batch = await Promise.allSettled(
      Array.from({ length: Math.min(OPEN_PARALLELISM, count - i) }, () => connect(target)),
    );
    for (const r of batch) {
      if (r.status === "fulfilled") clients.push(r.value);
      else {
        openErrors++;
        openErrorSample ??= String(r.reason).slice(0, 200);
      }
    }
  }
  const openMs = performance.now() - openStart;
  try {
    if (clients[0] === undefined) throw new Error(`load: no session opened (${openErrorSample})`);
    await sleep(1_000); // let the servers settle after the burst of handshakes
    const idle = sampleWatches(target.watches);
    const tally = newTally();
    const args = argumentsFor(target.tool, 32);
    const end = performance.now() + durationMs;
    const session = async (client: BenchClient) => {
      await sleep(Math.random() * callIntervalMs);
      while (performance.now() < end) {
        await timedCall(client, target.tool, args, tally);
        await sleep(callIntervalMs * (0.5 + Math.random()));
      }
    };
    const start = performance.now();
    await Promise.all(clients.map(session));
    emit({
      kind: "sessions",
      sessions: clients.length,
      openErrors,
      openErrorSample,
      openMs: Math.round(openMs),
      ...summary(tally, performance.now() - start),
      before,
      idle,
      after: sampleWatches(target.watches),
    });
  } finally {
    await Promise.all(clients.map(closeClient));
  }
}

exitWhenOrphaned();
// Only --serve starts without a target.
if (values.serve) await serveWindows();
else if (sessions !== undefined) await runSessions(cliTarget as Target, sessions);
else await runWindows(cliTarget as Target);
process.exit(0);
