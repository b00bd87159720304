/**
 * One downstream MCP session: the SDK's low-level `Server` bound to one client connection, whatever the
 * transport. Requests other than `initialize` go through one raw dispatcher (`fallbackRequestHandler`), so
 * results pass through untouched: no zod re-validation of upstream results on the hot path.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  type JSONRPCMessage,
  type JSONRPCRequest,
  type LoggingLevel,
  LoggingLevelSchema,
  RELATED_TASK_META_KEY,
  ResultSchema,
  type ServerCapabilities,
  SetLevelRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv";
import { ErrorCode, GatewayError, toWire } from "../errors.ts";
import { declaredVersion } from "../protocol/era.ts";
import type { Caller, RequestContext, Router } from "../router/router.ts";
import type { TaskService } from "../tasks/tasks.ts";
import type { Logger } from "../telemetry/log.ts";
import type { ServerSpanInfo, Telemetry } from "../telemetry/telemetry.ts";
import type { Principal } from "./auth/principal.ts";
import { dispatch, invalidParams } from "./dispatch.ts";
import { EdgeRefusals } from "./edge-refusals.ts";
import { type ModernFace, modernWireError } from "./eras/modern.ts";
import { enforceMessageLimits, type MessageLimits } from "./message-limits.ts";
import { type DirectRequestHandler, deliverDirectly } from "./sdk-delivery.ts";
import { taskRequest, wireTask } from "./task-wire.ts";

export type DownstreamTransport = "stdio" | "http" | "ws";

export interface SessionDeps {
  router: Router;
  tasks: TaskService;
  log: Logger;
  telemetry: Pick<Telemetry, "serverSpan">;
  /** Requests this session may have unanswered at once. */
  maxPending: number;
  /** Structural limits of each incoming message (depth, value count). */
  limits: MessageLimits;
  /** Resolves when the catalog is complete enough to list (the start-up hold); rejects when `signal` aborts. */
  whenCatalogReady?: (signal: AbortSignal) => Promise<void>;
  /** Serves requests that carry the 2026-07-28 `_meta` envelope (stdio and WebSocket sessions). */
  modern?: ModernFace;
  serverInfo: { name: string; version: string };
  instructions?: string;
}

export interface SessionInfo {
  transport: DownstreamTransport;
  /** Who is calling (set by authentication); anonymous on stdio and unauthenticated loopback. */
  principal: Principal;
}

const CAPABILITIES: ServerCapabilities = {
  tools: { listChanged: true },
  resources: { listChanged: true, subscribe: true },
  prompts: { listChanged: true },
  logging: {},
  completions: {},
};

/**
 * What the SDK checks a task-augmented request against: everything, so the gateway itself answers a task
 * request for a tool that cannot run as one, with a reason. Clients are told what the upstreams offer now.
 */
const TASKS_ACCEPTED: ServerCapabilities = {
  ...CAPABILITIES,
  tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } },
};

/** JSON-RPC's Internal error, for a thrown value without a numeric code (as the SDK answers it). */
const INTERNAL_ERROR = -32603;

/** Ajv compiles per instance; one shared validator keeps an idle session small. */
const sharedValidator = new AjvJsonSchemaValidator();

export class GatewaySession implements Caller {
  readonly server: Server;
  readonly info: SessionInfo;
  readonly openedAt = performance.now();
  readonly #id: string;
  #pending = 0;
  readonly #refusals: EdgeRefusals;
  #logLevel: LoggingLevel | undefined;
  readonly #deps: SessionDeps;
  /** Aborted once the credentials the session opened with are refused (a reload): its 2026 listens end. */
  #refused: AbortController | undefined;

