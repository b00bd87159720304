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
  /** Tasks the gateway runs itself (tool policy `task`) that have not ended, in this process. */
  runningTasks?(): Promise<RunningTaskView[]>;
  /** Calls held for an operator's approval (their arguments stay behind `GET /approvals`). */
  heldCalls?(): HeldCallView[];
}

/** Shaped like the tasks' TaskRecord, so the task service's records pass as they are. */
interface RunningTaskView {
  taskId: string;
  tool: string;
  upstream: string;
  principalId: string;
  createdAt: string;
  status?: string;
  message?: string;
  lastUpdatedAt?: string;
}

/** A running task as the page shows it: no handle, arguments or result, only what an operator needs. */
interface TaskStatusView {
  id: string;
  tool: string;
  upstream: string;
  /** Who created it. */
  principal: string;
  /** The task status (`working`, `input_required`). */
  status: string;
  /** What it waits for, in a word or three: `queued`, `waiting for lock`, `waiting for approval`, `working`, … */
  phase: string;
  message?: string;
  createdAt: string;
  lastUpdatedAt?: string;
}

/** Shaped like the approval queue's PendingApproval, minus the arguments (only approvals.operators see those). */
interface HeldCallView {
  id: string;
  tool: string;
  upstream: string;
  principal: string;
  createdAt: string;
}

/** A StatusSource from the running gateway's view and its telemetry. */
export function statusSource(
  view: GatewayView,
  telemetry: Pick<Telemetry, "stats" | "alerts" | "history">,
  service?: StatusSource["service"],
  work?: Pick<StatusSource, "runningTasks" | "heldCalls">,
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
    ...work,
  };
}

interface ToolStatus extends ToolView, Omit<ToolStatsSnapshot, "tool" | "upstream"> {
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
  /** Tasks the gateway runs, oldest first (when the source has a task service). */
  tasks?: TaskStatusView[];
  /** Why `tasks` is missing although the source has a task service (its store failed). */
  tasksError?: string;
  /** Calls waiting for an operator, oldest first (when the source has an approval queue). */
  approvals?: HeldCallView[];
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
export async function statusReport(
  source: StatusSource,
  now = new Date(),
  options: { history?: boolean } = {},
): Promise<StatusReport> {
  // A failing task store costs the page its task list, never the rest of the report.
  const tasks = await source.runningTasks?.().catch((err: unknown) => ({
    error: `the task store did not answer: ${err instanceof Error ? err.message : String(err)}`,
  }));
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
    ...(Array.isArray(tasks) && { tasks: tasks.map(taskStatus).sort(byCreation) }),
    ...(tasks && "error" in tasks && { tasksError: tasks.error }),
    ...(source.heldCalls && {
      approvals: source
        .heldCalls()
        .map(({ id, tool, upstream, principal, createdAt }) => ({ id, tool, upstream, principal, createdAt }))
        .sort(byCreation),
    }),
  };
}

const byCreation = (a: { createdAt: string }, b: { createdAt: string }) =>
  a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0;

function taskStatus(task: RunningTaskView): TaskStatusView {
  const status = task.status ?? "working";
  return {
    id: task.taskId,
    tool: task.tool,
    upstream: task.upstream,
    principal: task.principalId,
    status,
    phase: phaseOf(status, task.message),
    ...(task.message && { message: task.message }),
    createdAt: task.createdAt,
    ...(task.lastUpdatedAt && { lastUpdatedAt: task.lastUpdatedAt }),
  };
}

/** The task service's messages start with what the call waits for (src/tasks/tasks.ts, phaseOf). */
function phaseOf(status: string, message = ""): string {
  if (message.startsWith("queued")) return "queued";
  if (message.startsWith("waiting for lock")) return "waiting for lock";
  if (message.startsWith("waiting for an operator")) return "waiting for approval";
  if (status === "input_required") return "input required";
  return status;
}
