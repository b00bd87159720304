/**
 * What the status page shows, and its JSON form (`GET /status`): the gateway's view (upstreams, catalog,
 * breakers) joined with the per-tool rolling stats and the alerts that telemetry keeps.
 */
import type { Alert } from "../../telemetry/alerts.ts";
import type { History, HistorySnapshot, Totals } from "../../telemetry/history.ts";
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
  /** The last hour and the totals since start. */
  history?: Pick<History, "snapshot" | "totals" | "gatewayTotals" | "since" | "end">;
}

/** A StatusSource from the running gateway's view and its telemetry. */
export function statusSource(
  view: GatewayView,
  telemetry: Pick<Telemetry, "stats" | "alerts" | "history">,
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
    history: telemetry.history,
    ...(service && { service }),
  };
}

export interface ToolStatus extends ToolView, Omit<ToolStatsSnapshot, "tool" | "upstream"> {
  /** Since the gateway started (when the source keeps a history). */
  totals?: Totals;
}

export interface StatusReport {
  service: { name: string; version?: string };
  generatedAt: string;
  /** Length of the window the tool numbers cover. */
  statsWindowMs?: number;
  upstreams: UpstreamView[];
  tools: ToolStatus[];
  breakers: BreakerView[];
  alerts: { active: Alert[]; recent: Alert[] };
  /** The whole gateway since it started. */
  totals?: Totals & { since: string };
  /** The last hour, one point per step (only when asked for: `?history=1`, and on the stream). */
  history?: HistorySnapshot;
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
export function statusReport(
  source: StatusSource,
  now = new Date(),
  options: { history?: boolean } = {},
): StatusReport {
  const { history } = source;
  const stats = new Map(source.toolStats().map((s) => [s.tool, s]));
  const tools = source.tools().map((tool): ToolStatus => {
    const {
      tool: _,
      upstream: __,
      ...numbers
    } = stats.get(tool.name) ?? { tool: "", upstream: "", ...NO_STATS };
    return { ...tool, ...numbers, ...(history && { totals: history.totals(tool.name) }) };
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
    ...(history && {
      totals: { ...history.gatewayTotals(), since: new Date(history.since).toISOString() },
    }),
    ...(history && options.history && { history: history.snapshot() }),
  };
}
