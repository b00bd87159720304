/**
 * The config file's strict schema. `mcpServers` is the object MCP clients use (Claude Desktop, Cursor,
 * Claude Code), so an existing file pastes in as is; toolgate's own settings live beside it in `gateway`,
 * `defaults` (policies for every tool) and `upstreams` (per-upstream and per-tool options).
 * Every default lives here, so the parsed value is the normalized form.
 */
import { z } from "zod";
import { ApprovalsSchema } from "./approvals-schema.ts";
import { ClusterSchema } from "./cluster-schema.ts";
import { ms, msAtLeast } from "./duration.ts";
import { OpenApiAuthSchema, OpenApiServerFields } from "./openapi-schema.ts";
import { SecuritySchema } from "./security-schema.ts";
import { TasksSchema } from "./tasks-schema.ts";
import { TelemetrySchema } from "./telemetry-schema.ts";

const positiveInt = z.number().int().positive();

const TimeoutPolicySchema = z.strictObject({
  /** Limit for one attempt; on expiry the upstream request is cancelled. */
  attemptMs: ms.optional(),
  /** Overall deadline for the call, retries and fallbacks included. */
  callMs: ms.optional(),
  /** A progress notification from the upstream restarts the attempt timer (an idle timeout). */
  resetOnProgress: z.boolean().optional(),
});

const RetryPolicySchema = z.strictObject({
  /** Attempts in all, the first one included; 1 disables retries. */
  maxAttempts: positiveInt.optional(),
  baseDelayMs: ms.optional(),
  maxDelayMs: ms.optional(),
  /** Also retry tool results with `isError: true`. */
  retryToolErrors: z.boolean().optional(),
});

const BreakerPolicySchema = z.strictObject({
  enabled: z.boolean().optional(),
  /** One breaker shared by every tool of the upstream, or one per tool. */
  scope: z.enum(["upstream", "tool"]).optional(),
  /** Failure percentage in the rolling window that opens the breaker. */
  failureRatePercent: z.number().min(1).max(100).optional(),
  /** Calls needed in the window before the rate counts. */
  volumeThreshold: positiveInt.optional(),
  windowMs: msAtLeast().optional(),
  /** Time open before a half-open trial call. */
  resetTimeoutMs: msAtLeast().optional(),
});

const ConcurrencyPolicySchema = z.strictObject({
  maxInFlight: positiveInt.optional(),
  queueSize: z.number().int().nonnegative().optional(),
  queueTimeoutMs: ms.optional(),
  /** Default priority of queued calls (higher first); a request's `_meta["toolgate/priority"]` overrides. */
  priority: z.number().int().optional(),
});

const LockPolicySchema = z.strictObject({
  /** Argument the lock is keyed by: a dotted path (`path`, `a.b`) or a JSON pointer (`/a/b`). None: the whole tool. */
  key: z.string().min(1).optional(),
  /** Tools with the same group share locks (e.g. `fs-writes` for write_file and move_file). */
  group: z.string().min(1).optional(),
  timeoutMs: ms.optional(),
});

const FallbackRouteSchema = z.strictObject({
  /** Public name of the alternate tool (e.g. `search2__search`). */
  tool: z.string().min(1),
  /** Argument mapping: new argument name → source (dotted path or JSON pointer into the original arguments). */
  args: z.record(z.string(), z.string()).optional(),
});

const FallbackPolicySchema = z.strictObject({
  routes: z.array(FallbackRouteSchema),
  /** Failures that move to the next route. */
  on: z
    .array(z.enum(["unavailable", "circuitOpen", "timeout", "retriesExhausted", "overload", "upstreamError"]))
    .optional(),
});

const TaskModeSchema = z.enum(["off", "auto", "always"]);

/**
 * Tasks the gateway runs itself for tools whose upstream has no task support: `auto` answers a
 * task-capable client with a task when the call is not done within `thresholdMs`, `always` at once.
 */
const TaskPolicySchema = z.union([
  TaskModeSchema,
  z.strictObject({
    mode: TaskModeSchema.optional(),
    thresholdMs: ms.optional(),
    /** POSTed the task's terminal status (tasks run by the gateway, and forwarded ones seen ending). */
    webhook: z.url({ protocol: /^https?$/ }).optional(),
  }),
]);

