/**
 * In-process rolling statistics per tool, for the status page and the alert rules (Prometheus has the
 * long-term view). Memory is bounded: each tool keeps a ring of time slots, each slot a call count and a
 * log-bucketed latency sketch (≈5% relative error, DDSketch-style), allocated only when the slot is used.
 */

export type CallOutcome = "ok" | "tool_error" | "error";

export interface StatsOptions {
  /** Longest window a snapshot can cover. Default 5 minutes. */
  windowMs?: number;
  /** Number of slots the window is cut into (its time resolution). Default 10. */
  slots?: number;
  now?: () => number;
}

export interface ToolStatsSnapshot {
  tool: string;
  upstream: string;
  /** Calls finished within the window. */
  calls: number;
  /** Calls that failed (gateway or upstream failure; tool errors not included). */
  errors: number;
  /** Results with `isError: true`. */
  toolErrors: number;
  /** errors / calls, 0 without calls. */
  errorRate: number;
  /** Latency percentiles in milliseconds, `null` without calls. */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  inFlight: number;
  queued: number;
}

// Latency sketch: bucket i holds values in (MIN·γ^(i-1), MIN·γ^i]; 0.1 ms … ~1 h in 184 buckets.
const GAMMA = 1.1;
const LOG_GAMMA = Math.log(GAMMA);
const MIN_MS = 0.1;
export const BUCKETS = Math.ceil(Math.log(3_600_000 / MIN_MS) / LOG_GAMMA) + 1;

export function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LOG_GAMMA));
}

/** The value reported for a bucket: the point with equal relative error to both of its bounds. */
function bucketValue(bucket: number): number {
  if (bucket === 0) return MIN_MS;
  return (MIN_MS * 2 * GAMMA ** bucket) / (GAMMA + 1);
}

interface Slot {
  epoch: number;
  calls: number;
  errors: number;
  toolErrors: number;
  latency: Uint32Array | null;
}

interface ToolEntry {
  upstream: string;
  slots: Slot[];
  inFlight: number;
  queued: number;
}

export class RollingStats {
  readonly windowMs: number;
  private readonly slotMs: number;
  private readonly slotCount: number;
  private readonly now: () => number;
  private readonly tools = new Map<string, ToolEntry>();

  constructor(options: StatsOptions = {}) {
    this.windowMs = options.windowMs ?? 300_000;
    this.slotCount = options.slots ?? 10;
    this.slotMs = Math.max(1, Math.ceil(this.windowMs / this.slotCount));
    this.now = options.now ?? Date.now;
  }

  /** Count one finished call. */
  record(tool: string, upstream: string, outcome: CallOutcome, durationMs: number): void {
    const slot = this.currentSlot(this.entry(tool, upstream));
    slot.calls++;
    if (outcome === "error") slot.errors++;
    else if (outcome === "tool_error") slot.toolErrors++;
    slot.latency ??= new Uint32Array(BUCKETS);
    const bucket = bucketOf(durationMs);
    slot.latency[bucket] = (slot.latency[bucket] ?? 0) + 1;
  }

  /** Move the in-flight or queued gauge of a tool (never below zero); returns the new value. */
  adjust(tool: string, upstream: string, gauge: "inFlight" | "queued", delta: number): number {
    const entry = this.entry(tool, upstream);
    entry[gauge] = Math.max(0, entry[gauge] + delta);
    return entry[gauge];
  }

  /** One tool's numbers over the last `windowMs` (at most the configured window). */
  get(tool: string, windowMs = this.windowMs): ToolStatsSnapshot | undefined {
    const entry = this.tools.get(tool);
    return entry && this.summarize(tool, entry, windowMs);
  }

  /** Every tool seen so far, sorted by name. */
  snapshot(windowMs = this.windowMs): ToolStatsSnapshot[] {
    return [...this.tools.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([tool, entry]) => this.summarize(tool, entry, windowMs));
  }

  /** Forget tools that left the catalog. */
  retain(tools: ReadonlySet<string>): void {
    for (const tool of this.tools.keys()) if (!tools.has(tool)) this.tools.delete(tool);
  }

  private entry(tool: string, upstream: string): ToolEntry {
    let entry = this.tools.get(tool);
    if (!entry) {
      const slots = Array.from({ length: this.slotCount }, () => ({
        epoch: -1,
        calls: 0,
        errors: 0,
        toolErrors: 0,
        latency: null,
      }));
      entry = { upstream, slots, inFlight: 0, queued: 0 };
      this.tools.set(tool, entry);
    }
    entry.upstream = upstream;
    return entry;
  }

  private currentSlot(entry: ToolEntry): Slot {
    const epoch = Math.floor(this.now() / this.slotMs);
    const slot = entry.slots[epoch % this.slotCount];
    if (!slot) throw new Error("unreachable: the ring has slotCount slots");
    if (slot.epoch !== epoch) {
      slot.epoch = epoch;
      slot.calls = slot.errors = slot.toolErrors = 0;
      slot.latency?.fill(0);
    }
    return slot;
  }

  private summarize(tool: string, entry: ToolEntry, windowMs: number): ToolStatsSnapshot {
    const current = Math.floor(this.now() / this.slotMs);
    const span = Math.min(this.slotCount, Math.max(1, Math.ceil(windowMs / this.slotMs)));
    let calls = 0;
    let errors = 0;
    let toolErrors = 0;
    let latency: Uint32Array | null = null;
    for (const slot of entry.slots) {
      if (slot.epoch <= current - span || slot.epoch > current || slot.calls === 0) continue;
      calls += slot.calls;
      errors += slot.errors;
      toolErrors += slot.toolErrors;
      if (!slot.latency) continue;
      latency ??= new Uint32Array(BUCKETS);
      for (const [i, n] of slot.latency.entries()) if (n) latency[i] = (latency[i] ?? 0) + n;
    }
    return {
      tool,
      upstream: entry.upstream,
      calls,
      errors,
      toolErrors,
      errorRate: calls === 0 ? 0 : errors / calls,
      p50Ms: latency && quantile(latency, calls, 0.5),
      p95Ms: latency && quantile(latency, calls, 0.95),
      p99Ms: latency && quantile(latency, calls, 0.99),
      inFlight: entry.inFlight,
      queued: entry.queued,
    };
  }
}

/** Nearest-rank quantile over the sketch. */
export function quantile(latency: Uint32Array, count: number, q: number): number {
  const rank = Math.max(1, Math.ceil(q * count));
  let seen = 0;
  for (const [i, n] of latency.entries()) {
    seen += n;
    if (seen >= rank) return round(bucketValue(i));
  }
  return round(bucketValue(BUCKETS - 1));
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
