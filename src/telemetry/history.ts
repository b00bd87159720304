/**
 * The last hour of the status page's charts, in process: per tool and for the whole gateway, one point per
 * step (30 s, 120 points) with calls, errors, p95 latency, the most calls in flight and queued, and for the
 * gateway its CPU and memory; plus totals since start. Only finished steps are kept, as plain numbers (a
 * latency sketch exists only for the step being filled), so a tool costs a few KiB. Steps close on an
 * unref'd timer and, lazily, whenever the history is touched, so a fake clock drives it in tests.
 */
import type { CallOutcome } from "./stats.ts";
import { BUCKETS, bucketOf, quantile } from "./stats.ts";

export interface HistoryOptions {
  /** Length of one point. Default 30 s. */
  stepMs?: number;
  /** Points kept. Default 120 (an hour of 30 s steps). */
  points?: number;
  now?: () => number;
  /** CPU seconds used so far and resident memory of the process; default from `process`. */
  sampleProcess?: () => { cpuSeconds: number; rssBytes: number };
}

/** One series per figure, oldest first, each `points` long (zeros before the gateway started). */
interface Trend {
  /** Calls finished in the step. */
  calls: number[];
  /** Failed calls (tool errors not included). */
  errors: number[];
  /** p95 latency of the step's calls in ms, `null` without calls. */
  p95Ms: Array<number | null>;
  /** The most calls in flight, and queued, at any moment of the step. */
  inFlight: number[];
  queued: number[];
}

export interface GatewayTrend extends Trend {
  /** CPU used in the step, in percent of one core; `null` before the first sample. */
  cpuPercent: Array<number | null>;
  /** Resident memory at the end of the step, in bytes. */
  rssBytes: Array<number | null>;
}

export interface Totals {
  calls: number;
  errors: number;
  toolErrors: number;
}

export interface HistorySnapshot {
  stepMs: number;
  /** Epoch ms at which the newest point ends. */
  end: number;
  gateway: GatewayTrend;
  tools: Record<string, Trend>;
}

interface Step {
  calls: number;
  errors: number;
  latency: Uint32Array | null;
  inFlight: number;
  queued: number;
  /** The gauges now, which the next step starts from. */
  inFlightNow: number;
  queuedNow: number;
}

interface Entry {
  trend: Trend;
  step: Step;
  totals: Totals;
}