/** Policy settings; they attach at three levels: defaults → upstream → tool, the most specific winning per field. */
const PolicySchema = z.strictObject({
  timeout: TimeoutPolicySchema.optional(),
  retry: RetryPolicySchema.optional(),
  breaker: BreakerPolicySchema.optional(),
  concurrency: ConcurrencyPolicySchema.optional(),
  /** `true` for one call at a time, or a keyed/grouped lock. */
  lock: z.union([z.boolean(), LockPolicySchema]).optional(),
  fallback: FallbackPolicySchema.optional(),
  /** Trust the tool to be safe to run twice (overrides its annotations). */
  idempotent: z.boolean().optional(),
  task: TaskPolicySchema.optional(),
  /**
   * `always`: a person approves each call before it runs, asked through the calling client (elicitation),
   * else by an operator (`approvals.operators`); a decline fails the call and the upstream is never called.
   * `onFailure`: when a call has failed after its retries and fallbacks, a person (asked the same way)
   * decides whether to run it again; a decline returns the failure.
   */
  approval: z.enum(["off", "always", "onFailure"]).optional(),
});

const ToolOptionsSchema = PolicySchema.extend({
  /** Public name for this tool instead of `<prefix><separator><tool>`. */
  rename: z.string().optional(),
});

const envRecord = z.record(z.string(), z.string());

/** toolgate as an OAuth 2.1 client of a protected remote upstream (MCP authorization). */
export const UpstreamOAuthSchema = z.strictObject({
  /** `authorization_code`: a person consents once (`toolgate auth login`); `client_credentials`: machine to machine. */
  grant: z.enum(["authorization_code", "client_credentials"]).default("authorization_code"),
  /** A pre-registered client; without one toolgate uses clientMetadataUrl or registers dynamically. */
  clientId: z.string().min(1).optional(),
  clientSecret: z.string().min(1).optional(),
  /** An https URL serving this client's metadata document (Client ID Metadata Documents). */
  clientMetadataUrl: z.string().url().optional(),
  /** Scopes to ask for when the upstream does not say (its 401 and its metadata come first). */
  scopes: z.array(z.string()).default([]),
  /** Loopback port of the consent callback (http://127.0.0.1:PORT/callback); register this redirect URI. */
  callbackPort: z.number().int().min(1).max(65535).default(33418),
  /**
   * Each gateway principal connects its own account at the upstream (consent in a browser at
   * `/oauth/upstreams/NAME/authorize`), and calls use that principal's own connection and tokens.
   */
  perPrincipal: z.boolean().default(false),
  /** perPrincipal: this gateway's origin as browsers reach it (consent and callback routes); default: where it listens. */
  publicUrl: z.string().url().optional(),
  /** perPrincipal: open connections kept at most (least recently used closed first). */
  maxConnections: z.number().int().min(1).default(100),
  /** perPrincipal: a principal's connection unused this long is closed (reopened on its next call). */
  idleTimeoutMs: msAtLeast(1000).default(600_000),
});

/** `auth` of an `mcpServers` entry: MCP authorization (`oauth`) for MCP servers, API credentials for openapi. */
const UpstreamAuthSchema = OpenApiAuthSchema.extend({
  oauth: UpstreamOAuthSchema.optional(),
});

/** One entry of `mcpServers`, as MCP clients write it. */
const McpServerSchema = z.strictObject({
  type: z
    .enum(["stdio", "http", "streamable-http", "streamableHttp", "sse", "ws", "websocket", "openapi"])
    .optional(),
  command: z.string().min(1).optional(),
  args: z.array(z.string()).optional(),
  env: envRecord.optional(),
  cwd: z.string().optional(),
  url: z.string().url().optional(),
  headers: envRecord.optional(),
  /** How toolgate authenticates to a remote upstream beyond static headers. */
  auth: UpstreamAuthSchema.optional(),
  disabled: z.boolean().optional(),
  /** Claude Desktop / Cursor keys, accepted and ignored. */
  autoApprove: z.array(z.string()).optional(),
  alwaysAllow: z.array(z.string()).optional(),
  timeout: z.number().optional(),
  description: z.string().optional(),
  /** `type: "openapi"`: an HTTP API as tools (see openapi-schema.ts). */
  ...OpenApiServerFields,
});

