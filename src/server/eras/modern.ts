/**
 * The 2026-07-28 face of `/mcp`: one POST, one request, no session. It checks what this revision requires of
 * every request (the `_meta` protocol version and client capabilities, the `MCP-Protocol-Version`, `Mcp-Method`,
 * `Mcp-Name` and `Mcp-Param-*` headers against the body), serves `server/discover` and `subscriptions/listen`,
 * answers removed methods with 404 / -32601, and hands everything else to the era-neutral dispatcher. Results
 * get `resultType`, the server's identity in `_meta`, and caching hints on cacheable lists. Server→client
 * requests from a legacy upstream become input-required rounds (protocol/input-rounds.ts). The tasks
 * extension (tasks/get|update|cancel, task-answered tools/call, taskIds on listen) is in modern-tasks.ts.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { ErrorCode, GatewayError, toWire } from "../../errors.ts";
import {
  CACHEABLE_METHODS,
  INPUT_METHODS,
  META,
  MODERN_VERSION,
  ModernCode,
  ModernError,
  REMOVED_METHODS,
  SUPPORTED_VERSIONS,
} from "../../protocol/era.ts";
import type { HeldCall, InputRounds, RoundOutcome, RoundSink } from "../../protocol/input-rounds.ts";
import type { Caller, Router } from "../../router/router.ts";
import type { Logger } from "../../telemetry/log.ts";
import type { ServerSpanInfo, Telemetry } from "../../telemetry/telemetry.ts";
import { atExpiry, type Principal } from "../auth/principal.ts";
import { dispatch, NEUTRAL_METHODS } from "../dispatch.ts";
import { EdgeRefusals } from "../edge-refusals.ts";
import type { HttpRequestLike, HttpResponseLike } from "../http1-server.ts";
import { exceededLimit, type MessageLimits } from "../message-limits.ts";
import { cutReason, fellBehind } from "../slow-reader.ts";
import { checkEnvelope, checkHeaders } from "./modern-checks.ts";
import { declaresTasks, type ModernTasks, missingTasksExtension, TASK_METHODS } from "./modern-tasks.ts";

/** How long clients may reuse a list or discover result; list_changed on a listen stream says sooner. */
const LIST_TTL_MS = 60_000;
const KEEP_ALIVE_MS = 15_000;
const LOG_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

export interface ModernFaceDeps {
  router: Router;
  log: Logger;
  telemetry: Pick<Telemetry, "serverSpan">;
  serverInfo: { name: string; version: string };
  instructions(): string | undefined;
  /** Structural limits of each incoming HTTP message (depth, value count), as sessions enforce them. */
  limits: MessageLimits;
  /** A tool's input schema, for `x-mcp-header` checks. */
  toolSchema(name: string): Record<string, unknown> | undefined;
  rounds: InputRounds;
  /** The tasks extension (`io.modelcontextprotocol/tasks`). */
  tasks: ModernTasks;
  /** Bound on listen streams and on calls held between input rounds, each (gateway.maxSessions). */
  maxOpen(): number;
  /** The start-up hold (see server/dispatch.ts). */
  whenCatalogReady?: (signal: AbortSignal) => Promise<void>;
}

type Kind = "tools" | "prompts" | "resources";

interface Listener {
  id: string | number;
  kinds: Set<Kind>;
  notify: ModernContext["notify"];
  /** Ends the subscription gracefully (its request gets a result). */
  end(): void;
}

/** How one modern request reaches its client, whatever the transport. */
export interface ModernContext {
  principal: Principal;
  /** Fires when the client cancels or goes away. */
  signal: AbortSignal;
  /** Fires when a reload stops accepting the credentials the request came with: a listen stream then ends. */
  refused?: AbortSignal | undefined;
  /** A notification related to this request (progress, logs, listen events). */
  notify(method: string, params: Record<string, unknown>): void;
  transport: "tcp" | "pipe";
  headers?: IncomingHttpHeaders;
  /** Size of the request on the wire, when the transport knows it (payload metrics). */
  requestBytes?: number | undefined;
}

const CAPABILITIES = {
  tools: { listChanged: true },
  resources: { listChanged: true, subscribe: true },
  prompts: { listChanged: true },
  logging: {},
  completions: {},
};

export class ModernFace {
  readonly #deps: ModernFaceDeps;
  readonly #listeners = new Set<Listener>();
  readonly #refusals: EdgeRefusals;

