/**
 * The toolgate configs the bench runs, written to a temp dir. They use only the public config format
 * (src/config/schema.ts): `mcpServers` as MCP clients write it, `defaults`/`upstreams` for policies.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConfigInput, McpServerEntry, PolicyOptions, ToolOptions } from "../../src/config/schema.ts";

export type Upstream = { kind: "stdio"; argv: string[] } | { kind: "http"; url: string };

const HUGE = 1_000_000;

/** Policies off: no retry, no breaker, no lock, concurrency limits nobody reaches. */
const POLICIES_OFF: PolicyOptions = {
  retry: { maxAttempts: 1 },
  breaker: { enabled: false },
  lock: false,
  concurrency: { maxInFlight: HUGE, queueSize: 0 },
};

export function mcpServer(upstream: Upstream): McpServerEntry {
  if (upstream.kind === "http") return { type: "http", url: upstream.url };
  const [command = "", ...args] = upstream.argv;
  return { command, args };
}

/** Telemetry fully off, or on with traces exported over OTLP to `sinkUrl` (a local discard server). */
function telemetrySection(mode: "on" | "off", sinkUrl: string | undefined): Record<string, unknown> {
  if (mode === "off") {
    return {
      traces: { exporter: "none" },
      metrics: { prometheus: false, process: false },
      alerts: { enabled: false },
    };
  }
  return {
    traces: sinkUrl ? { exporter: "otlp", endpoint: sinkUrl, sampleRatio: 1 } : {},
    metrics: { prometheus: true, process: true },
    alerts: { enabled: true },
  };
}

export interface EchoConfigOptions {
  upstream: Upstream;
  policies: "on" | "off";
  telemetry?: { mode: "on" | "off"; sinkUrl?: string | undefined };
}

/** One upstream `echo`; tools are public as `echo__echo`, `echo__slow`, `echo__flaky`. */
export function echoConfig(options: EchoConfigOptions): ConfigInput {
  const off = options.policies === "off";
  const config: ConfigInput & Record<string, unknown> = {
    gateway: off ? { maxInFlight: HUGE } : {},
    defaults: off ? POLICIES_OFF : {},
    mcpServers: { echo: mcpServer(options.upstream) },
    upstreams: off ? { echo: { concurrency: { maxInFlight: HUGE, queueSize: 0 } } } : {},
  };
  if (options.telemetry)
    config.telemetry = telemetrySection(options.telemetry.mode, options.telemetry.sinkUrl);
  return config;
}

/**
 * Two flaky upstreams `a` and `b`. Resilient: `a__flaky` retries (it is read-only, so safe to repeat),
 * trips a breaker on `a`, and falls back to `b__flaky`. Plain: every policy off.
 */
export function faultConfig(a: Upstream, b: Upstream, resilient: boolean): ConfigInput {
  const tools: Record<string, ToolOptions> = resilient
    ? {
        flaky: {
          idempotent: true,
          retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 200 },
          breaker: {
            enabled: true,
            failureRatePercent: 50,
            volumeThreshold: 10,
            windowMs: 2_000,
            resetTimeoutMs: 300,
          },
          fallback: { routes: [{ tool: "b__flaky" }] },
        },
      }
    : {};
  return {
    defaults: resilient ? {} : POLICIES_OFF,
    mcpServers: { a: mcpServer(a), b: mcpServer(b) },
    upstreams: { a: { tools } },
  };
}

export interface ConfigDir {
  write(name: string, config: ConfigInput): string;
  remove(): void;
}

export function configDir(): ConfigDir {
  const dir = mkdtempSync(join(tmpdir(), "toolgate-bench-"));
  return {
    write(name, config) {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
      return file;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
