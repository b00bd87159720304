/**
 * An HTTP API as an upstream: the OpenAPI document (or declared endpoints) loaded once, each operation a
 * tool, each `tools/call` one HTTP request. It has the surface of an MCP upstream (handle.ts), so the
 * catalog, pinning, validation, status page and every policy treat it like one. "Ready" means the document
 * is loaded; a document that fails to load (an unreachable spec URL) is retried with the reconnect backoff.
 * Above `compactThreshold` operations, three meta-tools (compact.ts) stand in for the operations.
 */
import { EventEmitter } from "node:events";
import { isDeepStrictEqual } from "node:util";
import type {
  Prompt,
  Resource,
  ResourceTemplate,
  ServerCapabilities,
  Tool,
} from "@modelcontextprotocol/sdk/types.js";
import type { UpstreamConfig } from "../../config/load.ts";
import type { OpenApiTransport } from "../../config/openapi-schema.ts";
import { ErrorCode, GatewayError, RpcCode } from "../../errors.ts";
import type { Logger } from "../../telemetry/log.ts";
import { backoffDelay } from "../backoff.ts";
import type { UpstreamHandle } from "../handle.ts";
import { describeFailure } from "../request-error.ts";
import type { UpstreamEvents, UpstreamRequestOptions, UpstreamState, UpstreamStatus } from "../upstream.ts";
import { Credentials } from "./auth.ts";
import { CompactTools, INVOKE_TOOL } from "./compact.ts";
import { callOperation } from "./http-call.ts";
import { loadDocument } from "./load.ts";
import { type OperationPlan, planOperations } from "./operations.ts";

export interface OpenApiUpstreamOptions {
  log: Logger;
}

const CAPABILITIES: ServerCapabilities = { tools: {} };

export class OpenApiUpstream extends EventEmitter<UpstreamEvents> implements UpstreamHandle {
  readonly name: string;
  #config: UpstreamConfig;
  readonly #transport: OpenApiTransport;
  readonly #log: Logger;
  readonly #credentials: Credentials;
  readonly #idempotencyKeys = new WeakMap<object, string>();
  #running = false;
  #state: UpstreamState = "stopped";
  #generation = 0;
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;
  #loadedAt: Date | undefined;
  #nextRetryAt: Date | undefined;
  #restarts = 0;
  #info: { name: string; version: string } | undefined;
  #plans = new Map<string, OperationPlan>();
  #tools: Tool[] = [];
  #compact: CompactTools | undefined;

  constructor(config: UpstreamConfig, options: OpenApiUpstreamOptions) {
    super();
    if (config.transport.type !== "openapi") {
      throw new GatewayError(ErrorCode.Internal, `upstream "${config.name}" is not an OpenAPI upstream`);
    }
    this.name = config.name;
    this.#config = config;
    this.#transport = config.transport;
    this.#log = options.log.child({ upstream: config.name });
    this.#credentials = new Credentials(config.transport.auth);
  }

  get config(): UpstreamConfig {
    return this.#config;
  }

