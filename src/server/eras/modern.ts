/**
 * The 2026-07-28 face of `/mcp`: one POST, one request, no session. It checks what this revision requires of
 * every request (the `_meta` protocol version and client capabilities, the `MCP-Protocol-Version`, `Mcp-Method`,
 * `Mcp-Name` and `Mcp-Param-*` headers against the body), serves `server/discover` and `subscriptions/listen`,
 * answers removed methods with 404 / -32601, and hands everything else to the era-neutral dispatcher. Results
 * get `resultType`, the server's identity in `_meta`, and caching hints on cacheable lists. Server→client
 * requests from a legacy upstream become input-required rounds (protocol/input-rounds.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { toWire } from "../../errors.ts";
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
import type { Telemetry } from "../../telemetry/telemetry.ts";
import type { Principal } from "../auth/principal.ts";
import { dispatch, NEUTRAL_METHODS } from "../dispatch.ts";

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
  /** A tool's input schema, for `x-mcp-header` checks. */
  toolSchema(name: string): Record<string, unknown> | undefined;
  rounds: InputRounds;
}

type Kind = "tools" | "prompts" | "resources";

interface Listener {
  id: string | number;
  res: ServerResponse;
  kinds: Set<Kind>;
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

  constructor(deps: ModernFaceDeps) {
    this.#deps = deps;
  }