export class History {
  readonly stepMs: number;
  readonly points: number;
  /** Epoch ms when counting began. */
  readonly since: number;
  readonly #now: () => number;
  readonly #sampleProcess: () => { cpuSeconds: number; rssBytes: number };
  readonly #tools = new Map<string, Entry>();
  readonly #gateway: Entry & { trend: GatewayTrend };
  #epoch: number;
  /** Epoch ms at which the current step ends: before it, `advance` has nothing to close (every call asks). */
  #stepEndsAt: number;
  #lastCpu: { at: number; cpuSeconds: number } | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: HistoryOptions = {}) {
    this.stepMs = options.stepMs ?? 30_000;
    this.points = options.points ?? 120;
    this.#now = options.now ?? Date.now;
    this.#sampleProcess = options.sampleProcess ?? defaultProcessSample;
    this.since = this.#now();
    this.#epoch = Math.floor(this.since / this.stepMs);
    this.#stepEndsAt = (this.#epoch + 1) * this.stepMs;
    this.#gateway = {
      ...newEntry(this.points),
      trend: {
        ...newTrend(this.points),
        cpuPercent: fill(this.points, null),
        rssBytes: fill(this.points, null),
      },
    };
    this.#lastCpu = this.#cpuSample();
  }

  /** Close steps on time even when nothing happens (unref'd: never keeps the process alive). */
  start(): void {
    this.stop();
    this.#timer = setInterval(() => this.advance(), this.stepMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  record(tool: string, outcome: CallOutcome, durationMs: number): void {
    this.advance();
    const bucket = bucketOf(durationMs);
    countCall(this.#entry(tool), outcome, bucket);
    countCall(this.#gateway, outcome, bucket);
  }

  /** A tool's in-flight or queued gauge moved by `delta` (the gateway's moves with it). */
  gauge(tool: string, gauge: "inFlight" | "queued", delta: number): void {
    this.advance();
    moveGauge(this.#entry(tool).step, gauge, delta);
    moveGauge(this.#gateway.step, gauge, delta);
  }

  /** Epoch ms at which the newest point ends: changes when a point closes. */
  get end(): number {
    this.advance();
    return this.#epoch * this.stepMs;
  }

  totals(tool: string): Totals {
    return { ...(this.#tools.get(tool)?.totals ?? { calls: 0, errors: 0, toolErrors: 0 }) };
  }

  gatewayTotals(): Totals {
    return { ...this.#gateway.totals };
  }

  snapshot(): HistorySnapshot {
    this.advance();
    const tools: Record<string, Trend> = {};
    for (const [tool, entry] of this.#tools) tools[tool] = copyTrend(entry.trend);
    const gateway = this.#gateway.trend;
    return {
      stepMs: this.stepMs,
      end: this.#epoch * this.stepMs,
      gateway: {
        ...copyTrend(gateway),
        cpuPercent: [...gateway.cpuPercent],
        rssBytes: [...gateway.rssBytes],
      },
      tools,
    };
  }

  /** Forget tools that left the catalog. */
  retain(tools: ReadonlySet<string>): void {
    for (const tool of this.#tools.keys()) if (!tools.has(tool)) this.#tools.delete(tool);
  }

  /** Close every step that has ended (several after a quiet spell, at most `points`). */
  advance(): void {
    const now = this.#now();
    if (now < this.#stepEndsAt) return;
    const epoch = Math.floor(now / this.stepMs);
    const steps = Math.min(epoch - this.#epoch, this.points + 1);
    if (steps <= 0) return;
    const cpu = this.#cpuSample();
    const last = this.#lastCpu;
    const cpuPercent =
      last && cpu.at > last.at
        ? round((100 * (cpu.cpuSeconds - last.cpuSeconds) * 1000) / (cpu.at - last.at))
        : null;
    this.#lastCpu = cpu;
    for (let i = 0; i < steps; i++) {
      for (const entry of [...this.#tools.values(), this.#gateway]) closeStep(entry);
      push(this.#gateway.trend.cpuPercent, cpuPercent);
      push(this.#gateway.trend.rssBytes, cpu.rssBytes);
    }
    this.#epoch = epoch;
    this.#stepEndsAt = (epoch + 1) * this.stepMs;
  }

  #entry(tool: string): Entry {
    let entry = this.#tools.get(tool);
    if (!entry) {
      entry = newEntry(this.points);
      this.#tools.set(tool, entry);
    }
    return entry;
  }

  #cpuSample(): { at: number; cpuSeconds: number; rssBytes: number } {
    return { at: this.#now(), ...this.#sampleProcess() };
  }
}

function countCall(entry: Entry, outcome: CallOutcome, bucket: number): void {
  const { step, totals } = entry;
  step.calls++;
  totals.calls++;
  if (outcome === "error") {
    step.errors++;
    totals.errors++;
  } else if (outcome === "tool_error") totals.toolErrors++;
  step.latency ??= new Uint32Array(BUCKETS);
  step.latency[bucket] = (step.latency[bucket] ?? 0) + 1;
}

function moveGauge(step: Entry["step"], gauge: "inFlight" | "queued", delta: number): void {
  const key = gauge === "inFlight" ? "inFlightNow" : "queuedNow";
  step[key] = Math.max(0, step[key] + delta);
  step[gauge] = Math.max(step[gauge], step[key]);
}

function closeStep(entry: Entry): void {
  const { trend, step } = entry;
  push(trend.calls, step.calls);
  push(trend.errors, step.errors);
  push(trend.p95Ms, step.latency && step.calls ? quantile(step.latency, step.calls, 0.95) : null);
  push(trend.inFlight, step.inFlight);
  push(trend.queued, step.queued);
  step.calls = step.errors = 0;
  step.latency?.fill(0);
  step.inFlight = step.inFlightNow;
  step.queued = step.queuedNow;
}

function newEntry(points: number): Entry {
  return {
    trend: newTrend(points),
    step: { calls: 0, errors: 0, latency: null, inFlight: 0, queued: 0, inFlightNow: 0, queuedNow: 0 },
    totals: { calls: 0, errors: 0, toolErrors: 0 },
  };
}

function newTrend(points: number): Trend {
  return {
    calls: fill(points, 0),
    errors: fill(points, 0),
    p95Ms: fill(points, null),
    inFlight: fill(points, 0),
    queued: fill(points, 0),
  };
}

function copyTrend(t: Trend): Trend {
  return {
    calls: [...t.calls],
    errors: [...t.errors],
    p95Ms: [...t.p95Ms],
    inFlight: [...t.inFlight],
    queued: [...t.queued],
  };
}

function fill<T>(n: number, value: T): T[] {
  return Array.from({ length: n }, () => value);
}

/** Append, dropping the oldest point (arrays of ≤ a few hundred numbers: shift is cheap). */
function push<T>(series: T[], value: T): void {
  series.push(value);
  series.shift();
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function defaultProcessSample(): { cpuSeconds: number; rssBytes: number } {
  const { user, system } = process.cpuUsage();
  return { cpuSeconds: (user + system) / 1e6, rssBytes: process.memoryUsage.rss() };
}