  reconfigure(config: UpstreamConfig): void {
    if (config.name !== this.name || !isDeepStrictEqual(config.transport, this.#config.transport)) {
      throw new GatewayError(ErrorCode.Internal, `upstream "${this.name}": a new spec needs a new upstream`, {
        upstream: this.name,
      });
    }
    this.#config = config;
  }

  get state(): UpstreamState {
    return this.#state;
  }
  get tools(): Tool[] {
    return this.#tools;
  }
  get resources(): Resource[] {
    return [];
  }
  get resourceTemplates(): ResourceTemplate[] {
    return [];
  }
  get prompts(): Prompt[] {
    return [];
  }
  get capabilities(): ServerCapabilities | undefined {
    return this.#state === "ready" ? CAPABILITIES : undefined;
  }
  get instructions(): string | undefined {
    return undefined;
  }
  /** Compact mode: the operations behind the invoke meta-tool (the catalog gives each its own policies). */
  get operations(): { invokeTool: string; tools: readonly Tool[] } | undefined {
    return this.#compact && { invokeTool: INVOKE_TOOL, tools: this.#compact.operationTools };
  }

  status(): UpstreamStatus {
    return {
      name: this.name,
      transport: "openapi",
      state: this.#state,
      ...(this.#lastError !== undefined && { lastError: this.#lastError }),
      restarts: this.#restarts,
      ...(this.#loadedAt && { connectedAt: this.#loadedAt.toISOString() }),
      ...(this.#info && { serverInfo: this.#info }),
      tools: this.#tools.length,
      resources: 0,
      prompts: 0,
      ...(this.#nextRetryAt && { nextRetryAt: this.#nextRetryAt.toISOString() }),
    };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#attempt = 0;
    void this.#load();
  }

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

  async request(
    method: string,
    params: Record<string, unknown> | undefined,
    options: UpstreamRequestOptions = {},
  ): Promise<Record<string, unknown>> {
    if (this.#state !== "ready") {
      const why = this.#lastError ? `; last error: ${this.#lastError}` : "";
      throw new GatewayError(
        ErrorCode.UpstreamUnavailable,
        `upstream "${this.name}" is ${this.#state} (its OpenAPI document is not loaded)${why}`,
        { upstream: this.name, reachedUpstream: false },
      );
    }
    switch (method) {
      case "tools/call":
        return this.#call(params ?? {}, options.signal ?? new AbortController().signal);
      case "tools/list":
        return { tools: this.#tools };
      case "ping":
        return {};
      default:
        throw new GatewayError(
          ErrorCode.UpstreamError,
          `upstream "${this.name}" (an HTTP API) has no ${method}`,
          {
            upstream: this.name,
            rpcCode: RpcCode.MethodNotFound,
          },
        );
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#generation++;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#nextRetryAt = undefined;
    this.#setState("stopped");
  }

  #call(params: Record<string, unknown>, signal: AbortSignal): Promise<Record<string, unknown>> {
    const name = String(params.name);
    const args = (params.arguments ?? {}) as Record<string, unknown>;
    if (this.#compact) {
      const meta = this.#compact.handle(name, args);
      if (meta.kind === "result") return Promise.resolve(meta.result);
      return this.#invoke(meta.plan, meta.args, signal);
    }
    const plan = this.#plans.get(name);
    if (!plan) {
      return Promise.reject(
        new GatewayError(ErrorCode.UpstreamError, `upstream "${this.name}" has no operation "${name}"`, {
          upstream: this.name,
          rpcCode: RpcCode.InvalidParams,
        }),
      );
    }
    return this.#invoke(plan, args, signal);
  }

  #invoke(plan: OperationPlan, args: Record<string, unknown>, signal: AbortSignal) {
    const t = this.#transport;
    return callOperation(plan, args, {
      upstream: this.name,
      headers: t.headers,
      maxResponseBytes: t.maxResponseBytes,
      idempotencyKey: t.idempotencyKey,
      credentials: this.#credentials,
      signal,
      idempotencyKeys: this.#idempotencyKeys,
    });
  }

  /**
   * Read the document again (a config reload does this): the current tools serve until the new ones are
   * mapped, and a document that no longer loads leaves them in place. Pinning sees changed operations.
   */
  refresh(): void {
    if (this.#running && this.#state === "ready") void this.#load(true);
    else if (this.#running && this.#state === "down") {
      clearTimeout(this.#retryTimer);
      void this.#load();
    }
  }

  async #load(refresh = false): Promise<void> {
    this.#retryTimer = undefined;
    this.#nextRetryAt = undefined;
    if (!this.#running) return;
    const generation = ++this.#generation;
    if (!refresh) this.#setState("connecting");
    try {
      const started = performance.now();
      const doc = await loadDocument(this.#transport);
      const { plans, notes } = planOperations(doc, this.#transport);
      if (generation !== this.#generation) return;
      const before = this.#tools;
      this.#plans = new Map(plans.map((p) => [p.name, p]));
      this.#compact =
        plans.length > this.#transport.compactThreshold ? new CompactTools(this.name, plans) : undefined;
      this.#tools = this.#compact ? this.#compact.tools : plans.map((p) => p.tool);
      this.#info = { name: doc.info?.title ?? this.name, version: doc.info?.version ?? "" };
      if (this.#loadedAt && !refresh) this.#restarts++;
      this.#loadedAt = new Date();
      this.#lastError = undefined;
      this.#attempt = 0;
      if (notes.length) {
        this.#log.warn("some operations will be called without credentials", {
          count: notes.length,
          first: notes.slice(0, 5),
        });
      }
      this.#log.info("upstream ready", {
        operations: plans.length,
        compact: !!this.#compact,
        loadMs: Math.round(performance.now() - started),
      });
      this.#setState("ready");
      if (JSON.stringify(before) !== JSON.stringify(this.#tools)) this.emit("catalogChanged", ["tools"]);
    } catch (err) {
      if (generation !== this.#generation || !this.#running) return;
      this.#lastError = `cannot load the OpenAPI document: ${describeFailure(err)}`;
      if (refresh) {
        this.#log.warn("reloading the OpenAPI document failed; serving the previous one", {
          error: this.#lastError,
        });
        this.emit("state", this.status());
        return;
      }
      const delay = backoffDelay(this.#attempt++, this.#config.reconnect);
      this.#nextRetryAt = new Date(Date.now() + delay);
      this.#retryTimer = setTimeout(() => void this.#load(), delay);
      this.#retryTimer.unref();
      this.#log.warn("upstream down", { error: this.#lastError, retryInMs: delay });
      this.#setState("down");
    }
  }

  #setState(state: UpstreamState): void {
    this.#state = state;
    this.emit("state", this.status());
  }
}
