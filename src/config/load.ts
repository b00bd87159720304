/**
 * Config file → `${ENV}` interpolation → strict schema → one resolved form with every default filled.
 * Errors name the JSON path of the offending value.
 */
import { readFile } from "node:fs/promises";
import { dirname, extname, isAbsolute, join, resolve } from "node:path";
import { type ParseError, parse as parseJsonc, printParseErrorCode } from "jsonc-parser";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ErrorCode, GatewayError } from "../errors.ts";
import type { ApprovalsConfig } from "./approvals-schema.ts";
import { fromClientFormat, nearest } from "./client-formats.ts";
import type { ClusterConfig } from "./cluster-schema.ts";
import { type ConfigIssue, childPath } from "./issues.ts";
import { OPENAPI_ONLY_KEYS, type OpenApiTransport, openapiTransport } from "./openapi-schema.ts";
import { type ResolvedPolicy, resolvePolicy, UPSTREAM_CONCURRENCY_DEFAULTS } from "./policy.ts";
import {
  ConfigSchema,
  type GatewayOptions,
  type McpServerEntry,
  type ParsedConfig,
  type ToolOptions,
  type UpstreamOAuthSchema,
  type UpstreamOptions,
} from "./schema.ts";
import type { SecurityOptions } from "./security-schema.ts";
import type { TasksConfig } from "./tasks-schema.ts";
import type { TelemetryConfig } from "./telemetry-schema.ts";

export type UpstreamOAuthOptions = z.output<typeof UpstreamOAuthSchema>;
export type { ConfigIssue } from "./issues.ts";
export { childPath } from "./issues.ts";

/** How the gateway reaches an MCP server. */
export type McpTransportConfig =
  | { type: "stdio"; command: string; args: string[]; env: Record<string, string>; cwd: string | undefined }
  | {
      type: "http" | "sse" | "ws";
      url: string;
      headers: Record<string, string>;
      /** OAuth client settings when the upstream is protected (http and sse only). */
      oauth?: UpstreamOAuthOptions;
    };

/** An MCP server, or an HTTP API through the OpenAPI adapter. */
export type TransportConfig = McpTransportConfig | OpenApiTransport;

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
  connectTimeoutMs: number;
  healthCheck: { intervalMs: number; timeoutMs: number };
  /** Protocol era to speak; "auto" learns it on every connect. */
  protocol: "auto" | "2025-11-25" | "2026-07-28";
}

export interface ResolvedConfig {
  /** `stateDir` is absolute here: the directory of pins and other state that outlives a run. */
  gateway: GatewayOptions & { stateDir: string };
  defaults: ResolvedPolicy;
  upstreams: UpstreamConfig[];
  /** `pinning.file` is absolute here. */
  security: SecurityOptions & { pinning: SecurityOptions["pinning"] & { file: string } };
  telemetry: TelemetryConfig;
  /** The file this config came from (absolute); absent for a config built in memory. */
  configFile?: string | undefined;
  tasks: TasksConfig;
  approvals: ApprovalsConfig;
  cluster: ClusterConfig;
}

export interface ResolveOptions {
  /**
   * The config file: relative `cwd`, `./`/`../` paths and the state directory resolve against its directory.
   * Without it they resolve against the process's working directory.
   */
  file?: string | undefined;
}

export interface LoadedConfig {
  config: ResolvedConfig;
  /** Values interpolated from the environment: never print them (`toolgate check` redacts them). */
  secretValues: Set<string>;
  /** What was ignored while reading an MCP client's file (its own top-level keys, inputs): say so once. */
  warnings: string[];
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
  return resolveConfig(parseConfigSource(text, file), env, { file });
}