  constructor(deps: ModernFaceDeps) {
    this.#deps = deps;
    this.#refusals = new EdgeRefusals(deps.log, deps.telemetry, "refusedOnFace");
  }

  /**
   * One modern POST whose body (one JSON-RPC message) is already parsed and validated as JSON-RPC. No async
   * layer of its own: the answer is written from one settle handler pair (the 2025 session's style).
   */
  handle(
    req: HttpRequestLike,
    res: HttpResponseLike,
    message: JSONRPCMessage,
    principal: Principal,
    refused?: AbortSignal,
  ): void {
    if (!("method" in message)) {
      return void reply(res, 400, null, -32600, "Invalid Request: clients send requests, not responses");
    }
    if (!("id" in message)) {
      // No client notification is defined over HTTP in this revision: accepted and ignored.
      return void res.writeHead(202, { "content-length": 0 }).end();
    }
    const { id, method } = message;
    // Before anything reads it: a deeply nested value would overflow the stack on its way upstream.
    const exceeded = exceededLimit(message, this.#deps.limits);
    if (exceeded !== undefined) {
      const error = new GatewayError(ErrorCode.InvalidRequest, `${exceeded}; it was not forwarded`, {
        policy: "messageLimits",
      });
      this.#refusals.record(message, error, { fields: { era: "2026-07-28" }, span: { transport: "tcp" } });
      const wire = toWire(error);
      return void reply(res, 400, id, wire.code, wire.message, wire.data);
    }
    const params = (message.params ?? {}) as Record<string, unknown>;
    const accept = req.headers.accept;
    if (!accept?.includes("application/json") || !accept.includes("text/event-stream")) {
      return void reply(
        res,
        406,
        id,
        -32600,
        "Not Acceptable: Accept must list application/json and text/event-stream",
      );
    }
    let answer: Promise<Record<string, unknown>>;
    let call: HttpCall;
    try {
      checkEnvelope(params);
      checkHeaders(req, method, params, this.#deps.toolSchema);
      call = new HttpCall(req, res, id, principal, refused, this.#deps.log);
      answer = this.#checked(id, method, params, call);
    } catch (err) {
      const e = modernWireError(err);
      return void reply(res, e.status, id, e.code, e.message, e.data);
    }
    // A listen stream may stay quiet for long: a comment now and then keeps intermediaries from cutting it.
    if (method === "subscriptions/listen") call.keepAlive(KEEP_ALIVE_MS);
    answer.then(
      (result) => call.finish(result),
      (err) => call.fail(err),
    );
  }

  /**
   * One modern request on any transport (HTTP above; stdio and WebSocket sessions hand theirs here): the
   * `_meta` envelope checked, the method served, the result completed. Rejects with ModernError for the modern
   * revision's own errors, anything else for the usual mapping.
   */
  serve(
    request: { id: string | number; method: string; params: Record<string, unknown> },
    ctx: ModernContext,
  ): Promise<Record<string, unknown>> {
    try {
      checkEnvelope(request.params);
      return this.#checked(request.id, request.method, request.params, ctx);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** A request whose envelope is checked: its version and method, then the method under a SERVER span. */
  #checked(
    id: string | number,
    method: string,
    params: Record<string, unknown>,
    ctx: ModernContext,
  ): Promise<Record<string, unknown>> {
    const meta = params._meta as Record<string, unknown>;
    const declared = meta[META.protocolVersion];
    if (declared !== MODERN_VERSION) {
      throw new ModernError(
        ModernCode.UnsupportedProtocolVersion,
        `Unsupported protocol version ${String(declared)}; per-request _meta is served for ${MODERN_VERSION}, earlier versions need an initialize handshake`,
        400,
        { supported: SUPPORTED_VERSIONS, requested: declared },
      );
    }
    if (
      REMOVED_METHODS.has(method) ||
      (!NEUTRAL_METHODS.has(method) && !OWN_METHODS.has(method) && !TASK_METHODS.has(method))
    ) {
      const why = REMOVED_METHODS.has(method)
        ? ` (removed in ${MODERN_VERSION}; ${REMOVED_HINT[method] ?? "not used any more"})`
        : "";
      throw new ModernError(-32601, `Method not found: ${method}${why}`, 404);
    }
    const span: ServerSpanInfo = {
      method,
      requestId: id,
      transport: ctx.transport,
      protocolVersion: MODERN_VERSION,
      meta,
    };
    const target = params.name ?? params.uri;
    if (typeof target === "string") span.target = target;
    if (ctx.headers) span.headers = ctx.headers;
    return this.#deps.telemetry.serverSpan(span, () => this.#serve(id, method, params, ctx));
  }

  /** Tell listen streams that asked for it that a list changed. */
  listChanged(kind: Kind): void {
    for (const listener of this.#listeners) {
      if (!listener.kinds.has(kind)) continue;
      listener.notify(`notifications/${kind}/list_changed`, {
        _meta: { [META.subscriptionId]: listener.id },
      });
    }
  }

  /** Shutdown: end every listen stream gracefully (a result for its request), cancel held calls. */
  close(): void {
    for (const listener of [...this.#listeners]) listener.end();
    this.#listeners.clear();
    this.#deps.rounds.close();
  }

  /** May throw: the SERVER span turns a throw into the request's error. No async layer for plain calls. */
  #serve(
    id: string | number,
    method: string,
    params: Record<string, unknown>,
    ctx: ModernContext,
  ): Promise<Record<string, unknown>> {
    const { principal } = ctx;
    if (method === "server/discover") {
      return Promise.resolve(this.#complete(method, this.#discover(), principal));
    }
    if (method === "subscriptions/listen") return this.#listen(id, params, ctx);
    const meta = params._meta as Record<string, unknown>;
    const capabilities = meta[META.clientCapabilities] as Record<string, unknown>;
    const sink: RoundSink = {
      capabilities,
      progressToken: meta.progressToken,
      notify: async (m, p) => {
        if (m === "notifications/message" && !logAllowed(meta[META.logLevel], p.level)) return;
        ctx.notify(m, p);
      },
    };
    if (TASK_METHODS.has(method)) return this.#task(id, method, params, ctx, sink);
    const { router, rounds } = this.#deps;
    if (!INPUT_METHODS.has(method)) {
      return dispatch(router, {
        method,
        params: neutralParams(params),
        caller: plainCaller(sink),
        principal,
        requestId: id,
        signal: ctx.signal,
        requestBytes: ctx.requestBytes,
        notify: sink.notify,
        whenCatalogReady: this.#deps.whenCatalogReady,
      }).then((result) => this.#complete(method, result, principal));
    }
    const { requestState, inputResponses } = params;
    if (requestState === undefined && rounds.size >= this.#deps.maxOpen()) {
      throw full(`${rounds.size} calls are waiting for input rounds`);
    }
    const who = { principal: principal.id, method, target: String(params.name ?? params.uri ?? "") };
    let outcome: Promise<RoundOutcome>;
    if (requestState !== undefined) {
      outcome = rounds.resume(who, requestState, inputResponses, sink, ctx.signal);
    } else {
      const asTask = method === "tools/call" && this.#deps.tasks.route(params.name, capabilities) === "task";
      outcome = rounds.start(
        who,
        sink,
        (held) =>
          asTask
            ? this.#deps.tasks.call(
                String(params.name),
                taskArguments(params.arguments),
                { principal, requestId: id, meta, requestBytes: ctx.requestBytes },
                held,
              )
            : dispatch(router, {
                method,
                params: neutralParams(params),
                caller: heldCaller(held),
                principal,
                requestId: id,
                signal: held.controller.signal,
                requestBytes: ctx.requestBytes,
                notify: held.notify,
                whenCatalogReady: this.#deps.whenCatalogReady,
              }),
        ctx.signal,
        inputResponses,
      );
    }
    return outcome.then((o) => {
      if (o.kind === "error") throw o.error;
      return o.kind === "input" ? o.result : this.#complete(method, o.result, principal);
    });
  }

  /** tasks/get, tasks/update, tasks/cancel (the tasks extension). */
  async #task(
    id: string | number,
    method: string,
    params: Record<string, unknown>,
    ctx: ModernContext,
    sink: RoundSink,
  ): Promise<Record<string, unknown>> {
    if (!declaresTasks(sink.capabilities)) throw missingTasksExtension(method);
    const result = await this.#deps.tasks.serve(method, params, {
      caller: plainCaller(sink),
      principal: ctx.principal,
      requestId: id,
      signal: ctx.signal,
      meta: params._meta as Record<string, unknown>,
    });
    return this.#complete(method, result, ctx.principal);
  }

  #discover(): Record<string, unknown> {
    const instructions = this.#deps.instructions();
    const extensions = this.#deps.tasks.extensions();
    return {
      supportedVersions: SUPPORTED_VERSIONS,
      capabilities: extensions ? { ...CAPABILITIES, extensions } : CAPABILITIES,
      ...(instructions && { instructions }),
    };
  }

  /** `resultType`, the server's identity, and caching hints where the method is cacheable. */
  #complete(method: string, result: Record<string, unknown>, principal: Principal): Record<string, unknown> {
    const out: Record<string, unknown> = { ...result };
    out.resultType ??= "complete";
    out._meta = { ...(result._meta as object | undefined), [META.serverInfo]: this.#deps.serverInfo };
    if (CACHEABLE_METHODS.has(method)) {
      out.ttlMs ??= method === "resources/read" ? 0 : LIST_TTL_MS;
      // Lists are filtered per principal once callers authenticate: no shared cache may reuse them then.
      out.cacheScope ??= principal.kind === "anonymous" && method !== "resources/read" ? "public" : "private";
    }
    return out;
  }

  /**
   * `subscriptions/listen`: acknowledges what it will deliver, then carries list changes and resource updates
   * tagged with the subscription id until the client goes away (no result) or the gateway ends it (a result).
   */
  async #listen(
    id: string | number,
    params: Record<string, unknown>,
    ctx: ModernContext,
  ): Promise<Record<string, unknown>> {
    if (this.#listeners.size >= this.#deps.maxOpen()) {
      throw full(`${this.#listeners.size} subscriptions/listen streams are open`);
    }
    const filter = (params.notifications ?? {}) as Record<string, unknown>;
    if (filter.taskIds !== undefined) {
      const capabilities = (params._meta as Record<string, unknown>)[META.clientCapabilities];
      if (!declaresTasks(capabilities as Record<string, unknown>)) {
        throw missingTasksExtension("task status notifications (notifications.taskIds)");
      }
    }
    const kinds = new Set<Kind>();
    const ack: Record<string, unknown> = {};
    for (const [flag, kind] of [
      ["toolsListChanged", "tools"],
      ["promptsListChanged", "prompts"],
      ["resourcesListChanged", "resources"],
    ] as const) {
      if (filter[flag] === true) {
        kinds.add(kind);
        ack[flag] = true;
      }
    }
    const tag = { [META.subscriptionId]: id };
    const caller: Caller = {
      sessionId: `listen-${String(id)}`,
      request: () => Promise.reject(new Error("a listen stream takes no requests")),
      notify: async (method, p) => {
        if (method === "notifications/resources/updated") ctx.notify(method, { ...p, _meta: tag });
      },
    };
    const uris = Array.isArray(filter.resourceSubscriptions) ? filter.resourceSubscriptions : [];
    const subscribed: string[] = [];
    for (const uri of uris) {
      if (typeof uri !== "string") continue;
      try {
        await this.#deps.router.subscribe(
          { uri },
          { caller, principal: ctx.principal, requestId: id, signal: ctx.signal, meta: undefined },
        );
        subscribed.push(uri);
      } catch (err) {
        this.#deps.log.debug("listen: resource subscription refused", { uri, err });
      }
    }
    if (subscribed.length) ack.resourceSubscriptions = subscribed;
    const taskIds = Array.isArray(filter.taskIds) ? filter.taskIds : [];
    const taskCtx = { caller, principal: ctx.principal, requestId: id, signal: ctx.signal, meta: undefined };
    const tasks = taskIds.length ? await this.#deps.tasks.accept(taskIds, taskCtx) : [];
    if (taskIds.length) ack.taskIds = tasks;
    try {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      ctx.notify("notifications/subscriptions/acknowledged", { _meta: tag, notifications: ack });
      this.#deps.tasks.follow(tasks, taskCtx, (task) =>
        ctx.notify("notifications/tasks", { ...task, _meta: tag }),
      );
      await new Promise<void>((resolve, reject) => {
        const release = () => {
          this.#listeners.delete(listener);
          expiry();
          ctx.refused?.removeEventListener("abort", end);
        };
        const end = () => {
          release();
          resolve();
        };
        const listener: Listener = { id, kinds, notify: (method, p) => ctx.notify(method, p), end };
        this.#listeners.add(listener);
        // The stream outlives the request that authenticated it: it ends (with a result) with the credentials,
        // at their expiry or a reload that no longer accepts them, and the client's next listen meets the guard.
        const expiry = atExpiry(ctx.principal, end);
        ctx.refused?.addEventListener("abort", end, { once: true });
        ctx.signal.addEventListener(
          "abort",
          () => {
            release();
            reject(ctx.signal.reason);
          },
          { once: true },
        );
        if (ctx.refused?.aborted) end();
      });
      return { resultType: "complete", _meta: tag };
    } finally {
      this.#deps.router.sessionClosed(caller);
    }
  }
}

