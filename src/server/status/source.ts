/**
 * What the status page shows, and its JSON form (`GET /status`): the gateway's view (upstreams, catalog,
 * breakers) joined with the per-tool rolling stats and the alerts that telemetry keeps.
 */
import type { Alert } from "../../telemetry/alerts.ts";
import type { ToolStatsSnapshot } from "../../telemetry/stats.ts";
import type { Telemetry } from "../../telemetry/telemetry.ts";
import type { BreakerView, GatewayView, ToolView, UpstreamView } from "../../telemetry/view.ts";

export interface StatusSource extends GatewayView {
  toolStats(): ToolStatsSnapshot[];
  activeAlerts(): Alert[];
  recentAlerts(): Alert[];
  /** Shown in the page header. */
  service?: { name: string; version?: string };
  /** Length of the window the tool numbers cover. */
  statsWindowMs?: number;
}

/** A StatusSource from the running gateway's view and its telemetry. */
export function statusSource(
  view: GatewayView,
  telemetry: Pick<Telemetry, "stats" | "alerts">,
  service?: StatusSource["service"],
): StatusSource {
  return {
    upstreams: () => view.upstreams(),
    tools: () => view.tools(),
    breakers: () => view.breakers(),
    toolStats: () => telemetry.stats.snapshot(),
    activeAlerts: () => telemetry.alerts.active(),
    recentAlerts: () => telemetry.alerts.recent(),
    statsWindowMs: telemetry.stats.windowMs,
    ...(service && { service }),
  };
}

export interface ToolStatus extends ToolView, Omit<ToolStatsSnapshot, "tool" | "upstream"> {}

export interface StatusReport {
  service: { name: string; version?: string };
  generatedAt: string;
  /** Length of the window the tool numbers cover. */
  statsWindowMs?: number;
  upstreams: UpstreamView[];
  tools: ToolStatus[];
  breakers: BreakerView[];
  alerts: { active: Alert[]; recent: Alert[] };
}

const NO_STATS: Omit<ToolStatsSnapshot, "tool" | "upstream"> = {
  calls: 0,
  errors: 0,
  toolErrors: 0,
  errorRate: 0,
  p50Ms: null,
  p95Ms: null,
  p99Ms: null,
  inFlight: 0,
  queued: 0,
};

/** Every catalog tool with its numbers (zeros when it has not been called in the window). */
export function statusReport(source: StatusSource, now = new Date()): StatusReport {
  const stats = new Map(source.toolStats().map((s) => [s.tool, s]));
  const tools = source.tools().map((tool): ToolStatus => {
    const {
      tool: _,
      upstream: __,
      ...numbers
    } = stats.get(tool.name) ?? { tool: "", upstream: "", ...NO_STATS };
    return { ...tool, ...numbers };
  });
  return {
    service: source.service ?? { name: "toolgate" },
    generatedAt: now.toISOString(),
    ...(source.statsWindowMs !== undefined && { statsWindowMs: source.statsWindowMs }),
    upstreams: source.upstreams(),
    tools,
    // Only the view's fields: the policies' statuses carry internal counters too.
    breakers: source.breakers().map(({ id, state, nextAttemptAt }) => ({
      id,
      state,
      ...(nextAttemptAt !== undefined && { nextAttemptAt }),
    })),
    alerts: { active: source.activeAlerts(), recent: source.recentAlerts() },
  };
}