const UpstreamOptionsSchema = z.strictObject({
  /** Name prefix of this upstream's tools and prompts; defaults to the upstream name; "" for none. */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/)
    .optional(),
  /** Glob patterns of upstream tool names to serve (default: all). */
  include: z.array(z.string()).optional(),
  exclude: z.array(z.string()).optional(),
  /** Policies for every tool of this upstream. */
  policies: PolicySchema.optional(),
  /** The upstream as a whole: concurrency shared by all its tools. */
  concurrency: ConcurrencyPolicySchema.optional(),
  /** Per-tool options, keyed by the upstream's own tool name. */
  tools: z.record(z.string(), ToolOptionsSchema).optional(),
  /**
   * Protocol era to speak: "auto" (default) probes with `server/discover` and falls back to `initialize`;
   * "2025-11-25" never probes; "2026-07-28" requires the new era. SSE and WebSocket upstreams are 2025 only.
   */
  protocol: z.enum(["auto", "2025-11-25", "2026-07-28"]).optional(),
  /** Reconnect backoff when the upstream fails to start or drops. */
  reconnect: z
    .strictObject({ initialDelayMs: msAtLeast().optional(), maxDelayMs: msAtLeast().optional() })
    .optional(),
  /** Limit for the initialize handshake and for each page of the discovery that follows (default 30 s). */
  connectTimeoutMs: msAtLeast().optional(),
  /** MCP `ping` to an upstream no traffic has proven alive lately; a failed ping marks it down. */
  healthCheck: z
    .strictObject({
      /** Idle time before a ping, and time between pings (default 15 s); 0 turns health checks off. */
      intervalMs: ms.optional(),
      /** A ping unanswered this long fails (default 5 s). */
      timeoutMs: msAtLeast().optional(),
    })
    .optional(),
});

const ListenSchema = z.strictObject({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(8080),
});

const GatewaySchema = z.strictObject({
  name: z.string().default("toolgate"),
  listen: ListenSchema.default({ host: "127.0.0.1", port: 8080 }),
  /** Separator between prefix and tool name in public names. */
  separator: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,4}$/)
    .default("__"),
  /** Global cap on in-flight proxied calls. */
  maxInFlight: positiveInt.default(1024),
  /**
   * Extra allowed Origin values for HTTP; loopback origins are always allowed to send. A listed origin is also
   * granted CORS, so a browser page there can read `/mcp`'s answers.
   */
  allowedOrigins: z.array(z.string()).default([]),
  /** Extra allowed Host header values. */
  allowedHosts: z.array(z.string()).default([]),
  maxBodyBytes: positiveInt.default(4 * 1024 * 1024),
  /** Deepest nesting of objects/arrays in one incoming message (the JSON-RPC envelope is level 1). */
  maxJsonDepth: positiveInt.default(64),
  /** JSON values (objects, arrays, strings, numbers, …) in one incoming message. */
  maxJsonValues: positiveInt.default(1_000_000),
  maxSessions: positiveInt.default(10_000),
  /** Requests one session may have unanswered at once; more are refused until answers go out. */
  maxPendingPerSession: positiveInt.default(256),
  sessionIdleMs: msAtLeast().default(30 * 60_000),
  drainTimeoutMs: ms.default(10_000),
  /**
   * At start, the first list requests (and calls of tools not yet listed) wait until every upstream is ready
   * or down, at most this long; /readyz turns ready then too.
   */
  startupBudgetMs: ms.default(10_000),
  /**
   * Directory for state that outlives a run (tool pins). Relative paths resolve against the config file's
   * directory; default `.toolgate` beside the config file.
   */
  stateDir: z.string().min(1).optional(),
  /** Log level of the gateway's JSON log on stderr. */
  logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
  /** Include tool arguments and results in debug call logs (they may carry secrets). */
  logPayloads: z.boolean().default(false),
});

export const ConfigSchema = z.strictObject({
  $schema: z.string().optional(),
  gateway: GatewaySchema.default(GatewaySchema.parse({})),
  defaults: PolicySchema.default({}),
  mcpServers: z.record(
    z
      .string()
      .regex(
        /^[A-Za-z0-9_.-]{1,64}$/,
        "upstream names are 1-64 of A-Z a-z 0-9 _ . - (they prefix the upstream's tool names), e.g. my-server",
      ),
    McpServerSchema,
  ),
  upstreams: z.record(z.string(), UpstreamOptionsSchema).default({}),
  security: SecuritySchema.prefault({}),
  telemetry: TelemetrySchema.prefault({}),
  tasks: TasksSchema.prefault({}),
  approvals: ApprovalsSchema.prefault({}),
  /** Replicas sharing state on Redis (see cluster-schema.ts). */
  cluster: ClusterSchema.prefault({}),
});

export type ConfigInput = z.input<typeof ConfigSchema>;
export type ParsedConfig = z.output<typeof ConfigSchema>;
export type PolicyOptions = z.output<typeof PolicySchema>;
export type ToolOptions = z.output<typeof ToolOptionsSchema>;
export type McpServerEntry = z.output<typeof McpServerSchema>;
export type UpstreamOptions = z.output<typeof UpstreamOptionsSchema>;
export type GatewayOptions = z.output<typeof GatewaySchema>;
export type FallbackRoute = z.output<typeof FallbackRouteSchema>;
