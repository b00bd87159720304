/**
 * Config file → `${ENV}` interpolation → strict schema → one resolved form with every default filled.
 * Errors name the JSON path of the offending value.
 */
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { ErrorCode, GatewayError } from "../errors.ts";
import type { ClusterConfig } from "./cluster-schema.ts";
import { type ResolvedPolicy, resolvePolicy, UPSTREAM_CONCURRENCY_DEFAULTS } from "./policy.ts";
import {
  ConfigSchema,
  type GatewayOptions,
  type McpServerEntry,
  type ParsedConfig,
  type ToolOptions,
  type UpstreamOptions,
} from "./schema.ts";
import type { SecurityOptions } from "./security-schema.ts";
import type { TelemetryConfig } from "./telemetry-schema.ts";

export type TransportConfig =
  | { type: "stdio"; command: string; args: string[]; env: Record<string, string>; cwd: string | undefined }
  | { type: "http" | "sse" | "ws"; url: string; headers: Record<string, string> };

export interface UpstreamConfig {
  name: string;
  transport: TransportConfig;
  /** Public-name prefix ("" for none). */
  prefix: string;
  include: string[];
  exclude: string[];
  /** Upstream-level policy (defaults → upstream), the base of every tool's policy. */
  policy: ResolvedPolicy;
  /** Raw per-tool options by upstream tool name; resolved against `policy` when tools are discovered. */
  tools: Record<string, ToolOptions>;
  concurrency: ResolvedPolicy["concurrency"];
  reconnect: { initialDelayMs: number; maxDelayMs: number };
}

export interface ResolvedConfig {
  gateway: GatewayOptions;
  defaults: ResolvedPolicy;
  upstreams: UpstreamConfig[];
  security: SecurityOptions;
  telemetry: TelemetryConfig;
  cluster: ClusterConfig;
}

export interface ConfigIssue {
  /** JSON path, e.g. `$.mcpServers.github.url`. */
  path: string;
  message: string;
}

export interface LoadedConfig {
  config: ResolvedConfig;
  /** Values interpolated from the environment: never print them (`toolgate check` redacts them). */
  secretValues: Set<string>;
}

/** Read and resolve a config file. Throws GatewayError(ConfigInvalid) with `data.issues`. */
export async function loadConfigFile(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw configError([{ path: "$", message: `cannot read ${file}: ${(err as Error).message}` }]);
  }
  return parseConfigText(text, file, env);
}

export function parseConfigText(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): LoadedConfig {
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(extname(file)) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw configError([
      {
        path: "$",
        message: `${file} is not valid ${/\.ya?ml$/i.test(file) ? "YAML" : "JSON"}: ${(err as Error).message}`,
      },
    ]);
  }
  return resolveConfig(raw, env);
}

export function resolveConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const issues: ConfigIssue[] = [];
  const secretValues = new Set<string>();
  const interpolated = interpolate(raw, "$", env, issues, secretValues);
  if (issues.length) throw configError(issues);
  const parsed = ConfigSchema.safeParse(interpolated);
  if (!parsed.success) throw configError(zodIssues(parsed.error));
  const config = normalize(parsed.data, issues);
  const redisFromEnv = env.TOOLGATE_REDIS_URL;
  if (config.cluster.redis === undefined && redisFromEnv) {
    if (!/^rediss?:\/\//.test(redisFromEnv)) {
      issues.push({
        path: "$.cluster.redis",
        message: "TOOLGATE_REDIS_URL must be a redis:// or rediss:// URL",
      });
    }
    config.cluster.redis = redisFromEnv;
    secretValues.add(redisFromEnv);
  }
  const sessionKey = env.TOOLGATE_SESSION_KEY;
  if (config.cluster.sessions.key === undefined && sessionKey) {
    if (sessionKey.length < 32) {
      issues.push({
        path: "$.cluster.sessions.key",
        message: "TOOLGATE_SESSION_KEY needs at least 32 characters",
      });
    }
    config.cluster.sessions.key = sessionKey;
    secretValues.add(sessionKey);
  }
  // Never printed by `toolgate check`, even when written in the file: the session key, Redis credentials.
  if (config.cluster.sessions.key) secretValues.add(config.cluster.sessions.key);
  if (config.cluster.redis && new URL(config.cluster.redis).password) secretValues.add(config.cluster.redis);
  if (issues.length) throw configError(issues);
  return { config, secretValues };
}

