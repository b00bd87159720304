/**
 * In-process alert rules, evaluated on an unref'd interval. A condition that starts to hold fires an
 * alert, one that stops holding resolves it; both go to the log, to a bounded recent list (status page)
 * and, when configured, to a webhook. Prometheus users get the same rules in config/prometheus-alerts.yml.
 */
import { type ELDHistogram, monitorEventLoopDelay } from "node:perf_hooks";
import type { AlertRules } from "../config/telemetry-schema.ts";
import type { Logger } from "./log.ts";
import type { RollingStats } from "./stats.ts";
import { type GatewayView, isDown } from "./view.ts";

export const ALERT_RULES = [
  "errorRate",
  "latency",
  "breakerOpen",
  "upstreamDown",
  "queueSaturation",
  "eventLoopLag",
] as const;
type AlertRuleName = (typeof ALERT_RULES)[number];

export interface Alert {
  /** `rule:subject`, stable while the condition holds. */
  id: string;
  rule: AlertRuleName;
  /** What the alert is about: a tool, breaker or upstream name; `process` for the event loop. */
  subject: string;
  severity: "warning" | "critical";
  message: string;
  value: number;
  threshold: number;
  state: "firing" | "resolved";
  /** Epoch ms. */
  firedAt: number;
  resolvedAt?: number;
}

export interface AlertManagerOptions {
  rules: AlertRules;
  stats: RollingStats;
  logger: Logger;
  /** Firing and resolved alerts are POSTed here as `{ service, alert }`. */
  webhook?: string;
  service?: string;
  webhookTimeoutMs?: number;
  /** Length of the recent list. Default 100. */
  recentLimit?: number;
  now?: () => number;
  /** Event-loop p99 delay in ms since the last call; default: perf_hooks' monitorEventLoopDelay. */
  eventLoopP99Ms?: () => number;
}

type Condition = Omit<Alert, "id" | "state" | "firedAt" | "resolvedAt">;

export class AlertManager {
  private readonly options: AlertManagerOptions;
  private readonly now: () => number;
  private readonly firing = new Map<string, Alert>();
  private readonly history: Alert[] = [];
  private readonly downSince = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private loopDelay: ELDHistogram | undefined;
  private loopDelayResolutionMs = 0;