  /** One modern POST whose body (one JSON-RPC message) is already parsed and validated as JSON-RPC. */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    message: JSONRPCMessage,
    principal: Principal,
  ): Promise<void> {
    if (!("method" in message)) {
      return void reply(res, 400, null, -32600, "Invalid Request: clients send requests, not responses");
    }
    if (!("id" in message)) {
      // No client notification is defined over HTTP in this revision: accepted and ignored.
      return void res.writeHead(202).end();
    }
    const { id, method } = message;
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
    try {
      this.#check(req, method, params);
    } catch (err) {
      const e = err as ModernError;
      return void reply(res, e.status, id, e.code, e.message, e.data);
    }
    if (REMOVED_METHODS.has(method) || (!NEUTRAL_METHODS.has(method) && !OWN_METHODS.has(method))) {
      const why = REMOVED_METHODS.has(method)
        ? ` (removed in ${MODERN_VERSION}; ${REMOVED_HINT[method] ?? "not used any more"})`
        : "";
      return void reply(res, 404, id, -32601, `Method not found: ${method}${why}`);
    }
    const meta = params._meta as Record<string, unknown>;
    const target = params.name ?? params.uri;
    const headers = req.headers;
    await this.#deps.telemetry.serverSpan(
      {
        method,
        ...(typeof target === "string" && { target }),
        requestId: id,
        transport: "tcp",
        protocolVersion: MODERN_VERSION,
        meta,
        headers,
      },
      () => this.#serve(req, res, id, method, params, principal),
    );
  }

  /** Tell listen streams that asked for it that a list changed. */
  listChanged(kind: Kind): void {
    for (const listener of this.#listeners) {
      if (!listener.kinds.has(kind)) continue;
      writeEvent(listener.res, {
        jsonrpc: "2.0",
        method: `notifications/${kind}/list_changed`,
        params: { _meta: { [META.subscriptionId]: listener.id } },
      });
    }
  }

  /** Shutdown: end every listen stream gracefully (a result for its request), cancel held calls. */
  close(): void {
    for (const listener of this.#listeners) {
      writeEvent(listener.res, {
        jsonrpc: "2.0",
        id: listener.id,
        result: { resultType: "complete", _meta: { [META.subscriptionId]: listener.id } },
      });
      listener.res.end();
    }
    this.#listeners.clear();
    this.#deps.rounds.close();
  }

  async #serve(
    req: IncomingMessage,
    res: ServerResponse,
    id: string | number,
    method: string,
    params: Record<string, unknown>,
    principal: Principal,
  ): Promise<void> {
    if (method === "server/discover") return void this.#finish(res, id, method, this.#discover(), principal);
    if (method === "subscriptions/listen") return this.#listen(res, id, params, principal);
    const answer = new Answer(res);
    const meta = params._meta as Record<string, unknown>;
    const sink: RoundSink = {
      capabilities: meta[META.clientCapabilities] as Record<string, unknown>,
      progressToken: meta.progressToken,
      notify: (m, p) => {
        if (m === "notifications/message" && !logAllowed(meta[META.logLevel], p.level))
          return Promise.resolve();
        answer.notify({ jsonrpc: "2.0", method: m, params: p });
        return Promise.resolve();
      },
    };
    const closed = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) closed.abort(new Error("the client closed the request's stream"));
    });
    const length = Number(req.headers["content-length"]);
    const base = {
      method,
      principal,
      requestId: id,
      requestBytes: Number.isFinite(length) ? length : undefined,
    };
    let outcome: RoundOutcome;
    try {
      if (INPUT_METHODS.has(method)) {
        const who = { principal: principal.id, method, target: String(params.name ?? params.uri ?? "") };
        const { inputResponses, requestState, ...rest } = params;
        if (requestState !== undefined) {
          outcome = await this.#deps.rounds.resume(who, requestState, inputResponses, sink, closed.signal);
        } else {
          outcome = await this.#deps.rounds.start(
            who,
            sink,
            (held) =>
              dispatch(this.#deps.router, {
                ...base,
                params: rest,
                caller: heldCaller(held),
                signal: held.controller.signal,
                notify: held.notify,
              }),
            closed.signal,
            inputResponses,
          );
        }
      } else {
        const result = await dispatch(this.#deps.router, {
          ...base,
          params,
          caller: plainCaller(sink),
          signal: closed.signal,
          notify: sink.notify,
        });
        outcome = { kind: "result", result };
      }
    } catch (error) {
      outcome = { kind: "error", error };
    }
    if (res.destroyed) return;
    if (outcome.kind === "error") return answer.error(id, outcome.error);
    answer.finish(
      id,
      outcome.kind === "input" ? outcome.result : this.#complete(method, outcome.result, principal),
    );
  }

  #finish(
    res: ServerResponse,
    id: string | number,
    method: string,
    result: Record<string, unknown>,
    principal: Principal,
  ): void {
    new Answer(res).finish(id, this.#complete(method, result, principal));
  }

  #discover(): Record<string, unknown> {
    const instructions = this.#deps.instructions();
    return {
      supportedVersions: SUPPORTED_VERSIONS,
      capabilities: CAPABILITIES,
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

  async #listen(
    res: ServerResponse,
    id: string | number,
    params: Record<string, unknown>,
    principal: Principal,
  ): Promise<void> {
    const filter = (params.notifications ?? {}) as Record<string, unknown>;
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
    const listener: Listener = { id, res, kinds };
    const tag = { [META.subscriptionId]: id };
    const caller: Caller = {
      sessionId: `listen-${String(id)}`,
      request: () => Promise.reject(new Error("a listen stream takes no requests")),
      notify: async (method, p) => {
        if (method !== "notifications/resources/updated") return;
        writeEvent(res, { jsonrpc: "2.0", method, params: { ...p, _meta: tag } });
      },
    };
    const uris = Array.isArray(filter.resourceSubscriptions) ? filter.resourceSubscriptions : [];
    const subscribed: string[] = [];
    const closed = new AbortController();
    for (const uri of uris) {
      if (typeof uri !== "string") continue;
      try {
        await this.#deps.router.subscribe(
          { uri },
          { caller, principal, requestId: id, signal: closed.signal, meta: undefined },
        );
        subscribed.push(uri);
      } catch (err) {
        this.#deps.log.debug("listen: resource subscription refused", { uri, err });
      }
    }
    if (subscribed.length) ack.resourceSubscriptions = subscribed;
    if (res.destroyed) return void this.#deps.router.sessionClosed(caller);
    res.writeHead(200, SSE_HEADERS);
    writeEvent(res, {
      jsonrpc: "2.0",
      method: "notifications/subscriptions/acknowledged",
      params: { _meta: tag, notifications: ack },
    });
    this.#listeners.add(listener);
    const keepAlive = setInterval(() => res.write(": keepalive\n\n"), KEEP_ALIVE_MS).unref();
    res.once("close", () => {
      clearInterval(keepAlive);
      this.#listeners.delete(listener);
      closed.abort();
      this.#deps.router.sessionClosed(caller);
    });
  }

  /** Everything this revision requires of a request before it is served; throws ModernError. */
  #check(req: IncomingMessage, method: string, params: Record<string, unknown>): void {
    const meta = params._meta;
    if (typeof meta !== "object" || meta === null) {
      throw new ModernError(
        -32602,
        `Invalid params: params._meta with ${META.protocolVersion} and ${META.clientCapabilities} is required`,
      );
    }
    const m = meta as Record<string, unknown>;
    const declared = m[META.protocolVersion];
    if (typeof declared !== "string") {
      throw new ModernError(-32602, `Invalid params: _meta["${META.protocolVersion}"] is required`);
    }
    const capabilities = m[META.clientCapabilities];
    if (typeof capabilities !== "object" || capabilities === null || Array.isArray(capabilities)) {
      throw new ModernError(
        -32602,
        `Invalid params: _meta["${META.clientCapabilities}"] (an object) is required`,
      );
    }
    const header = headerValue(req, "mcp-protocol-version");
    if (header === undefined) throw mismatch("the MCP-Protocol-Version header is missing");
    if (header !== declared) {
      throw mismatch(
        `MCP-Protocol-Version header '${header}' does not match _meta protocol version '${declared}'`,
      );
    }
    if (declared !== MODERN_VERSION) {
      throw new ModernError(
        ModernCode.UnsupportedProtocolVersion,
        `Unsupported protocol version ${declared}; per-request _meta is served for ${MODERN_VERSION}, earlier versions need an initialize handshake`,
        400,
        { supported: SUPPORTED_VERSIONS, requested: declared },
      );
    }
    const methodHeader = headerValue(req, "mcp-method");
    if (methodHeader === undefined) throw mismatch("the Mcp-Method header is missing");
    if (methodHeader !== method) {
      throw mismatch(`Mcp-Method header value '${methodHeader}' does not match body method '${method}'`);
    }
    if (INPUT_METHODS.has(method)) {
      const body = method === "resources/read" ? params.uri : params.name;
      const raw = headerValue(req, "mcp-name");
      if (raw === undefined) throw mismatch("the Mcp-Name header is missing");
      const name = decodeHeader(raw, "Mcp-Name");
      if (name !== body)
        throw mismatch(`Mcp-Name header value '${name}' does not match body value '${String(body)}'`);
    }
    if (method === "tools/call" && typeof params.name === "string") {
      const schema = this.#deps.toolSchema(params.name);
      if (schema) checkParamHeaders(req, schema, (params.arguments ?? {}) as Record<string, unknown>);
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

/** The answer to one modern request: plain JSON unless a notification must go out first. */
class Answer {
  readonly #res: ServerResponse;
  #sse = false;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  notify(message: JSONRPCMessage): void {
    if (this.#res.destroyed || this.#res.writableEnded) return;
    if (!this.#sse) {
      this.#sse = true;
      this.#res.writeHead(200, SSE_HEADERS);
    }
    writeEvent(this.#res, message);
  }

  finish(id: string | number, result: Record<string, unknown>): void {
    const message = { jsonrpc: "2.0" as const, id, result };
    if (this.#sse) {
      writeEvent(this.#res, message);
      this.#res.end();
      return;
    }
    this.#res.writeHead(200, { "content-type": "application/json" });
    this.#res.end(JSON.stringify(message));
  }

  error(id: string | number, err: unknown): void {
    if (err instanceof ModernError) {
      if (this.#sse) return void this.#sseError(id, err.code, err.message, err.data);
      return void reply(this.#res, err.status, id, err.code, err.message, err.data);
    }
    const wire = toWire(err);
    // 2026-07-28 moved "resource not found" from -32002 to -32602.
    const code = wire.code === -32002 ? -32602 : wire.code;
    if (this.#sse) return void this.#sseError(id, code, wire.message, wire.data);
    reply(this.#res, code === -32601 ? 404 : 200, id, code, wire.message, wire.data);
  }

  #sseError(id: string | number, code: number, message: string, data: unknown): void {
    writeEvent(this.#res, {
      jsonrpc: "2.0",
      id,
      error: { code, message, ...(data !== undefined && { data }) },
    } as JSONRPCMessage);
    this.#res.end();
  }
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

function mismatch(message: string): ModernError {
  return new ModernError(ModernCode.HeaderMismatch, `Header mismatch: ${message}`);
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value.join(", ") : value).trim();
}

const SENTINEL = /^=\?base64\?(.*)\?=$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const HEADER_SAFE = /^[\x20-\x7E\t]*$/;

/** A header value as the client meant it: the `=?base64?…?=` sentinel decoded, invalid values refused. */
function decodeHeader(raw: string, name: string): string {
  if (!HEADER_SAFE.test(raw)) throw mismatch(`${name} header contains invalid characters`);
  const encoded = SENTINEL.exec(raw);
  if (!encoded) return raw;
  const b64 = encoded[1] ?? "";
  if (!BASE64.test(b64) || b64.length % 4 !== 0) throw mismatch(`${name} header has invalid Base64`);
  return Buffer.from(b64, "base64").toString("utf8");
}

/** Every argument the tool marks with `x-mcp-header` must be mirrored, equal, in its `Mcp-Param-*` header. */
function checkParamHeaders(
  req: IncomingMessage,
  schema: Record<string, unknown>,
  args: Record<string, unknown>,
): void {
  const visit = (node: unknown, value: unknown): void => {
    const properties = (node as { properties?: Record<string, Record<string, unknown>> })?.properties;
    if (!properties || typeof value !== "object" || value === null) return;
    for (const [key, property] of Object.entries(properties)) {
      const v = (value as Record<string, unknown>)[key];
      const name = property?.["x-mcp-header"];
      if (typeof name === "string" && v !== undefined && v !== null) {
        const raw = headerValue(req, `mcp-param-${name.toLowerCase()}`);
        if (raw === undefined)
          throw mismatch(`the Mcp-Param-${name} header is missing for argument '${key}'`);
        const header = decodeHeader(raw, `Mcp-Param-${name}`);
        const same = typeof v === "number" ? Number(header) === v : header === String(v);
        if (!same) throw mismatch(`Mcp-Param-${name} header value does not match argument '${key}'`);
      }
      visit(property, v);
    }
  };
  visit(schema, args);
}

function logAllowed(wanted: unknown, level: unknown): boolean {
  if (typeof wanted !== "string") return false;
  return LOG_LEVELS.indexOf(String(level)) >= LOG_LEVELS.indexOf(wanted);
}

function writeEvent(res: ServerResponse, message: JSONRPCMessage): void {
  if (!res.destroyed && !res.writableEnded) res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
}

/** A JSON-RPC error reply carrying the request's id (null only when the body had none). */
function reply(
  res: ServerResponse,
  status: number,
  id: string | number | null,
  code: number,
  message: string,
  data?: unknown,
): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { "content-type": "application/json" });
  res.end(
    JSON.stringify({ jsonrpc: "2.0", id, error: { code, message, ...(data !== undefined && { data }) } }),
  );
}
