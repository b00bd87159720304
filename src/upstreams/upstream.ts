/**
 * One configured upstream MCP server: connect and handshake, discover its catalog, forward requests raw,
 * and keep the connection alive (reconnect with backoff, restart a dead stdio process). `start()` never
 * throws and never blocks: failures show in `status()` and in the `state` event.
 */
import { EventEmitter } from "node:events";
import { isDeepStrictEqual } from "node:util";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SseError } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  type ClientCapabilities,
  type Implementation,
  McpError,
  type Prompt,
  PromptListChangedNotificationSchema,
  PromptSchema,
  type Resource,
  ResourceListChangedNotificationSchema,
  ResourceSchema,
  type ResourceTemplate,
  ResourceTemplateSchema,
  type Result,
  ResultSchema,
  type ServerCapabilities,
  type Tool,
  ToolListChangedNotificationSchema,
  ToolSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { z } from "zod";
import type { McpTransportConfig, UpstreamConfig } from "../config/load.ts";
import { ErrorCode, GatewayError, RpcCode, toWire } from "../errors.ts";
import type { Logger } from "../telemetry/log.ts";
import { backoffDelay } from "./backoff.ts";
import { describeFailure, requestFailure } from "./request-error.ts";
import { StderrTail } from "./stderr-tail.ts";
import { createTransport } from "./transports.ts";

export type UpstreamState = "connecting" | "ready" | "down" | "stopped";
export type CatalogKind = "tools" | "resources" | "prompts";

export interface UpstreamStatus {
  name: string;
  transport: UpstreamConfig["transport"]["type"];
  state: UpstreamState;
  lastError?: string;
  /** Times the upstream was started again after a failure: a new process, or a new connection attempt. */
  restarts: number;
  connectedAt?: string;
  protocolVersion?: string;
  serverInfo?: { name: string; version: string };
  tools: number;
  resources: number;
  prompts: number;
  nextRetryAt?: string;
  /** An OAuth-protected upstream without usable credentials: what a person runs to authorize it. */
  needsAuthorization?: string;
  /** auth.oauth.perPrincipal: the principals' own connections open now (the gateway fills it in). */
  principalConnections?: number;
}

export interface ServerRequest {
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
  /** After a (re)connect or a list_changed refresh, with the lists whose content changed. */
  catalogChanged: [kinds: CatalogKind[]];
}

interface Catalog {
  tools: Tool[];
  resources: Resource[];
  resourceTemplates: ResourceTemplate[];
  prompts: Prompt[];
}

/** Declared so upstreams may use them; the gateway answers through `onServerRequest`. */
const CLIENT_CAPABILITIES: ClientCapabilities = {
  sampling: {},
  elicitation: { form: {} },
  roots: { listChanged: true },
};

