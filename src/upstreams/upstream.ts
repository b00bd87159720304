/**
 * One configured upstream MCP server: connect and handshake, discover its catalog, forward requests raw,
 * and keep the connection alive (reconnect with backoff, restart a dead stdio process). `start()` never
 * throws and never blocks: failures show in `status()` and in the `state` event.
 */
import { EventEmitter } from "node:events";
import { isDeepStrictEqual } from "node:util";
import { InsufficientScopeError, SdkHttpError } from "@modelcontextprotocol/client";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { FetchLike, Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  type Implementation,
  type Prompt,
  PromptSchema,
  type Resource,
  ResourceSchema,
  type ResourceTemplate,
  ResourceTemplateSchema,
  type ServerCapabilities,
  type Tool,
  ToolSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { z } from "zod";
import type { McpTransportConfig, UpstreamConfig } from "../config/load.ts";
import { ErrorCode, GatewayError, RpcCode } from "../errors.ts";
import type { Logger } from "../telemetry/log.ts";
import { backoffDelay } from "./backoff.ts";
import type { ClientEvents, ClientRequestOptions, ProtocolEra, UpstreamClient } from "./client.ts";
import { NO_TIMEOUT } from "./jsonrpc-connection.ts";
import { connectLegacy, OpenTimeoutError } from "./legacy-client.ts";
import { connectModern, modernCapable } from "./modern-client.ts";
import {
  asksForAuthorization,
  describeFailure,
  isJsonRpcAnswer,
  isLocalTimeout,
  requestFailure,
} from "./request-error.ts";
import { StderrTail } from "./stderr-tail.ts";
import { probeStdio } from "./stdio-probe.ts";
import { createSdkTransport, forClient, type TransportHooks } from "./transports.ts";

export type UpstreamState = "connecting" | "ready" | "down" | "stopped";
export type CatalogKind = "tools" | "resources" | "prompts";

/** What a caller of a tool of an upstream that is not ready can expect, for its error message. */
export function untilReady(state: UpstreamState, nextRetryAt: string | undefined): string {
  // Down without a next retry: the retry is under way.
  const when = nextRetryAt
    ? `toolgate reconnects at ${nextRetryAt}`
    : state === "stopped"
      ? "it was stopped (a reload removed it, or the gateway is shutting down)"
      : "toolgate is connecting to it now";
  return `${when}, call again once it is ready`;
}

export interface UpstreamStatus {
  name: string;
  transport: UpstreamConfig["transport"]["type"];
  state: UpstreamState;
  lastError?: string;
  /** Times the upstream was started again after a failure: a new process, or a new connection attempt. */
  restarts: number;
  connectedAt?: string;
  protocolVersion?: string;
  /** The protocol era learned at the last connect: "2025-11-25" (initialize) or "2026-07-28" (discover). */
  era?: ProtocolEra;
  serverInfo?: { name: string; version: string };
  tools: number;
  resources: number;
  prompts: number;
  nextRetryAt?: string;
  /** An OAuth-protected upstream without usable credentials: what a person runs to authorize it. */
  needsAuthorization?: string;
  /** auth.oauth.perPrincipal: the principals' own connections open now (the gateway fills it in). */
  principalConnections?: number;
  /** Tools held back by pinning and why (the gateway fills it in). */
  toolsHeld?: { count: number; reason: string };
}

interface ServerRequest {
  method: string;
  params?: Record<string, unknown>;
}

export interface UpstreamOptions {
  log: Logger;
  clientInfo?: { name: string; version: string };
  /** Answers server→client requests (sampling, elicitation, roots/list), usually via a downstream client. */
  onServerRequest?: (
    upstream: Upstream,
    request: ServerRequest,
    extra: { signal: AbortSignal },
  ) => Promise<Record<string, unknown>>;
  /** Receives the upstream's notifications (logging, resources/updated, …) except list changes and progress. */
  onNotification?: (upstream: Upstream, notification: ServerRequest) => void;
  /** The OAuth client of a protected upstream (upstreams/auth), when its config asks for one. */
  oauthFor?: (upstream: string, transport: UpstreamConfig["transport"]) => UpstreamOAuthClient | undefined;
  /** Observes each discovery request (`tools/list`, … one per page): telemetry's client operation histogram. */
  onDiscovery?: (upstream: Upstream, method: string, durationMs: number, error?: unknown) => void;
}

/** What the upstream needs of its OAuth client (upstreams/auth/oauth-provider.ts implements it). */
export interface UpstreamOAuthClient extends OAuthClientProvider {
  readonly loginCommand: string;
  /** What a person does to authorize (run the login command, or open a consent URL). */
  readonly authorizationHint: string;
  hasCredentials(): Promise<boolean>;
  observeFetch(fetch: FetchLike): FetchLike;
}

export interface UpstreamRequestOptions {
  /** Aborting sends `notifications/cancelled` upstream and rejects with the signal's reason. */
  signal?: AbortSignal;
  onprogress?: (progress: { progress: number; total?: number; message?: string }) => void;
  /** None by default: the gateway's timeout policy owns timeouts. */
  timeoutMs?: number;
}

export interface UpstreamEvents {
  state: [status: UpstreamStatus];
  /** A new connection is ready (first or after a reconnect); it holds none of an earlier one's state. */
  connected: [];
  /** After a (re)connect or a list_changed refresh, with the lists whose content changed. */
  catalogChanged: [kinds: CatalogKind[]];
}

interface Catalog {
  tools: Tool[];
  resources: Resource[];
  resourceTemplates: ResourceTemplate[];
  prompts: Prompt[];
}

const DEFAULT_CLIENT_INFO = { name: "toolgate", version: "0.1.0" };
const MAX_PAGES = 100;
/** How long a stdio server may take to answer the era probe before it counts as a 2025 server. */
const STDIO_PROBE_MS = 5_000;
/** What a transport that did not open was waiting for (stdio and Streamable HTTP open at once). */
const OPEN_WAIT: Partial<Record<string, string>> = {
  sse: "the server opened the event stream but sent no `endpoint` event (is this a legacy SSE MCP endpoint?)",
  ws: "the server accepted the connection but did not answer the WebSocket upgrade",
};
/** A connection that lived this long resets the backoff; a crash-looping server keeps backing off. */
const STABLE_CONNECTION_MS = 10_000;
/** Refreshes of one list in a row while notifications keep arriving. */
const MAX_REFRESH_ROUNDS = 5;

export class Upstream extends EventEmitter<UpstreamEvents> {
  readonly name: string;
  #config: UpstreamConfig;
  readonly #options: UpstreamOptions;
  readonly #log: Logger;

  #running = false;
  #state: UpstreamState = "stopped";
  /** The current connection attempt (connecting or ready); events of any other attempt are stale. */
  #attemptToken: object | undefined;
  /** The connection of the current attempt, once connected. */
  #client: UpstreamClient | undefined;
  /**
   * Transports the current attempt opened and no client owns yet: a stop during the handshake closes them, so
   * no stdio child (an `npx` still fetching its package) outlives the gateway.
   */
  readonly #opening = new Set<Transport>();
  #retryTimer: NodeJS.Timeout | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  /** performance.now() of the last message from the upstream: any message proves it alive. */
  #lastHeard = 0;
  #attempt = 0;
  #startedOnce = false;
  #restarts = 0;
  #lastError: string | undefined;
  readonly #stderr = new StderrTail();
  /** Lines of a stdio upstream's stdout that were not JSON-RPC, since the last (re)connect. */
  readonly #noise = new StderrTail();
  /** How the stdio process of the current attempt ended ("exited with code 3"), once it has. */
  #exit: string | undefined;
  #connectedAt: Date | undefined;
  #nextRetryAt: Date | undefined;
  /** Set while a protected upstream has no usable credentials: the command that fixes it. */
  #needsAuthorization: string | undefined;
  #oauth: UpstreamOAuthClient | undefined;
  #protocolVersion: string | undefined;
  #era: ProtocolEra | undefined;
  #serverInfo: Implementation | undefined;
  #capabilities: ServerCapabilities | undefined;
  #instructions: string | undefined;
  #catalog: Catalog = { tools: [], resources: [], resourceTemplates: [], prompts: [] };
  readonly #refreshing = new Set<CatalogKind>();
  readonly #refreshAgain = new Set<CatalogKind>();

  constructor(config: UpstreamConfig, options: UpstreamOptions) {
    super();
    this.name = config.name;
    this.#config = config;
    this.#options = options;
    this.#log = options.log.child({ upstream: config.name });
  }

  get config(): UpstreamConfig {
    return this.#config;
  }

  /** Swap settings that do not need a new connection (prefix, filters, policies, reconnect delays). */
  reconfigure(config: UpstreamConfig): void {
    if (
      config.name !== this.name ||
      !isDeepStrictEqual(config.transport, this.#config.transport) ||
      config.protocol !== this.#config.protocol
    ) {
      throw new GatewayError(
        ErrorCode.Internal,
        `upstream "${this.name}": a new name, transport or protocol needs a new Upstream, not reconfigure()`,
        { upstream: this.name },
      );
    }
    this.#config = config;
  }

  get state(): UpstreamState {
    return this.#state;
  }
  /** Last known lists: kept while the upstream is down, so the catalog stays stable across a restart. */
  get tools(): Tool[] {
    return this.#catalog.tools;
  }
  get resources(): Resource[] {
    return this.#catalog.resources;
  }
  get resourceTemplates(): ResourceTemplate[] {
    return this.#catalog.resourceTemplates;
  }
  get prompts(): Prompt[] {
    return this.#catalog.prompts;
  }
  get capabilities(): ServerCapabilities | undefined {
    return this.#capabilities;
  }
  get instructions(): string | undefined {
    return this.#instructions;
  }

  status(): UpstreamStatus {
    return {
      name: this.name,
      transport: this.#config.transport.type,
      state: this.#state,
      ...(this.#lastError !== undefined && { lastError: this.#lastError }),
      restarts: this.#restarts,
      ...(this.#connectedAt && { connectedAt: this.#connectedAt.toISOString() }),
      ...(this.#protocolVersion && { protocolVersion: this.#protocolVersion }),
      ...(this.#era && { era: this.#era }),
      ...(this.#serverInfo && {
        serverInfo: { name: this.#serverInfo.name, version: this.#serverInfo.version },
      }),
      tools: this.#catalog.tools.length,
      resources: this.#catalog.resources.length,
      prompts: this.#catalog.prompts.length,
      ...(this.#nextRetryAt && { nextRetryAt: this.#nextRetryAt.toISOString() }),
      ...(this.#needsAuthorization && { needsAuthorization: this.#needsAuthorization }),
    };
  }

  /** Connect in the background; failures are retried with backoff until `stop()`. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#attempt = 0;
    void this.#connect();
  }

  /** Resolves true once ready, false on timeout or stop. */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.#state === "ready") return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ready: boolean) => {
        clearTimeout(timer);
        this.off("state", onState);
        resolve(ready);
      };
      const onState = (status: UpstreamStatus) => {
        if (status.state === "ready") done(true);
        else if (status.state === "stopped" && !this.#running) done(false);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.on("state", onState);
    });
  }

  /**
   * Forward any request as is; the result comes back untouched. Every failure is a GatewayError.
   * No async layer of its own: it is on every call's path.
   */
  request(
    method: string,
    params: Record<string, unknown> | undefined,
    options: UpstreamRequestOptions = {},
  ): Promise<Record<string, unknown>> {
    let client: UpstreamClient;
    try {
      client = this.#readyClient();
    } catch (err) {
      return Promise.reject(err);
    }
    const token = this.#attemptToken;
    const { signal, onprogress } = options;
    // Without a timeout of the caller's: NO_TIMEOUT, not the SDK's 60 s default; the JSON-RPC engine arms no
    // timer for it (the timeout policy bounds a call and aborts its signal).
    const sent: ClientRequestOptions = { timeout: options.timeoutMs ?? NO_TIMEOUT };
    if (signal) sent.signal = signal;
    if (onprogress) sent.onprogress = onprogress;
    // A 2026 call carries the tool's `x-mcp-header` arguments as headers: its client needs the definition.
    if (method === "tools/call" && client.era === "2026-07-28") {
      const toolName = params?.name;
      const tool =
        typeof toolName === "string" ? this.#catalog.tools.find((t) => t.name === toolName) : undefined;
      if (tool) sent.tool = tool;
    }
    let answer: Promise<Record<string, unknown>>;
    try {
      answer = client.request(method, params, sent);
    } catch (err) {
      answer = Promise.reject(err);
    }
    return answer.then(this.#heard, (err: unknown) => this.#failed(err, signal, token));
  }

  /** An answer proves the connection alive: the idle health check waits a whole interval again. */
  readonly #heard = (result: Record<string, unknown>): Record<string, unknown> => {
    this.#lastHeard = performance.now();
    return result;
  };

  #failed(err: unknown, signal: AbortSignal | undefined, token: object | undefined): never {
    if (this.#oauth && isScopeRefusal(err)) {
      // 403 insufficient_scope that a refresh could not fix: only a person can grant the wider scope. A
      // refusal of this caller's grant, not a sick upstream: no retry, and no breaker counts it.
      throw new GatewayError(
        ErrorCode.Forbidden,
        `upstream "${this.name}" needs a scope toolgate was not granted; ${this.#oauth.authorizationHint} to consent to it`,
        { upstream: this.name, reachedUpstream: false, cause: err },
      );
    }
    const failure = requestFailure(err, this.name, signal);
    if (failure.connectionBroken && token) this.#lost(token, failure.error.message);
    throw failure.error;
  }

  /** Requests sent and not yet answered on the current connection. */
  pendingRequests(): number {
    return this.#client?.pending() ?? 0;
  }

  /** Send a notification upstream (e.g. `notifications/roots/list_changed`). */
  async notify(method: string, params?: Record<string, unknown>): Promise<void> {
    const client = this.#readyClient();
    const token = this.#attemptToken;
    try {
      await client.notify(method, params);
    } catch (err) {
      const failure = requestFailure(err, this.name);
      if (failure.connectionBroken && token) this.#lost(token, failure.error.message);
      throw failure.error;
    }
  }

  /** Connect now rather than at the next backoff retry (credentials just arrived); no-op unless waiting. */
  reconnectNow(): void {
    if (!this.#running || !this.#retryTimer) return;
    clearTimeout(this.#retryTimer);
    this.#attempt = 0;
    void this.#connect();
  }

  /** Close the connection (a stdio child gets stdin closed, then SIGTERM, then SIGKILL). */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#healthTimer);
    this.#retryTimer = undefined;
    this.#nextRetryAt = undefined;
    this.#connectedAt = undefined;
    const client = this.#client;
    this.#client = undefined;
    this.#attemptToken = undefined;
    this.#setState("stopped");
    const opening = [...this.#opening];
    this.#opening.clear();
    await Promise.all([client?.close(), ...opening.map((t) => t.close())].map((p) => p?.catch(() => {})));
  }

  #readyClient(): UpstreamClient {
    const client = this.#client;
    if (this.#state === "ready" && client) return client;
    const why = this.#lastError ? `; last error: ${this.#lastError}` : "";
    throw new GatewayError(
      ErrorCode.UpstreamUnavailable,
      `upstream "${this.name}" is ${this.#state}${why}; ${untilReady(this.#state, this.#nextRetryAt?.toISOString())}`,
      { upstream: this.name, reachedUpstream: false },
    );
  }

  async #connect(): Promise<void> {
    this.#retryTimer = undefined;
    this.#nextRetryAt = undefined;
    if (!this.#running) return;
    const token = {};
    this.#attemptToken = token;
    this.#client = undefined;
    this.#stderr.clear();
    this.#noise.clear();
    this.#exit = undefined;
    const oauth = this.#options.oauthFor?.(this.name, this.#config.transport);
    this.#oauth = oauth;
    if (this.#startedOnce) this.#restarts++;
    this.#startedOnce = true;
    // Only a first start is "connecting": after a failure the upstream is down, with its last error, until
    // it is ready again (a retry that hangs at initialize must not look healthy).
    this.#setState(this.#lastError === undefined ? "connecting" : "down");
    let client: UpstreamClient | undefined;
    let phase = "initialize";
    const timeout = this.#config.connectTimeoutMs;
    this.#opening.clear();
    try {
      if (oauth && !(await oauth.hasCredentials())) throw new UnauthorizedError("no stored credentials");
      client = await this.#open(token, timeout, oauth);
      if (this.#attemptToken !== token) {
        void client.close().catch(() => {});
        return;
      }
      // The client owns its transport now (a failed handshake closed its own).
      this.#opening.clear();
      this.#client = client;
      phase = "discovery (tools/resources/prompts lists)";
      const catalog = await this.#discover(client, timeout);
      if (this.#attemptToken !== token) return;
      const changed = changedKinds(this.#catalog, catalog);
      this.#catalog = catalog;
      this.#protocolVersion = client.protocolVersion;
      this.#era = client.era;
      this.#serverInfo = client.serverInfo;
      this.#capabilities = client.capabilities;
      this.#instructions = client.instructions;
      this.#lastError = undefined;
      this.#needsAuthorization = undefined;
      this.#connectedAt = new Date();
      this.#log.info("upstream ready", {
        protocolVersion: client.protocolVersion,
        era: client.era,
        server: this.#serverInfo,
        tools: catalog.tools.length,
        restarts: this.#restarts,
      });
      this.#setState("ready");
      this.#lastHeard = performance.now();
      this.#scheduleHealthCheck(token, this.#config.healthCheck.intervalMs);
      if (changed.length) this.emit("catalogChanged", changed);
      // After the catalog is rebuilt: what sessions subscribed to is found under this upstream again.
      this.emit("connected");
    } catch (err) {
      if (err instanceof UnauthorizedError && oauth) {
        // No token, a revoked refresh token, or a scope only a person can grant: calls fail fast naming the fix.
        this.#needsAuthorization = oauth.loginCommand;
        this.#lost(token, `needs authorization: ${oauth.authorizationHint}`, client);
        return;
      }
      const code = (err as { code?: unknown })?.code;
      const reason =
        code === RpcCode.ConnectionClosed
          ? this.#closedMessage()
          : code === RpcCode.RequestTimeout
            ? `${phase} got no answer within ${timeout} ms (upstreams.${this.name}.connectTimeoutMs)${this.#noiseNote()}`
            : err instanceof OpenTimeoutError
              ? `${err.message} (upstreams.${this.name}.connectTimeoutMs)${openWait(this.#config.transport.type)}`
              : describeFailure(err);
      const hint = !oauth && asksForAuthorization(err) ? `; ${this.#authorizationHint()}` : "";
      this.#lost(token, reason + hint, client);
    }
  }

  /**
   * Connect in the era the upstream speaks, learned afresh on every (re)connect: `auto` probes with
   * `server/discover` (2026-07-28) and falls back to `initialize` (2025-11-25); a pinned era does not probe.
   */
  async #open(
    token: object,
    timeout: number,
    oauth: UpstreamOAuthClient | undefined,
  ): Promise<UpstreamClient> {
    const transport = mcpTransport(this.#config);
    const setting = this.#config.protocol;
    const hooks: TransportHooks = {
      onExit: (code, signal) => {
        this.#exit = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      },
      onStderr: (line) => {
        this.#stderr.push(line);
        this.#log.info("upstream stderr", { stderr: line });
      },
      onNoise: (line) => {
        // Warned once per connection: a server that logs to stdout does so on every call.
        if (this.#noise.lines().length === 0)
          this.#log.warn("upstream wrote a line to stdout that is not JSON-RPC; skipped", {
            line,
            hint: "a stdio MCP server writes only protocol messages to stdout and logs to stderr",
          });
        this.#noise.push(line);
      },
      authProvider: oauth,
    };
    const events = this.#events(token);
    const clientInfo = this.#options.clientInfo ?? DEFAULT_CLIENT_INFO;
    const create = (): Transport => {
      // A stop between two steps of the handshake: nothing new is started.
      if (this.#attemptToken !== token) throw new Error("the upstream was stopped while connecting");
      const created = createSdkTransport(transport, hooks);
      this.#opening.add(created);
      return created;
    };
    if (setting !== "2025-11-25" && transport.type === "stdio") {
      const raw = create();
      const verdict = await probeStdio(raw, clientInfo, Math.min(timeout, STDIO_PROBE_MS));
      if (verdict.kind === "modern") {
        const probed = { transport: forClient(raw), discover: verdict.discover };
        const modern = await connectModern(transport, setting, events, clientInfo, timeout, probed);
        if (modern) return modern;
      } else if (setting === "2026-07-28") {
        await raw.close().catch(() => {});
        const why =
          verdict.kind === "exited" ? "the process exited on server/discover" : "no 2026-07-28 answer";
        throw new Error(`protocol "2026-07-28" is configured, but the server does not speak it (${why})`);
      } else if (verdict.kind === "legacy") {
        return connectLegacy(raw, events, clientInfo, timeout);
      }
      // The process exited on the probe: a 2025 server that allows nothing before initialize gets a fresh one.
    } else if (setting === "2026-07-28" || (setting === "auto" && modernCapable(transport))) {
      const modern = await connectModern(transport, setting, events, clientInfo, timeout, undefined, oauth);
      if (modern) return modern;
      this.#log.debug("upstream does not speak 2026-07-28; connecting with initialize");
    }
    return connectLegacy(create(), events, clientInfo, timeout);
  }

  #events(token: object): ClientEvents {
    return {
      onServerRequest: async (request, signal) => {
        const hook = this.#options.onServerRequest;
        if (!hook) {
          throw Object.assign(new Error(`toolgate has no client to answer ${request.method}`), {
            code: RpcCode.MethodNotFound,
          });
        }
        return hook(this, request, { signal });
      },
      onNotification: (notification) => {
        this.#lastHeard = performance.now();
        this.#options.onNotification?.(this, notification);
      },
      onListChanged: (kind) => void this.#refresh(token, kind),
      onClose: () => this.#lost(token, this.#closedMessage()),
      onError: (err) => {
        this.#log.debug("upstream transport error", { error: err.message });
        this.#lost(token, `the event stream broke: ${err.message}`);
      },
    };
  }

  /** The connection of attempt `token` failed or closed: drop it and reconnect. Stale attempts are ignored. */
  #lost(token: object, reason: string, connecting?: UpstreamClient): void {
    if (this.#attemptToken !== token) return;
    const client = this.#client ?? connecting;
    this.#attemptToken = undefined;
    this.#client = undefined;
    clearTimeout(this.#healthTimer);
    const uptime = this.#connectedAt ? Date.now() - this.#connectedAt.getTime() : 0;
    if (uptime >= STABLE_CONNECTION_MS) this.#attempt = 0;
    this.#connectedAt = undefined;
    this.#lastError = reason;
    void client?.close(reason).catch(() => {});
    if (!this.#running) return;
    const delay = backoffDelay(this.#attempt++, this.#config.reconnect);
    this.#nextRetryAt = new Date(Date.now() + delay);
    this.#retryTimer = setTimeout(() => void this.#connect(), delay);
    // Reconnecting alone must not keep the process alive; the gateway's server does.
    this.#retryTimer.unref();
    this.#log.warn("upstream down", { error: this.#lastError, retryInMs: delay });
    this.#setState("down");
  }

  /**
   * Health checks of network upstreams: an idle connection shows a dead server only when something is sent,
   * so after `healthCheck.intervalMs` without a message from the upstream, an MCP `ping` is sent. A ping
   * that fails or times out marks the upstream down and starts the reconnect. A stdio child's death is seen
   * at once (its exit), and a busy single-threaded child must not be killed for a late pong: none there.
   */
  #scheduleHealthCheck(token: object, delayMs: number): void {
    const { intervalMs } = this.#config.healthCheck;
    if (intervalMs <= 0 || this.#config.transport.type === "stdio") return;
    clearTimeout(this.#healthTimer);
    this.#healthTimer = setTimeout(() => void this.#healthCheck(token), delayMs);
    this.#healthTimer.unref();
  }

  async #healthCheck(token: object): Promise<void> {
    const client = this.#client;
    if (this.#attemptToken !== token || !client || this.#state !== "ready") return;
    const { intervalMs, timeoutMs } = this.#config.healthCheck;
    const quiet = performance.now() - this.#lastHeard;
    // Traffic proved it alive lately: look again when the connection has been quiet for a whole interval.
    if (quiet < intervalMs) return this.#scheduleHealthCheck(token, intervalMs - quiet);
    try {
      await client.request("ping", undefined, { timeout: timeoutMs });
      this.#lastHeard = performance.now();
    } catch (err) {
      // Any JSON-RPC answer, even an error, comes from a live server. The SDKs' own -32000/-32001 do not, nor
      // does an HTTP status: a proxy's 502 in front of a dead server, a 404 for a session it forgot.
      if (!isJsonRpcAnswer(err)) {
        const why = isLocalTimeout(err)
          ? `no answer within ${timeoutMs} ms (upstreams.${this.name}.healthCheck.timeoutMs)`
          : requestFailure(err, this.name).error.message;
        this.#lost(token, `health check ping failed: ${why}`);
        return;
      }
    }
    this.#scheduleHealthCheck(token, intervalMs);
  }

  #closedMessage(): string {
    if (this.#config.transport.type !== "stdio") return "connection closed";
    const lines = this.#stderr.lines();
    const exited = `the process ${this.#exit ?? "exited"}`;
    return (lines.length ? `${exited}; its last stderr:\n${lines.join("\n")}` : exited) + this.#noiseNote();
  }

  /** What to do about an upstream without OAuth configured that answered 401. */
  #authorizationHint(): string {
    const headers = "headers" in this.#config.transport ? this.#config.transport.headers : {};
    const sent = Object.keys(headers).some((h) => h.toLowerCase() === "authorization");
    return sent
      ? `the server refused the Authorization header in mcpServers.${this.name}.headers (HTTP 401)`
      : `the server asks for authorization (HTTP 401): add "auth": { "oauth": {} } to mcpServers.${this.name} and run ` +
          `\`toolgate auth login ${this.name}\`, or give a token in its "headers"`;
  }

  /** What a stdio upstream wrote to stdout that was not JSON-RPC, for a failure's message. */
  #noiseNote(): string {
    const lines = this.#noise.lines().slice(-3);
    if (!lines.length) return "";
    return `; its stdout had lines that are not JSON-RPC (a stdio server must log to stderr), the last: ${lines.map((l) => JSON.stringify(l)).join(", ")}`;
  }

  #setState(state: UpstreamState): void {
    this.#state = state;
    this.emit("state", this.status());
  }

  async #discover(client: UpstreamClient, timeout: number): Promise<Catalog> {
    const caps = client.capabilities ?? {};
    const list = <T>(method: string, key: string, schema: z.ZodType<T>, declared: unknown) =>
      declared ? this.#listAll(client, method, key, schema, timeout) : Promise.resolve([]);
    const [tools, resources, resourceTemplates, prompts] = await Promise.all([
      list("tools/list", "tools", ToolSchema, caps.tools),
      list("resources/list", "resources", ResourceSchema, caps.resources),
      list("resources/templates/list", "resourceTemplates", ResourceTemplateSchema, caps.resources),
      list("prompts/list", "prompts", PromptSchema, caps.prompts),
    ]);
    return { tools, resources, resourceTemplates, prompts };
  }

  /** Follow `nextCursor` to the end (bounded); a list the server does not implement is empty. */
  async #listAll<T>(
    client: UpstreamClient,
    method: string,
    key: string,
    schema: z.ZodType<T>,
    timeout: number,
  ): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    if (method === "tools/list" && client.listTools) {
      for (const item of await client.listTools(timeout)) {
        const parsed = schema.safeParse(item);
        if (parsed.success) items.push(parsed.data);
        else this.#log.warn(`skipping an invalid entry of ${method}`, { entry: item });
      }
      return items;
    }
    try {
      for (let page = 0; page < MAX_PAGES; page++) {
        const started = performance.now();
        const result = await client
          .request(method, cursor !== undefined ? { cursor } : undefined, { timeout })
          .catch((err: unknown) => {
            this.#options.onDiscovery?.(this, method, performance.now() - started, err);
            throw err;
          });
        this.#options.onDiscovery?.(this, method, performance.now() - started);
        const list = result[key];
        for (const item of Array.isArray(list) ? list : []) {
          const parsed = schema.safeParse(item);
          if (parsed.success) items.push(parsed.data);
          else this.#log.warn(`skipping an invalid entry of ${method}`, { entry: item });
        }
        cursor = typeof result.nextCursor === "string" && result.nextCursor ? result.nextCursor : undefined;
        if (cursor === undefined) return items;
      }
    } catch (err) {
      if ((err as { code?: unknown })?.code === RpcCode.MethodNotFound) return [];
      throw err;
    }
    this.#log.warn(`${method} has more than ${MAX_PAGES} pages; the rest is ignored`);
    return items;
  }

  /** Re-list one kind after a list_changed notification; refreshes of one kind never overlap. */
  async #refresh(token: object, kind: CatalogKind): Promise<void> {
    if (this.#attemptToken !== token) return;
    if (this.#refreshing.has(kind)) {
      this.#refreshAgain.add(kind);
      return;
    }
    this.#refreshing.add(kind);
    try {
      // During the handshake the discovery in progress may have read the old list: wait for it.
      if (this.#state !== "ready" && !(await this.whenReady(this.#config.connectTimeoutMs))) return;
      const client = this.#client;
      if (this.#attemptToken !== token || !client) return;
      for (let round = 0; round < MAX_REFRESH_ROUNDS; round++) {
        this.#refreshAgain.delete(kind);
        const timeout = this.#config.connectTimeoutMs;
        const next = { ...this.#catalog };
        if (kind === "tools")
          next.tools = await this.#listAll(client, "tools/list", "tools", ToolSchema, timeout);
        if (kind === "prompts") {
          next.prompts = await this.#listAll(client, "prompts/list", "prompts", PromptSchema, timeout);
        }
        if (kind === "resources") {
          next.resources = await this.#listAll(
            client,
            "resources/list",
            "resources",
            ResourceSchema,
            timeout,
          );
          next.resourceTemplates = await this.#listAll(
            client,
            "resources/templates/list",
            "resourceTemplates",
            ResourceTemplateSchema,
            timeout,
          );
        }
        if (this.#attemptToken !== token) return;
        const changed = changedKinds(this.#catalog, next);
        this.#catalog = next;
        if (changed.length) {
          this.#log.info("upstream catalog changed", { kinds: changed, tools: next.tools.length });
          this.emit("state", this.status());
          this.emit("catalogChanged", changed);
        }
        if (!this.#refreshAgain.has(kind)) return;
      }
    } catch (err) {
      // The connection went away under it (stopped or lost): that is reported where it happens.
      if (this.#attemptToken !== token) return;
      this.#log.warn(`refreshing ${kind} failed; keeping the previous list`, {
        error: err instanceof Error ? err.message : String(err),
      });
    } finally {
      this.#refreshing.delete(kind);
    }
  }
}

/** What the transport of `type` waited for when it did not open, as a suffix of the error ("" if not known). */
function openWait(type: string): string {
  const what = OPEN_WAIT[type];
  return what ? `: ${what}` : "";
}

/** The registry gives `openapi` upstreams to the OpenAPI adapter; one reaching here is a bug. */

function mcpTransport(config: UpstreamConfig): McpTransportConfig {
  if (config.transport.type === "openapi") {
    throw new GatewayError(ErrorCode.Internal, `upstream "${config.name}" is an OpenAPI upstream, not MCP`);
  }
  return config.transport;
}

function changedKinds(before: Catalog, after: Catalog): CatalogKind[] {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const kinds: CatalogKind[] = [];
  if (!same(before.tools, after.tools)) kinds.push("tools");
  if (!same(before.resources, after.resources) || !same(before.resourceTemplates, after.resourceTemplates)) {
    kinds.push("resources");
  }
  if (!same(before.prompts, after.prompts)) kinds.push("prompts");
  return kinds;
}

/** A 403 of the upstream's authorization (insufficient scope), from the 2025 (v1) or the 2026 (v2) client. */
function isScopeRefusal(err: unknown): boolean {
  if (err instanceof StreamableHTTPError) return err.code === 403;
  return err instanceof InsufficientScopeError || (err instanceof SdkHttpError && err.status === 403);
}