/** YAML by extension, else JSON with comments and trailing commas (JSONC, as VS Code and Cursor write it). */
export function parseConfigSource(text: string, file: string): unknown {
  if (/\.ya?ml$/i.test(extname(file))) {
    try {
      return parseYaml(text);
    } catch (err) {
      throw configError([{ path: "$", message: `${file} is not valid YAML: ${(err as Error).message}` }]);
    }
  }
  const errors: ParseError[] = [];
  const raw: unknown = parseJsonc(text, errors, { allowTrailingComma: true, allowEmptyContent: false });
  const first = errors[0];
  if (first) {
    const before = text.slice(0, first.offset).split("\n");
    const where = `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
    throw configError([
      { path: "$", message: `${file} is not valid JSON: ${printParseErrorCode(first.error)} at ${where}` },
    ]);
  }
  return raw;
}

export function resolveConfig(
  raw: unknown,
  env: NodeJS.ProcessEnv = process.env,
  options: ResolveOptions = {},
): LoadedConfig {
  const file = options.file === undefined ? undefined : resolve(options.file);
  const adapted = fromClientFormat(raw, { file, env });
  const issues: ConfigIssue[] = [...adapted.issues];
  const secretValues = new Set<string>();
  const interpolated = interpolate(adapted.raw, "$", env, issues, secretValues);
  if (issues.length) throw configError(issues);
  const parsed = ConfigSchema.safeParse(interpolated);
  if (!parsed.success) throw configError(zodIssues(parsed.error));
  const config = normalize(parsed.data, issues, file === undefined ? resolve() : dirname(file));
  config.configFile = file;
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
  return { config, secretValues, warnings: adapted.warnings };
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

function zodIssues(error: z.ZodError): ConfigIssue[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.reduce<string>(
      (p, k) => childPath(p, typeof k === "number" ? k : String(k)),
      "$",
    );
    // One issue per unknown key, at the key's own path (`$.mcpServers.github.comand: unknown key (did you
    // mean "command"?)`).
    if (issue.code === "unrecognized_keys") {
      const known = keysAt(issue.path);
      return issue.keys.map((key) => {
        const guess = nearest(key, known);
        return {
          path: childPath(path, key),
          message: `unknown key${guess ? ` (did you mean "${guess}"?)` : ""}`,
        };
      });
    }
    // A record key the schema refused: zod says only "Invalid key in record"; the key's own rule says why.
    if (issue.code === "invalid_key") {
      const why = issue.issues.map((i) => i.message).join("; ");
      return [{ path, message: `not a valid name: ${why}` }];
    }
    return [{ path, message: issue.message }];
  });
}

type JsonSchemaNode = {
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: JsonSchemaNode | boolean;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  oneOf?: JsonSchemaNode[];
};

let jsonSchema: JsonSchemaNode | undefined;

/** The keys the schema allows in the object at `path` (read from its JSON Schema; only on errors). */
function keysAt(path: readonly PropertyKey[]): string[] {
  jsonSchema ??= z.toJSONSchema(ConfigSchema, { io: "input", unrepresentable: "any" }) as JsonSchemaNode;
  let nodes: JsonSchemaNode[] = [jsonSchema];
  const expand = (list: JsonSchemaNode[]): JsonSchemaNode[] =>
    list.flatMap((n) => [n, ...expand([...(n.anyOf ?? []), ...(n.oneOf ?? [])])]);
  for (const segment of path) {
    nodes = expand(nodes).flatMap((n) => {
      if (typeof segment === "number") return n.items ? [n.items] : [];
      const prop = n.properties?.[String(segment)];
      if (prop) return [prop];
      return typeof n.additionalProperties === "object" ? [n.additionalProperties] : [];
    });
  }
  return [...new Set(expand(nodes).flatMap((n) => Object.keys(n.properties ?? {})))];
}

function normalize(parsed: ParsedConfig, issues: ConfigIssue[], baseDir: string): ResolvedConfig {
  for (const name of Object.keys(parsed.upstreams)) {
    if (!(name in parsed.mcpServers)) {
      issues.push({ path: childPath("$.upstreams", name), message: `no server "${name}" in mcpServers` });
    }
  }
  const upstreams: UpstreamConfig[] = [];
  for (const [name, entry] of Object.entries(parsed.mcpServers)) {
    if (entry.disabled) continue;
    const transport = resolveTransport(entry, childPath("$.mcpServers", name), issues, baseDir);
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
      connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
      healthCheck: { intervalMs: 15_000, timeoutMs: 5_000, ...options.healthCheck },
      protocol: options.protocol ?? "auto",
    });
  }
  const stateDir = resolve(baseDir, parsed.gateway.stateDir ?? ".toolgate");
  const { pinning } = parsed.security;
  return {
    gateway: { ...parsed.gateway, stateDir },
    defaults: resolvePolicy(parsed.defaults),
    upstreams,
    security: {
      ...parsed.security,
      pinning: {
        ...pinning,
        file: pinning.file ? resolve(baseDir, pinning.file) : join(stateDir, "pins.json"),
      },
    },
    telemetry: parsed.telemetry,
    tasks: parsed.tasks,
    approvals: parsed.approvals,
    cluster: parsed.cluster,
  };
}