const DEFAULT_CLIENT_INFO = { name: "toolgate", version: "0.1.0" };
/** The SDK applies 60 s when no timeout is given; this is the largest value setTimeout accepts. */
const NO_TIMEOUT_MS = 2 ** 31 - 1;
const MAX_PAGES = 100;
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
  /** The client of the current attempt (connecting or ready); any other client's events are stale. */
  #client: Client | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  /** performance.now() of the last message from the upstream: any message proves it alive. */
  #lastHeard = 0;
  #attempt = 0;
  #startedOnce = false;
  #restarts = 0;
  #lastError: string | undefined;
  readonly #stderr = new StderrTail();
  #connectedAt: Date | undefined;
  #nextRetryAt: Date | undefined;
  /** Set while a protected upstream has no usable credentials: the command that fixes it. */
  #needsAuthorization: string | undefined;
  #oauth: UpstreamOAuthClient | undefined;
  #protocolVersion: string | undefined;
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
    if (config.name !== this.name || !isDeepStrictEqual(config.transport, this.#config.transport)) {
      throw new GatewayError(
        ErrorCode.Internal,
        `upstream "${this.name}": a new name or transport needs a new Upstream, not reconfigure()`,
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

  /** Forward any request as is; the result comes back untouched. Every failure is a GatewayError. */
  async request(
    method: string,
    params: Record<string, unknown> | undefined,
    options: UpstreamRequestOptions = {},
  ): Promise<Record<string, unknown>> {
    const client = this.#readyClient();
    // The id Protocol.request is about to take (it reads and increments this counter synchronously).
    const id = (client as unknown as SdkProtocolInternals)._requestMessageId;
    try {
      return await client.request({ method, ...(params && { params }) }, ResultSchema, {
        ...(options.signal && { signal: options.signal }),
        ...(options.onprogress && { onprogress: options.onprogress }),
        timeout: options.timeoutMs ?? NO_TIMEOUT_MS,
      });
    } catch (err) {
      forgetRequest(client, id);
      if (this.#oauth && err instanceof StreamableHTTPError && err.code === 403) {
        // 403 insufficient_scope that a refresh could not fix: only a person can grant the wider scope. A
        // refusal of this caller's grant, not a sick upstream: no retry, and no breaker counts it.
        throw new GatewayError(
          ErrorCode.Forbidden,
          `upstream "${this.name}" needs a scope toolgate was not granted; ${this.#oauth.authorizationHint} to consent to it`,
          { upstream: this.name, reachedUpstream: false, cause: err },
        );
      }
      const failure = requestFailure(err, this.name, options.signal);
      if (failure.connectionBroken) this.#lost(client, failure.error.message);
      throw failure.error;
    }
  }

  /** Requests sent and not yet answered on the current connection. */
  pendingRequests(): number {
    const client = this.#client as unknown as SdkProtocolInternals | undefined;
    return client?._responseHandlers.size ?? 0;
  }

  /** Send a notification upstream (e.g. `notifications/roots/list_changed`). */
  async notify(method: string, params?: Record<string, unknown>): Promise<void> {
    const client = this.#readyClient();
    try {
      await client.notification({ method, ...(params && { params }) });
    } catch (err) {
      const failure = requestFailure(err, this.name);
      if (failure.connectionBroken) this.#lost(client, failure.error.message);
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
    this.#setState("stopped");
    if (client) await client.close().catch(() => {});
  }

  #readyClient(): Client {
    const client = this.#client;
    if (this.#state === "ready" && client) return client;
    const why = this.#lastError ? `; last error: ${this.#lastError}` : "";
    const retry = this.#nextRetryAt ? `; next retry at ${this.#nextRetryAt.toISOString()}` : "";
    throw new GatewayError(
      ErrorCode.UpstreamUnavailable,
      `upstream "${this.name}" is ${this.#state}${why}${retry}`,
      { upstream: this.name, reachedUpstream: false },
    );
  }

  async #connect(): Promise<void> {
    this.#retryTimer = undefined;
    this.#nextRetryAt = undefined;
    if (!this.#running) return;
    const client = this.#createClient();
    this.#client = client;
    this.#stderr.clear();
    const oauth = this.#options.oauthFor?.(this.name, this.#config.transport);
    this.#oauth = oauth;
    if (this.#startedOnce) this.#restarts++;
    this.#startedOnce = true;
    // Only a first start is "connecting": after a failure the upstream is down, with its last error, until
    // it is ready again (a retry that hangs at initialize must not look healthy).
    this.#setState(this.#lastError === undefined ? "connecting" : "down");
    let protocolVersion: string | undefined;
    let connected = false;
    const timeout = this.#config.connectTimeoutMs;
    try {
      if (oauth && !(await oauth.hasCredentials())) throw new UnauthorizedError("no stored credentials");
      const transport = createTransport(mcpTransport(this.#config), {
        onStderr: (line) => {
          this.#stderr.push(line);
          this.#log.info("upstream stderr", { stderr: line });
        },
        onWarning: (message) => this.#log.warn(message),
        authProvider: oauth,
      });
      // Protocol.connect keeps a pre-set onmessage and calls it first: the one place the negotiated
      // protocol version is visible for every transport.
      transport.onmessage = (message) => {
        this.#lastHeard = performance.now();
        protocolVersion ??= negotiatedVersion(message);
      };
      // While connecting, the failure reaches the catch below with its real cause; the SDK's own close on a
      // failed handshake would otherwise report a bare "connection closed" first.
      client.onclose = () => {
        if (connected) this.#lost(client, this.#closedMessage());
      };
      client.onerror = (err) => {
        this.#log.debug("upstream transport error", { error: err.message });
        // The SDK leaves a request whose SSE response stream was cut waiting forever (and a legacy SSE
        // stream's requests die with it): a fresh connection fails them now with ConnectionLost.
        if (connected && (err instanceof SseError || err.message.startsWith("SSE stream disconnected"))) {
          this.#lost(client, `the event stream broke: ${err.message}`);
        }
      };
      await client.connect(transport, { timeout });
      connected = true;
      const catalog = await this.#discover(client, timeout);
      if (this.#client !== client) return;
      const changed = changedKinds(this.#catalog, catalog);
      this.#catalog = catalog;
      this.#protocolVersion = protocolVersion;
      this.#serverInfo = client.getServerVersion();
      this.#capabilities = client.getServerCapabilities();
      this.#instructions = client.getInstructions();
      this.#lastError = undefined;
      this.#needsAuthorization = undefined;
      this.#connectedAt = new Date();
      this.#log.info("upstream ready", {
        protocolVersion,
        server: this.#serverInfo,
        tools: catalog.tools.length,
        restarts: this.#restarts,
      });
      this.#setState("ready");
      this.#lastHeard = performance.now();
      this.#scheduleHealthCheck(client, this.#config.healthCheck.intervalMs);
      if (changed.length) this.emit("catalogChanged", changed);
    } catch (err) {
      if (err instanceof UnauthorizedError && oauth) {
        // No token, a revoked refresh token, or a scope only a person can grant: calls fail fast naming the fix.
        this.#needsAuthorization = oauth.loginCommand;
        this.#lost(client, `needs authorization: ${oauth.authorizationHint}`);
        return;
      }
      const closed = err instanceof McpError && err.code === RpcCode.ConnectionClosed;
      const timedOut = err instanceof McpError && err.code === RpcCode.RequestTimeout;
      const phase = connected ? "discovery (tools/resources/prompts lists)" : "initialize";
      const reason = closed
        ? this.#closedMessage()
        : timedOut
          ? `${phase} got no answer within ${timeout} ms (upstreams.${this.name}.connectTimeoutMs)`
          : describeFailure(err);
      this.#lost(client, reason);
    }
  }

  /** The connection of `client` failed or closed: drop it and schedule a reconnect. Stale clients are ignored. */
  #lost(client: Client, reason: string): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    clearTimeout(this.#healthTimer);
    const uptime = this.#connectedAt ? Date.now() - this.#connectedAt.getTime() : 0;
    if (uptime >= STABLE_CONNECTION_MS) this.#attempt = 0;
    this.#connectedAt = undefined;
    this.#lastError = reason;
    void client.close().catch(() => {});
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
  #scheduleHealthCheck(client: Client, delayMs: number): void {
    const { intervalMs } = this.#config.healthCheck;
    if (intervalMs <= 0 || this.#config.transport.type === "stdio") return;
    clearTimeout(this.#healthTimer);
    this.#healthTimer = setTimeout(() => void this.#healthCheck(client), delayMs);
    this.#healthTimer.unref();
  }

  async #healthCheck(client: Client): Promise<void> {
    if (this.#client !== client || this.#state !== "ready") return;
    const { intervalMs, timeoutMs } = this.#config.healthCheck;
    const quiet = performance.now() - this.#lastHeard;
    // Traffic proved it alive lately: look again when the connection has been quiet for a whole interval.
    if (quiet < intervalMs) return this.#scheduleHealthCheck(client, intervalMs - quiet);
    const id = (client as unknown as SdkProtocolInternals)._requestMessageId;
    try {
      await client.request({ method: "ping" }, ResultSchema, { timeout: timeoutMs });
    } catch (err) {
      forgetRequest(client, id);
      const code = err instanceof McpError ? err.code : undefined;
      // Any JSON-RPC answer, even an error, comes from a live server; the SDK's own -32000/-32001 do not.
      if (code === undefined || code === RpcCode.RequestTimeout || code === RpcCode.ConnectionClosed) {
        const why =
          code === RpcCode.RequestTimeout
            ? `no answer within ${timeoutMs} ms (upstreams.${this.name}.healthCheck.timeoutMs)`
            : describeFailure(err);
        this.#lost(client, `health check ping failed: ${why}`);
        return;
      }
    }
    this.#scheduleHealthCheck(client, intervalMs);
  }

  #closedMessage(): string {
    if (this.#config.transport.type !== "stdio") return "connection closed";
    const lines = this.#stderr.lines();
    return lines.length ? `the process exited; its last stderr:\n${lines.join("\n")}` : "the process exited";
  }

  #setState(state: UpstreamState): void {
    this.#state = state;
    this.emit("state", this.status());
  }

  #createClient(): Client {
    const client = new Client(this.#options.clientInfo ?? DEFAULT_CLIENT_INFO, {
      capabilities: CLIENT_CAPABILITIES,
    });
    client.fallbackRequestHandler = async (request, extra) => {
      const hook = this.#options.onServerRequest;
      if (!hook) {
        throw rpcError(RpcCode.MethodNotFound, `toolgate has no client to answer ${request.method}`);
      }
      try {
        return (await hook(this, pick(request), { signal: extra.signal })) as Result;
      } catch (err) {
        throw answerError(err);
      }
    };
    client.fallbackNotificationHandler = async (notification) => {
      this.#options.onNotification?.(this, pick(notification));
    };
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => this.#refresh(client, "tools"));
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () =>
      this.#refresh(client, "resources"),
    );
    client.setNotificationHandler(PromptListChangedNotificationSchema, () =>
      this.#refresh(client, "prompts"),
    );
    return client;
  }

  async #discover(client: Client, timeout: number): Promise<Catalog> {
    const caps = client.getServerCapabilities() ?? {};
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
    client: Client,
    method: string,
    key: string,
    schema: z.ZodType<T>,
    timeout: number,
  ): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    try {
      for (let page = 0; page < MAX_PAGES; page++) {
        const started = performance.now();
        const result = await client
          .request({ method, ...(cursor !== undefined && { params: { cursor } }) }, ResultSchema, { timeout })
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
      if (err instanceof McpError && err.code === RpcCode.MethodNotFound) return [];
      throw err;
    }
    this.#log.warn(`${method} has more than ${MAX_PAGES} pages; the rest is ignored`);
    return items;
  }

  /** Re-list one kind after a list_changed notification; refreshes of one kind never overlap. */
  async #refresh(client: Client, kind: CatalogKind): Promise<void> {
    if (this.#client !== client) return;
    if (this.#refreshing.has(kind)) {
      this.#refreshAgain.add(kind);
      return;
    }
    this.#refreshing.add(kind);
    try {
      // During the handshake the discovery in progress may have read the old list: wait for it.
      if (this.#state !== "ready" && !(await this.whenReady(this.#config.connectTimeoutMs))) return;
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
        if (this.#client !== client) return;
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
      this.#log.warn(`refreshing ${kind} failed; keeping the previous list`, {
        error: err instanceof Error ? err.message : String(err),
      });
    } finally {
      this.#refreshing.delete(kind);
    }
  }
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

/** The protocolVersion of an initialize result, if this message is one. */
function negotiatedVersion(message: unknown): string | undefined {
  const result = (message as { result?: { protocolVersion?: unknown; serverInfo?: unknown } }).result;
  return result?.serverInfo && typeof result.protocolVersion === "string"
    ? result.protocolVersion
    : undefined;
}

/** The SDK answers with `code`, `message` and `data` of what is thrown (McpError would prefix its message). */
function rpcError(code: number, message: string, data?: unknown): Error {
  return Object.assign(new Error(message), { code, data });
}

/** A downstream client's JSON-RPC error passes through as is; any other failure in its wire form. */
function answerError(err: unknown): Error {
  if (err instanceof McpError)
    return rpcError(err.code, err.message.replace(/^MCP error -?\d+: /, ""), err.data);
  const wire = toWire(err);
  return rpcError(wire.code, wire.message, wire.data);
}

function pick(message: { method: string; params?: Record<string, unknown> }): ServerRequest {
  return message.params === undefined
    ? { method: message.method }
    : { method: message.method, params: message.params };
}

/** Private state of the SDK's Protocol that `forgetRequest` repairs. */
interface SdkProtocolInternals {
  _requestMessageId: number;
  _responseHandlers: Map<number, unknown>;
  _progressHandlers: Map<number, unknown>;
}

/**
 * SDK 1.32's Protocol.request keeps the response and progress handlers of a request whose send failed
 * (HTTP 503, refused connection): with a flapping upstream they pile up without bound. A settled request
 * has no use for them; deleting is a no-op when the SDK already did.
 */
function forgetRequest(client: Client, id: number): void {
  const internals = client as unknown as SdkProtocolInternals;
  internals._responseHandlers.delete(id);
  internals._progressHandlers.delete(id);
}