const OWN_METHODS: ReadonlySet<string> = new Set(["server/discover", "subscriptions/listen"]);

const REMOVED_HINT: Record<string, string> = {
  initialize: "send per-request _meta instead, or server/discover",
  ping: "no replacement",
  "logging/setLevel": `set _meta["${META.logLevel}"] per request`,
  "resources/subscribe": "use subscriptions/listen",
  "resources/unsubscribe": "close the subscriptions/listen stream",
};

const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  connection: "keep-alive",
  "x-accel-buffering": "no",
};

/**
 * One modern request over HTTP: its context (who asks, cancellation when the client closes the stream) and its
 * answer, plain JSON unless a notification must go out first. One object per request.
 */
class HttpCall implements ModernContext {
  readonly principal: Principal;
  readonly signal: AbortSignal;
  readonly refused: AbortSignal | undefined;
  readonly transport = "tcp" as const;
  readonly headers: IncomingHttpHeaders;
  readonly requestBytes: number | undefined;
  readonly #res: HttpResponseLike;
  readonly #id: string | number;
  readonly #log: Logger;
  #sse = false;
  #keepAlive: NodeJS.Timeout | undefined;

  constructor(
    req: HttpRequestLike,
    res: HttpResponseLike,
    id: string | number,
    principal: Principal,
    refused: AbortSignal | undefined,
    log: Logger,
  ) {
    this.#log = log;
    this.principal = principal;
    this.refused = refused;
    this.headers = req.headers;
    this.requestBytes = Number(req.headers["content-length"]) || undefined;
    this.#res = res;
    this.#id = id;
    const closed = new AbortController();
    this.signal = closed.signal;
    // `on`, not `once`: a response closes once, and `once` wraps the listener.
    res.on("close", () => {
      if (!res.writableFinished) closed.abort(new Error("the client closed the request's stream"));
    });
  }