  constructor(deps: SessionDeps, info: SessionInfo) {
    this.#deps = deps;
    this.info = info;
    this.#refusals = new EdgeRefusals(deps.log, deps.telemetry, "refusedOnSession");
    this.#id = `${info.transport}-${crypto.randomUUID()}`;
    this.server = new Server(deps.serverInfo, {
      capabilities: TASKS_ACCEPTED,
      ...(deps.instructions ? { instructions: deps.instructions } : {}),
      jsonSchemaValidator: sharedValidator,
    });
    this.server.removeRequestHandler(SetLevelRequestSchema.shape.method.value);
    // The transport's and the SDK's own complaints (a stream cut for a client that stopped reading, a
    // response that could not be sent): the session goes on, the operator sees them.
    this.server.onerror = (error) =>
      deps.log.warn("session transport error", { session: this.sessionId, error: error.message });
    // Read by the SDK when it answers initialize (a private method in its types): the task capabilities
    // of the upstreams at that moment, as upstreams may connect after the session object is made.
    (this.server as unknown as { getCapabilities(): ServerCapabilities }).getCapabilities = () => {
      const tasks = deps.tasks.capabilities();
      return tasks ? { ...CAPABILITIES, tasks } : CAPABILITIES;
    };
    // Requests that reach the SDK's own dispatch (task-related ones, or with another SDK version).
    this.server.fallbackRequestHandler = (request, extra) =>
      this.#handle(request, {
        requestId: extra.requestId,
        signal: extra.signal,
        headers: extra.requestInfo?.headers,
        notify: (method, params) => extra.sendNotification({ method, params } as never),
      });
  }

  /** Everything but `initialize` and `ping`: the 2026-07-28 envelope statelessly, the rest under a SERVER span. */
  #handle(request: JSONRPCRequest, incoming: Incoming): Promise<Record<string, unknown>> {
    const deps = this.#deps;
    const { info } = this;
    const params = request.params as Record<string, unknown> | undefined;
    // A request carrying the 2026-07-28 envelope is served statelessly, whatever this session negotiated.
    if (deps.modern && declaredVersion(params) !== undefined) {
      return deps.modern
        .serve(
          { id: incoming.requestId, method: request.method, params: params ?? {} },
          {
            principal: info.principal,
            signal: incoming.signal,
            refused: this.#refusedSignal(),
            notify: (method, p) => {
              incoming.notify(method, p).catch(() => {});
            },
            transport: info.transport === "stdio" ? "pipe" : "tcp",
          },
        )
        .catch((err) => {
          // The SDK sends a thrown object's numeric `code`, `message` and `data` as the JSON-RPC error.
          const { code, message, data } = modernWireError(err);
          throw Object.assign(new Error(message), { code, data });
        });
    }
    const span: ServerSpanInfo = {
      method: request.method,
      sessionId: this.sessionId,
      requestId: incoming.requestId,
      transport: info.transport === "stdio" ? "pipe" : "tcp",
    };
    const target = params?.name ?? params?.uri;
    if (typeof target === "string") span.target = target;
    const { headers } = incoming;
    if (headers) {
      span.headers = headers;
      const version = headers["mcp-protocol-version"];
      if (typeof version === "string") span.protocolVersion = version;
    }
    if (params?._meta !== undefined) span.meta = params._meta as Record<string, unknown>;
    return deps.telemetry.serverSpan(span, () => this.#admit(request, incoming));
  }

  /**
   * The SDK's `_onrequest`, minus its per-request `extra` object, closures and promise chain: the request is
   * registered under its id where the SDK's `notifications/cancelled` handling and `close()` abort it, and is
   * answered like the SDK answers (nothing once cancelled; a thrown `code`/`message`/`data` as the error).
   * Requests related to a task, or asking for one, stay with the SDK (it checks and queues those).
   */
  readonly #direct: DirectRequestHandler = (request, extra, controllers) => {
    const meta = request.params?._meta as Record<string, unknown> | undefined;
    if (request.params?.task !== undefined || meta?.[RELATED_TASK_META_KEY] !== undefined) return false;
    const transport = this.server.transport;
    if (!transport) return false;
    const { id } = request;
    const controller = new AbortController();
    const { signal } = controller;
    controllers.set(id, controller);
    const done = () => {
      if (controllers.get(id) === controller) controllers.delete(id);
    };
    const fail = (err: unknown) => {
      done();
      this.server.onerror?.(new Error(`Failed to send response: ${err}`));
    };
    let answer: Promise<Record<string, unknown>>;
    try {
      answer = this.#handle(request, {
        requestId: id,
        signal,
        headers: extra?.requestInfo?.headers,
        notify: (method, params) =>
          signal.aborted
            ? Promise.resolve()
            : this.server.notification({ method, params } as never, { relatedRequestId: id }),
      });
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(
      (result) => {
        if (signal.aborted) return done();
        transport.send({ result, jsonrpc: "2.0", id } as JSONRPCMessage).then(done, fail);
      },
      (error: { code?: unknown; message?: string; data?: unknown }) => {
        if (signal.aborted) return done();
        const response = {
          jsonrpc: "2.0",
          id,
          error: {
            code: Number.isSafeInteger(error?.code) ? error.code : INTERNAL_ERROR,
            message: error?.message ?? "Internal error",
            ...(error?.data !== undefined && { data: error.data }),
          },
        };
        transport.send(response as JSONRPCMessage).then(done, fail);
      },
    );
    return true;
  };

  /** Transport session id when the transport has one (Streamable HTTP), else a generated id. */
  get sessionId(): string {
    return this.server.transport?.sessionId ?? this.#id;
  }

  connect(transport: Transport): Promise<void> {
    const limited = enforceMessageLimits(transport, this.#deps.limits, this.refused);
    return this.server.connect(deliverDirectly(limited, this.server as never, this.#direct));
  }

  /** A message refused at the edge (over a structural limit, or a request id already in flight). */
  readonly refused = (message: JSONRPCMessage, error: GatewayError): void => {
    this.#refusals.record(message, error, {
      fields: { session: this.sessionId },
      span: { sessionId: this.sessionId, transport: this.info.transport === "stdio" ? "pipe" : "tcp" },
    });
  };

  /** A reload no longer accepts the session's credentials: a listen it carries ends, with its result. */
  credentialsRefused(): void {
    // Made here if need be: a listen dispatched after this still sees the refusal.
    this.#refused ??= new AbortController();
    this.#refused.abort();
  }

  /** Made on the first enveloped request: most sessions never send one. */
  #refusedSignal(): AbortSignal {
    this.#refused ??= new AbortController();
    return this.#refused.signal;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  canElicit(): boolean {
    return this.server.getClientCapabilities()?.elicitation !== undefined;
  }

  canElicitUrl(): boolean {
    return this.server.getClientCapabilities()?.elicitation?.url !== undefined;
  }

  /** A server→client request (sampling, elicitation, roots) on behalf of an upstream. */
  request(
    method: string,
    params: Record<string, unknown> | undefined,
    options: { relatedRequestId?: string | number; signal?: AbortSignal },
  ): Promise<Record<string, unknown>> {
    return this.server.request({ method, params } as never, ResultSchema, {
      ...(options.relatedRequestId !== undefined ? { relatedRequestId: options.relatedRequestId } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      timeout: 10 * 60_000,
    }) as Promise<Record<string, unknown>>;
  }

  async notify(
    method: string,
    params: Record<string, unknown> | undefined,
    relatedRequestId?: string | number,
  ) {
    if (method === "notifications/message" && this.#ignoresLevel(params?.level)) return;
    await this.server.notification(
      { method, params } as never,
      relatedRequestId === undefined ? undefined : { relatedRequestId },
    );
  }

  #ignoresLevel(level: unknown): boolean {
    if (!this.#logLevel) return false;
    const levels = LoggingLevelSchema.options;
    return levels.indexOf(level as LoggingLevel) < levels.indexOf(this.#logLevel);
  }

  /** Bounds the requests a session has in flight, so one client cannot pile up unbounded work. */
  #admit(request: JSONRPCRequest, extra: Incoming): Promise<Record<string, unknown>> {
    // During a shutdown's drain only the calls already in flight finish; a new request is refused so the
    // client can retry on another instance.
    if (this.#deps.router.draining) {
      return Promise.reject(
        asMcpError(
          new GatewayError(
            ErrorCode.ShuttingDown,
            `toolgate is shutting down and takes no new requests (${request.method} was not started); retry on another instance or after the restart`,
            { policy: "drain" },
          ),
        ),
      );
    }
    if (this.#pending >= this.#deps.maxPending) {
      return Promise.reject(
        asMcpError(
          new GatewayError(
            ErrorCode.RateLimited,
            `this session already has ${this.#pending} requests unanswered (gateway.maxPendingPerSession); wait for answers before sending more`,
            { policy: "maxPendingPerSession" },
          ),
        ),
      );
    }
    this.#pending++;
    let answer: Promise<Record<string, unknown>>;
    try {
      answer = this.#dispatch(request, extra);
    } catch (err) {
      answer = Promise.reject(err);
    }
    return answer.then(this.#answered, this.#failed);
  }

  /** #admit's settle handlers, one pair per session rather than an async layer per request. */
  readonly #answered = (result: Record<string, unknown>): Record<string, unknown> => {
    this.#pending--;
    return result;
  };

  readonly #failed = (err: unknown): never => {
    this.#pending--;
    throw asMcpError(err);
  };

  /** May throw: #admit turns whatever fails into the JSON-RPC error. */
  #dispatch(request: JSONRPCRequest, extra: Incoming): Promise<Record<string, unknown>> {
    const params = (request.params ?? {}) as Record<string, unknown>;
    // The hot path, without an async layer of its own.
    if (request.method === "tools/call" && params.task === undefined) {
      return this.#neutral(request, params, extra);
    }
    return this.#serve(request, params, extra);
  }

  async #serve(
    request: JSONRPCRequest,
    params: Record<string, unknown>,
    extra: Incoming,
  ): Promise<Record<string, unknown>> {
    const { router } = this.#deps;
    switch (request.method) {
      case "ping":
        return {};
      case "tools/call":
        if (params.task === undefined) return await this.#neutral(request, params, extra);
        return await this.#taskCall(params, this.#context(params, extra));
      case "tasks/get":
        return wireTask(await this.#deps.tasks.get(params.taskId, this.#context(params, extra)));
      case "tasks/result":
        return await this.#deps.tasks.result(params.taskId, this.#context(params, extra));
      case "tasks/cancel":
        return wireTask(await this.#deps.tasks.cancel(params.taskId, this.#context(params, extra)));
      case "tasks/list": {
        const listed = await this.#deps.tasks.list(params.cursor, this.#context(params, extra));
        return {
          tasks: listed.tasks.map(wireTask),
          ...(listed.nextCursor && { nextCursor: listed.nextCursor }),
        };
      }
      case "resources/subscribe":
        return await router.subscribe(params, this.#context(params, extra));
      case "resources/unsubscribe":
        return await router.unsubscribe(params, this.#context(params, extra));
      case "logging/setLevel": {
        const level = LoggingLevelSchema.safeParse(params.level);
        if (!level.success) throw invalidParams(`unknown log level ${JSON.stringify(params.level)}`);
        this.#logLevel = level.data;
        await router.setLogLevel(this, level.data);
        return {};
      }
      default:
        return await this.#neutral(request, params, extra);
    }
  }

  /** What both eras serve alike (server/dispatch.ts). */
  #neutral(request: JSONRPCRequest, params: Record<string, unknown>, extra: Incoming) {
    // Over HTTP a tools/call POST carries this one message: its body size is the request's size.
    const length = Number(extra.headers?.["content-length"]);
    return dispatch(this.#deps.router, {
      method: request.method,
      params,
      caller: this,
      principal: this.info.principal,
      requestId: extra.requestId,
      signal: extra.signal,
      requestBytes: Number.isFinite(length) ? length : undefined,
      notify: extra.notify,
      whenCatalogReady: this.#deps.whenCatalogReady,
    });
  }

  #context(params: Record<string, unknown>, extra: Incoming): RequestContext {
    return {
      caller: this,
      principal: this.info.principal,
      requestId: extra.requestId,
      signal: extra.signal,
      meta: params._meta as Record<string, unknown> | undefined,
    };
  }

  /** A task-augmented `tools/call` (2025-11-25 experimental tasks): a task handle now, the result later. */
  async #taskCall(params: Record<string, unknown>, ctx: RequestContext) {
    const name = params.name;
    if (typeof name !== "string") throw invalidParams("tools/call needs params.name (a string)");
    const args = params.arguments ?? {};
    if (typeof args !== "object" || Array.isArray(args))
      throw invalidParams("tools/call params.arguments must be an object");
    const created = await this.#deps.tasks.callTool(
      name,
      args as Record<string, unknown>,
      { ...ctx, onProgress: undefined },
      taskRequest(params.task),
    );
    if ("result" in created) return created.result;
    return { task: wireTask(created.task) };
  }
}

/** One request as the session serves it, whichever path (the SDK's or the direct one) delivered it. */
interface Incoming {
  requestId: string | number;
  signal: AbortSignal;
  /** HTTP request headers, when it came over Streamable HTTP. */
  headers: Record<string, string | string[] | undefined> | undefined;
  /** A notification related to this request (progress), on its response stream. */
  notify(method: string, params: Record<string, unknown> | undefined): Promise<void>;
}

/** The SDK turns a thrown object with numeric `code` into a JSON-RPC error response. */
function asMcpError(err: unknown): Error & { code: number; data: unknown } {
  const wire = toWire(err);
  return Object.assign(new Error(wire.message), { code: wire.code, data: wire.data });
}