/**
 * Paths of a stdio upstream, the way a config file's author means them: a relative `cwd` is relative to the
 * config file's directory. Without `cwd`, a command or argument that is visibly a relative path (`./x`, `../x`)
 * is too; other arguments are passed as written (the child runs in the gateway's working directory).
 */
function resolveStdioPaths(
  transport: Extract<TransportConfig, { type: "stdio" }>,
  baseDir: string,
): Extract<TransportConfig, { type: "stdio" }> {
  if (transport.cwd !== undefined) {
    // The child resolves its own relative paths (command included) against its cwd.
    return { ...transport, cwd: isAbsolute(transport.cwd) ? transport.cwd : resolve(baseDir, transport.cwd) };
  }
  const path = (p: string) => (/^\.\.?[\\/]/.test(p) ? resolve(baseDir, p) : p);
  return { ...transport, command: path(transport.command), args: transport.args.map(path) };
}

function resolveTransport(
  entry: McpServerEntry,
  path: string,
  issues: ConfigIssue[],
  baseDir: string,
): TransportConfig | undefined {
  if (entry.type === "openapi") return openapiTransport(entry, path, baseDir, issues);
  for (const key of OPENAPI_ONLY_KEYS) {
    if (entry[key] !== undefined) {
      issues.push({ path: `${path}.${key}`, message: 'only a server of type "openapi" takes this key' });
    }
  }
  const type = entry.type ?? (entry.command ? "stdio" : inferRemoteType(entry.url));
  if (type === "stdio") {
    if (!entry.command) {
      issues.push({ path: `${path}.command`, message: "a stdio server needs a command" });
      return undefined;
    }
    if (entry.url) issues.push({ path: `${path}.url`, message: "a stdio server takes no url" });
    return resolveStdioPaths(
      { type: "stdio", command: entry.command, args: entry.args ?? [], env: entry.env ?? {}, cwd: entry.cwd },
      baseDir,
    );
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
  // Caught here rather than as a connection error repeated at every reconnect. `ws` accepts http(s) too.
  const scheme = new URL(entry.url).protocol;
  const ws = normalized === "ws";
  if (!(scheme === "http:" || scheme === "https:" || (ws && (scheme === "ws:" || scheme === "wss:")))) {
    issues.push({
      path: `${path}.url`,
      message: ws
        ? `${scheme}// cannot reach a WebSocket server: use ws://, wss://, http:// or https://`
        : `${scheme}// cannot reach an ${normalized} server: use http:// or https://`,
    });
  }
  const { oauth, ...apiCredentials } = entry.auth ?? {};
  for (const key of Object.keys(apiCredentials)) {
    issues.push({
      path: `${path}.auth.${key}`,
      message: 'only a server of type "openapi" takes this key (MCP servers: headers or auth.oauth)',
    });
  }
  if (oauth) {
    if (normalized === "ws")
      issues.push({ path: `${path}.auth.oauth`, message: "OAuth needs an http or sse upstream" });
    if (oauth.grant === "client_credentials" && !(oauth.clientId && oauth.clientSecret)) {
      issues.push({
        path: `${path}.auth.oauth`,
        message: "the client_credentials grant needs clientId and clientSecret",
      });
    }
    if (oauth.perPrincipal && oauth.grant === "client_credentials") {
      issues.push({
        path: `${path}.auth.oauth.perPrincipal`,
        message: "per-principal credentials need the authorization_code grant (a person consents)",
      });
    }
  }
  return { type: normalized, url: entry.url, headers: entry.headers ?? {}, ...(oauth && { oauth }) };
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