  /** A notification related to this request (progress, logs, listen events): the answer becomes a stream. */
  notify(method: string, params: Record<string, unknown>): void {
    const res = this.#res;
    if (res.destroyed || res.writableEnded) return;
    if (!this.#sse) {
      this.#sse = true;
      res.writeHead(200, SSE_HEADERS);
    } else if (fellBehind(res)) {
      return void this.#cut();
    }
    writeEvent(res, { jsonrpc: "2.0", method, params });
  }

  /** SSE comments (keep-alive) every `ms` once the answer is a stream, until it is answered. */
  keepAlive(ms: number): void {
    this.#keepAlive = setInterval(() => {
      const res = this.#res;
      if (!this.#sse || res.destroyed || res.writableEnded) return;
      if (fellBehind(res)) this.#cut();
      else res.write(": keepalive\n\n");
    }, ms).unref();
  }

  /** The client stopped reading its stream: cut it (its 'close' cancels the call). */
  #cut(): void {
    clearInterval(this.#keepAlive);
    this.#res.destroy();
    this.#log.warn(cutReason("response stream"), { requestId: this.#id });
  }

  finish(result: Record<string, unknown>): void {
    clearInterval(this.#keepAlive);
    const res = this.#res;
    if (res.destroyed) return;
    let body: string;
    try {
      body = JSON.stringify({ jsonrpc: "2.0", id: this.#id, result });
    } catch (err) {
      // A result that cannot be serialized (nothing awaits this handler to catch it): its error instead.
      this.fail(err);
      return;
    }
    if (this.#sse) {
      if (!res.writableEnded) res.write(`event: message\ndata: ${body}\n\n`);
      res.end();
      return;
    }
    writeJson(res, 200, body);
  }

  fail(err: unknown): void {
    clearInterval(this.#keepAlive);
    const res = this.#res;
    if (res.destroyed) return;
    const wire = modernWireError(err);
    if (!this.#sse) return void reply(res, wire.status, this.#id, wire.code, wire.message, wire.data);
    writeEvent(res, {
      jsonrpc: "2.0",
      id: this.#id,
      error: { code: wire.code, message: wire.message, ...(wire.data !== undefined && { data: wire.data }) },
    } as JSONRPCMessage);
    res.end();
  }
}

/**
 * Any failure of a modern request as its JSON-RPC error and HTTP status: the revision's own errors as
 * raised, everything else through the gateway's one mapping, with "resource not found" moved from -32002
 * to -32602 as 2026-07-28 did.
 */
export function modernWireError(err: unknown): {
  code: number;
  message: string;
  data: unknown;
  status: number;
} {
  if (err instanceof ModernError) {
    return { code: err.code, message: err.message, data: err.data, status: err.status };
  }
  const wire = toWire(err);
  const code = wire.code === -32002 ? -32602 : wire.code;
  return { code, message: wire.message, data: wire.data, status: code === -32601 ? 404 : 200 };
}

/**
 * The params handed to the era-neutral dispatcher: without the input-round fields (`inputResponses`,
 * `requestState`) and without the 2026-07-28 envelope in `_meta`. The envelope describes the client's hop to
 * the gateway; the upstream's hop has its own version and capabilities (its connection's), so an upstream
 * gets what a 2025 session's call sends it, and the request is not made larger to serialize and parse. Other
 * `_meta` entries (progress token, trace context, extensions) stay.
 */
function neutralParams(params: Record<string, unknown>): Record<string, unknown> {
  const { inputResponses: _responses, requestState: _state, _meta, ...rest } = params;
  const {
    [META.protocolVersion]: _version,
    [META.clientInfo]: _info,
    [META.clientCapabilities]: _capabilities,
    [META.logLevel]: _level,
    ...kept
  } = _meta as Record<string, unknown>;
  for (const _ in kept) {
    rest._meta = kept;
    break;
  }
  return rest;
}

/** `tools/call` arguments for the task path (the plain path checks them in dispatch). */
function taskArguments(args: unknown): Record<string, unknown> {
  if (args === undefined) return {};
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw new ModernError(-32602, "Invalid params: tools/call params.arguments must be an object", 200);
  }
  return args as Record<string, unknown>;
}

/** A caller for requests that cannot ask the client anything (lists, completions). */
function plainCaller(sink: RoundSink): Caller {
  return {
    sessionId: "modern",
    request: (method) =>
      Promise.reject(
        Object.assign(
          new Error(`${method} cannot be sent to a ${MODERN_VERSION} client outside a tool call`),
          {
            code: -32601,
          },
        ),
      ),
    notify: (method, params) => sink.notify(method, params ?? {}),
  };
}

/** A caller whose server→client requests become input-required rounds. */
function heldCaller(held: HeldCall): Caller {
  return {
    sessionId: `modern-${held.id}`,
    request: (method, params, options) => held.ask(method, params, options.signal),
    notify: (method, params) => held.notify(method, params ?? {}),
  };
}

/** Over the gateway.maxSessions bound: a clear, retryable refusal rather than unbounded memory. */
function full(what: string): ModernError {
  return new ModernError(-32012, `RateLimited: ${what} (the limit is gateway.maxSessions); retry later`, 503);
}

function logAllowed(wanted: unknown, level: unknown): boolean {
  if (typeof wanted !== "string") return false;
  return LOG_LEVELS.indexOf(String(level)) >= LOG_LEVELS.indexOf(wanted);
}

function writeEvent(res: HttpResponseLike, message: JSONRPCMessage): void {
  if (!res.destroyed && !res.writableEnded) res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
}

/** A JSON-RPC error reply carrying the request's id (null only when the body had none). */
function reply(
  res: HttpResponseLike,
  status: number,
  id: string | number | null,
  code: number,
  message: string,
  data?: unknown,
): void {
  if (res.headersSent) return void res.end();
  writeJson(
    res,
    status,
    JSON.stringify({ jsonrpc: "2.0", id, error: { code, message, ...(data !== undefined && { data }) } }),
  );
}

/** A whole JSON body with its length: one write, no chunked framing (a bare `writeHead` fixes chunked). */
function writeJson(res: HttpResponseLike, status: number, body: string): void {
  res
    .writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
    .end(body);
}
