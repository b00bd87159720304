/**
 * What telemetry reads from the running gateway: upstreams, the catalog and the breakers. The composition
 * root implements it (telemetry never imports upstreams or policies); alerts and the status page use it.
 */

/** Shaped like the upstreams' own `UpstreamStatus`, so the registry's statuses pass as they are. */
export interface UpstreamView {
  name: string;
  /** `connecting`, `ready`, `down` or `stopped`; only `ready` takes calls. */
  state: string;
  /** `stdio`, `http`, `sse`, `ws`, … */
  transport?: string;
  lastError?: string;
  /** Reconnections after a successful connection (process restarts included). */
  restarts: number;
  connectedAt?: string;
  nextRetryAt?: string;
  /** Number of tools it serves. */
  tools?: number;
  /** Tools held back by pinning (changed definitions, or pins that cannot be read) and why. */
  toolsHeld?: { count: number; reason: string };
}

/** An upstream that takes calls. */
export function isUp(upstream: Pick<UpstreamView, "state">): boolean {
  return upstream.state === "ready";
}

/** An upstream that should take calls and does not (`stopped` is on purpose). */
export function isDown(upstream: Pick<UpstreamView, "state">): boolean {
  return upstream.state !== "ready" && upstream.state !== "stopped";
}

export interface ToolView {
  /** Public name, as clients call it. */
  name: string;
  upstream: string;
  description?: string;
  /** Capacity of the tool's queue, for the queue-saturation alert. */
  queueSize?: number;
}

/** The policies' names (src/policies/events.ts). */
export type BreakerState = "closed" | "open" | "halfOpen";

/** Shaped like the policies' `BreakerStatus`, so the breaker registry's states pass as they are. */
export interface BreakerView {
  id: string;
  state: BreakerState;
  /** ISO time of the next half-open trial call while open. */
  nextAttemptAt?: string;
}

export interface GatewayView {
  upstreams(): UpstreamView[];
  tools(): ToolView[];
  breakers(): BreakerView[];
}