/** `${NAME}`, `${NAME:-default}` (Claude Code) and `${env:NAME}` (Cursor). */
const ENV_REF = /\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function interpolate(
  value: unknown,
  path: string,
  env: NodeJS.ProcessEnv,
  issues: ConfigIssue[],
  secretValues: Set<string>,
): unknown {
  if (typeof value === "string") {
    if (!value.includes("${")) return value;
    const result = value.replace(ENV_REF, (_, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== "") return v;
      if (fallback !== undefined) return fallback;
      issues.push({
        path,
        message: `environment variable ${name} is not set (use \${${name}:-default} for a default)`,
      });
      return "";
    });
    if (result) secretValues.add(result);
    return result;
  }
  if (Array.isArray(value))
    return value.map((v, i) => interpolate(v, `${path}[${i}]`, env, issues, secretValues));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        interpolate(v, childPath(path, k), env, issues, secretValues),
      ]),
    );
  }
  return value;
}

export function childPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

function zodIssues(error: z.ZodError): ConfigIssue[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.reduce<string>(
      (p, k) => childPath(p, typeof k === "number" ? k : String(k)),
      "$",
    );
    // One issue per unknown key, at the key's own path (`$.mcpServers.github.comand: unknown key`).
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({ path: childPath(path, key), message: "unknown key" }));
    }
    return [{ path, message: issue.message }];
  });
}

function normalize(parsed: ParsedConfig, issues: ConfigIssue[]): ResolvedConfig {
  for (const name of Object.keys(parsed.upstreams)) {
    if (!(name in parsed.mcpServers)) {
      issues.push({ path: childPath("$.upstreams", name), message: `no server "${name}" in mcpServers` });
    }
  }
  const upstreams: UpstreamConfig[] = [];
  for (const [name, entry] of Object.entries(parsed.mcpServers)) {
    if (entry.disabled) continue;
    const transport = resolveTransport(entry, childPath("$.mcpServers", name), issues);
    if (!transport) continue;
    const options: UpstreamOptions = parsed.upstreams[name] ?? {};
    upstreams.push({
      name,
      transport,
      prefix: options.prefix ?? name.replace(/[^A-Za-z0-9_-]/g, "_"),
      include: options.include ?? [],
      exclude: options.exclude ?? [],
      policy: resolvePolicy(parsed.defaults, options.policies),
      tools: options.tools ?? {},
      concurrency: { ...UPSTREAM_CONCURRENCY_DEFAULTS, ...options.concurrency },
      reconnect: { initialDelayMs: 500, maxDelayMs: 30_000, ...options.reconnect },
    });
  }
  return {
    gateway: parsed.gateway,
    defaults: resolvePolicy(parsed.defaults),
    upstreams,
    security: parsed.security,
    telemetry: parsed.telemetry,
    cluster: parsed.cluster,
  };
}

function resolveTransport(
  entry: McpServerEntry,
  path: string,
  issues: ConfigIssue[],
): TransportConfig | undefined {
  const type = entry.type ?? (entry.command ? "stdio" : inferRemoteType(entry.url));
  if (type === "stdio") {
    if (!entry.command) {
      issues.push({ path: `${path}.command`, message: "a stdio server needs a command" });
      return undefined;
    }
    if (entry.url) issues.push({ path: `${path}.url`, message: "a stdio server takes no url" });
    return {
      type: "stdio",
      command: entry.command,
      args: entry.args ?? [],
      env: entry.env ?? {},
      cwd: entry.cwd,
    };
  }
  if (!entry.url) {
    issues.push({
      path: `${path}.url`,
      message: "a remote server needs a url (or give a command for stdio)",
    });
    return undefined;
  }
  if (entry.command) issues.push({ path: `${path}.command`, message: "a remote server takes no command" });
  const normalized =
    type === "streamable-http" || type === "streamableHttp" ? "http" : type === "websocket" ? "ws" : type;
  if (normalized === undefined) return undefined;
  return { type: normalized, url: entry.url, headers: entry.headers ?? {} };
}

/** `ws(s)://` → WebSocket, a path ending in `/sse` → legacy SSE, anything else → Streamable HTTP. */
function inferRemoteType(url: string | undefined): "http" | "sse" | "ws" | undefined {
  if (!url) return undefined;
  if (/^wss?:/i.test(url)) return "ws";
  return /\/sse\/?$/i.test(new URL(url).pathname) ? "sse" : "http";
}

function configError(issues: ConfigIssue[]): GatewayError {
  const lines = issues.map((i) => `  ${i.path}: ${i.message}`).join("\n");
  return new GatewayError(ErrorCode.ConfigInvalid, `invalid config:\n${lines}`, { data: { issues } });
}