  constructor(options: AlertManagerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** Start evaluating the rules against the gateway every `rules.intervalMs`. */
  start(view: GatewayView): void {
    this.stop();
    if (!this.options.rules.enabled) return;
    if (!this.options.eventLoopP99Ms && this.options.rules.eventLoopLag.enabled) {
      // Each sample is a libuv timer wake-up, idle or not: sample at a quarter of the threshold (10-100 ms),
      // enough to see a p99 over it, instead of perf_hooks' 10 ms (100 wake-ups a second).
      const resolution = Math.max(10, Math.min(100, Math.floor(this.options.rules.eventLoopLag.p99Ms / 4)));
      this.loopDelayResolutionMs = resolution;
      this.loopDelay = monitorEventLoopDelay({ resolution });
      this.loopDelay.enable();
    }
    this.timer = setInterval(() => this.evaluate(view), this.options.rules.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.loopDelay?.disable();
    this.loopDelay = undefined;
  }

  /** Evaluate every rule once; returns the alerts that fired or resolved now. */
  evaluate(view: GatewayView): Alert[] {
    const now = this.now();
    const holding = new Map<string, Condition>();
    for (const condition of this.conditions(view, now)) {
      holding.set(`${condition.rule}:${condition.subject}`, condition);
    }
    const changes: Alert[] = [];
    for (const [id, alert] of this.firing) {
      if (holding.has(id)) continue;
      this.firing.delete(id);
      changes.push({ ...alert, state: "resolved", resolvedAt: now });
    }
    for (const [id, condition] of holding) {
      const current = this.firing.get(id);
      if (current) {
        // Keep the message and value fresh while it holds, without a new notification.
        Object.assign(current, { message: condition.message, value: condition.value });
        continue;
      }
      const alert: Alert = { id, ...condition, state: "firing", firedAt: now };
      this.firing.set(id, alert);
      changes.push(alert);
    }
    for (const alert of changes) this.notify(alert);
    return changes;
  }

  /** Alerts firing now. */
  active(): Alert[] {
    return [...this.firing.values()].map((a) => ({ ...a }));
  }

  /** Recent firing and resolved notifications, newest first. */
  recent(): Alert[] {
    return this.history.map((a) => ({ ...a }));
  }

  private *conditions(view: GatewayView, now: number): Generator<Condition> {
    const { rules, stats } = this.options;
    if (rules.errorRate.enabled) {
      const { thresholdPercent, windowMs, minCalls } = rules.errorRate;
      for (const s of stats.snapshot(windowMs)) {
        const percent = s.errorRate * 100;
        if (s.calls < minCalls || percent <= thresholdPercent) continue;
        yield {
          rule: "errorRate",
          subject: s.tool,
          severity: "warning",
          value: round(percent),
          threshold: thresholdPercent,
          message: `tool "${s.tool}" (upstream "${s.upstream}"): ${round(percent)}% of ${s.calls} calls failed in the last ${duration(windowMs)} (threshold ${thresholdPercent}%)`,
        };
      }
    }
    if (rules.latency.enabled) {
      const { p95Ms, windowMs, minCalls } = rules.latency;
      for (const s of stats.snapshot(windowMs)) {
        if (s.calls < minCalls || s.p95Ms === null || s.p95Ms <= p95Ms) continue;
        yield {
          rule: "latency",
          subject: s.tool,
          severity: "warning",
          value: s.p95Ms,
          threshold: p95Ms,
          message: `tool "${s.tool}" (upstream "${s.upstream}"): p95 latency ${s.p95Ms} ms over the last ${duration(windowMs)} (threshold ${p95Ms} ms)`,
        };
      }
    }
    if (rules.breakerOpen.enabled) {
      // Until it closes: an open breaker turns half-open after its reset timeout and back to open when the
      // trial fails, which would otherwise fire and resolve the alert every cycle.
      for (const b of view.breakers()) {
        if (b.state === "closed") continue;
        const retry = b.nextAttemptAt ? `; next trial call at ${b.nextAttemptAt}` : "";
        yield {
          rule: "breakerOpen",
          subject: b.id,
          severity: "critical",
          value: 1,
          threshold: 1,
          message:
            b.state === "open"
              ? `circuit breaker "${b.id}" is open: calls fail fast${retry}`
              : `circuit breaker "${b.id}" is half-open: the next call is a trial; it closes when one succeeds`,
        };
      }
    }
    if (rules.upstreamDown.enabled) {
      const seen = new Set<string>();
      for (const u of view.upstreams()) {
        seen.add(u.name);
        if (!isDown(u)) {
          this.downSince.delete(u.name);
          continue;
        }
        const since = this.downSince.get(u.name) ?? now;
        this.downSince.set(u.name, since);
        if (now - since < rules.upstreamDown.forMs) continue;
        const cause = u.lastError ? `: ${u.lastError}` : "";
        yield {
          rule: "upstreamDown",
          subject: u.name,
          severity: "critical",
          value: now - since,
          threshold: rules.upstreamDown.forMs,
          message: `upstream "${u.name}" has been ${u.state} for ${duration(now - since)}${cause}`,
        };
      }
      for (const name of this.downSince.keys()) if (!seen.has(name)) this.downSince.delete(name);
    }
    if (rules.queueSaturation.enabled) {
      const { thresholdPercent } = rules.queueSaturation;
      for (const t of view.tools()) {
        const queued = stats.get(t.name)?.queued ?? 0;
        if (!t.queueSize || queued === 0) continue;
        const percent = (queued / t.queueSize) * 100;
        if (percent < thresholdPercent) continue;
        yield {
          rule: "queueSaturation",
          subject: t.name,
          severity: "warning",
          value: round(percent),
          threshold: thresholdPercent,
          message: `tool "${t.name}" (upstream "${t.upstream}"): queue ${queued}/${t.queueSize} full (threshold ${thresholdPercent}%); raise concurrency.maxInFlight or queueSize, or slow the callers`,
        };
      }
    }
    if (rules.eventLoopLag.enabled) {
      const p99 = this.eventLoopP99();
      if (p99 > rules.eventLoopLag.p99Ms) {
        yield {
          rule: "eventLoopLag",
          subject: "process",
          severity: "warning",
          value: round(p99),
          threshold: rules.eventLoopLag.p99Ms,
          message: `event loop p99 delay ${round(p99)} ms (threshold ${rules.eventLoopLag.p99Ms} ms): the gateway process is overloaded`,
        };
      }
    }
  }

  private eventLoopP99(): number {
    if (this.options.eventLoopP99Ms) return this.options.eventLoopP99Ms();
    if (!this.loopDelay) return 0;
    // The histogram records the time between samples: the delay is what exceeds the sampling interval.
    const p99 = Math.max(0, this.loopDelay.percentile(99) / 1e6 - this.loopDelayResolutionMs);
    this.loopDelay.reset();
    return p99;
  }

  private notify(alert: Alert): void {
    this.history.unshift(alert);
    this.history.length = Math.min(this.history.length, this.options.recentLimit ?? 100);
    const fields = {
      alert: alert.id,
      severity: alert.severity,
      value: alert.value,
      threshold: alert.threshold,
    };
    if (alert.state === "firing") this.options.logger.warn(`alert firing: ${alert.message}`, fields);
    else this.options.logger.info(`alert resolved: ${alert.message}`, fields);
    this.post(alert);
  }

  private post(alert: Alert): void {
    const { webhook, logger } = this.options;
    if (!webhook) return;
    fetch(webhook, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service: this.options.service ?? "toolgate", alert }),
      signal: AbortSignal.timeout(this.options.webhookTimeoutMs ?? 5_000),
    })
      .then((res) => {
        if (!res.ok) logger.warn(`alert webhook answered HTTP ${res.status}`, { alert: alert.id, webhook });
        return res.body?.cancel();
      })
      .catch((err: unknown) => {
        logger.warn(`alert webhook failed; check telemetry.alertWebhook: ${String(err)}`, {
          alert: alert.id,
          webhook,
        });
      });
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function duration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1_000) return `${Math.round(ms / 1_000)}s`;
  return `${ms}ms`;
}
