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
  ResultSchema,
  type ServerCapabilities,
  SetLevelRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv";
import { ErrorCode, GatewayError, toWire } from "../errors.ts";
import type { Caller, Router } from "../router/router.ts";
import type { TaskService } from "../tasks/tasks.ts";
import type { Logger } from "../telemetry/log.ts";
import type { Telemetry } from "../telemetry/telemetry.ts";
import type { Principal } from "./auth/principal.ts";
import { enforceMessageLimits, type MessageLimits } from "./message-limits.ts";
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

/** Ajv compiles per instance; one shared validator keeps an idle session small. */
const sharedValidator = new AjvJsonSchemaValidator();

const PAGE_SIZE = 500;

/** Requests that wait for the start-up hold: an early list must not look complete while upstreams connect. */
const HELD_AT_START = new Set(["tools/list", "prompts/list", "resources/list", "resources/templates/list"]);

export class GatewaySession implements Caller {
  readonly server: Server;
  readonly info: SessionInfo;
  readonly openedAt = performance.now();
  readonly #id: string;
  #pending = 0;
  #logLevel: LoggingLevel | undefined;
  readonly #deps: SessionDeps;

  constructor(deps: SessionDeps, info: SessionInfo) {
    this.#deps = deps;
    this.info = info;
    this.#id = `${info.transport}-${crypto.randomUUID()}`;
    this.server = new Server(deps.serverInfo, {
      capabilities: TASKS_ACCEPTED,
      ...(deps.instructions ? { instructions: deps.instructions } : {}),
      jsonSchemaValidator: sharedValidator,
    });
    this.server.removeRequestHandler(SetLevelRequestSchema.shape.method.value);
    // Read by the SDK when it answers initialize (a private method in its types): the task capabilities
    // of the upstreams at that moment, as upstreams may connect after the session object is made.
    (this.server as unknown as { getCapabilities(): ServerCapabilities }).getCapabilities = () => {
      const tasks = deps.tasks.capabilities();
      return tasks ? { ...CAPABILITIES, tasks } : CAPABILITIES;
    };
    this.server.fallbackRequestHandler = (request, extra) => {
      const params = request.params as Record<string, unknown> | undefined;
      const target = params?.name ?? params?.uri;
      const headers = extra.requestInfo?.headers;
      const version = headers?.["mcp-protocol-version"];
      return deps.telemetry.serverSpan(
        {
          method: request.method,
          ...(typeof target === "string" && { target }),
          sessionId: this.sessionId,
          requestId: extra.requestId,
          transport: info.transport === "stdio" ? "pipe" : "tcp",
          ...(typeof version === "string" && { protocolVersion: version }),
          ...(params?._meta !== undefined && { meta: params._meta as Record<string, unknown> }),
          ...(headers && { headers }),
        },
        () => this.#admit(request, extra),
      );
    };
  }

  /** Transport session id when the transport has one (Streamable HTTP), else a generated id. */
  get sessionId(): string {
    return this.server.transport?.sessionId ?? this.#id;
  }

  connect(transport: Transport): Promise<void> {
    return this.server.connect(enforceMessageLimits(transport, this.#deps.limits, this.#overLimit));
  }

  /** A message refused at the edge: logged, and a request is counted like any failed request. */
  #overLimit = (message: JSONRPCMessage, error: GatewayError): void => {
    const method = "method" in message ? message.method : "response";
    this.#deps.log.warn("message over a structural limit refused", {
      session: this.sessionId,
      method,
      error: error.message,
    });
    if (!("id" in message) || !("method" in message)) return;
    const transport = this.info.transport === "stdio" ? "pipe" : "tcp";
    void this.#deps.telemetry
      .serverSpan({ method, sessionId: this.sessionId, requestId: message.id, transport }, () =>
        Promise.reject(error),
      )
      .catch(() => {});
  };

  close(): Promise<void> {
    return this.server.close();
  }

  canElicit(): boolean {
    return this.server.getClientCapabilities()?.elicitation !== undefined;
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
  async #admit(request: JSONRPCRequest, extra: Extra): Promise<Record<string, unknown>> {
    // During a shutdown's drain only the calls already in flight finish; a new request is refused so the
    // client can retry on another instance.
    if (this.#deps.router.draining) {
      throw asMcpError(
        new GatewayError(
          ErrorCode.ShuttingDown,
          `toolgate is shutting down and takes no new requests (${request.method} was not started); retry on another instance or after the restart`,
          { policy: "drain" },
        ),
      );
    }
    if (this.#pending >= this.#deps.maxPending) {
      throw asMcpError(
        new GatewayError(
          ErrorCode.RateLimited,
          `this session already has ${this.#pending} requests unanswered (gateway.maxPendingPerSession); wait for answers before sending more`,
          { policy: "maxPendingPerSession" },
        ),
      );
    }
    this.#pending++;
    try {
      return await this.#dispatch(request, extra);
    } finally {
      this.#pending--;
    }
  }

  async #dispatch(request: JSONRPCRequest, extra: Extra): Promise<Record<string, unknown>> {
    const { router } = this.#deps;
    const params = (request.params ?? {}) as Record<string, unknown>;
    const ctx = {
      caller: this,
      principal: this.info.principal,
      requestId: extra.requestId,
      signal: extra.signal,
      meta: params._meta as Record<string, unknown> | undefined,
    };
    try {
      const { whenCatalogReady } = this.#deps;
      if (
        whenCatalogReady &&
        (HELD_AT_START.has(request.method) ||
          (request.method === "tools/call" &&
            typeof params.name === "string" &&
            !router.knowsTool(params.name)))
      ) {
        await whenCatalogReady(extra.signal);
      }
      switch (request.method) {
        case "ping":
          return {};
        case "tools/list":
          return page(router.listTools(this.info.principal), params.cursor, "tools");
        case "tools/call": {
          const name = params.name;
          if (typeof name !== "string") throw invalid("tools/call needs params.name (a string)");
          const args = params.arguments ?? {};
          if (typeof args !== "object" || Array.isArray(args))
            throw invalid("tools/call params.arguments must be an object");
          if (params.task !== undefined) {
            const created = await this.#deps.tasks.callTool(
              name,
              args as Record<string, unknown>,
              { ...ctx, onProgress: undefined },
              taskRequest(params.task),
            );
            if ("result" in created) return created.result;
            return { task: wireTask(created.task) };
          }
          const progressToken = ctx.meta?.progressToken;
          // Progress is sent asynchronously; the result must not overtake the last update. The SDK client
          // drops a progress update that arrives in the same read as its response: a macrotask between
          // them keeps them in separate writes.
          let progressSent: Promise<void> | undefined;
          const length = Number(extra.requestInfo?.headers?.["content-length"]);
          const result = await router.callTool(name, args as Record<string, unknown>, {
            ...ctx,
            // Over HTTP a tools/call POST carries this one message: its body size is the request's size.
            requestBytes: Number.isFinite(length) ? length : undefined,
            onProgress:
              progressToken === undefined
                ? undefined
                : (p) => {
                    const notification = {
                      method: "notifications/progress",
                      params: { ...p, progressToken },
                    };
                    progressSent = (progressSent ?? Promise.resolve())
                      .then(() => extra.sendNotification(notification as never))
                      .catch(() => {});
                  },
          });
          if (progressSent) {
            await progressSent;
            await new Promise((resolve) => setImmediate(resolve));
          }
          return result;
        }
        case "tasks/get":
          return wireTask(await this.#deps.tasks.get(params.taskId, ctx));
        case "tasks/result":
          return await this.#deps.tasks.result(params.taskId, ctx);
        case "tasks/cancel":
          return wireTask(await this.#deps.tasks.cancel(params.taskId, ctx));
        case "tasks/list": {
          const listed = await this.#deps.tasks.list(params.cursor, ctx);
          return {
            tasks: listed.tasks.map(wireTask),
            ...(listed.nextCursor && { nextCursor: listed.nextCursor }),
          };
        }
        case "prompts/list":
          return page(router.listPrompts(), params.cursor, "prompts");
        case "prompts/get":
          return await router.getPrompt(params, ctx);
        case "resources/list":
          return page(router.listResources(), params.cursor, "resources");
        case "resources/templates/list":
          return page(router.listResourceTemplates(), params.cursor, "resourceTemplates");
        case "resources/read":
          return await router.readResource(params, ctx);
        case "resources/subscribe":
          return await router.subscribe(params, ctx);
        case "resources/unsubscribe":
          return await router.unsubscribe(params, ctx);
        case "completion/complete":
          return await router.complete(params, ctx);
        case "logging/setLevel": {
          const level = LoggingLevelSchema.safeParse(params.level);
          if (!level.success) throw invalid(`unknown log level ${JSON.stringify(params.level)}`);
          this.#logLevel = level.data;
          await router.setLogLevel(this, level.data);
          return {};
        }
        default:
          throw new GatewayError(
            ErrorCode.MethodNotFound,
            `toolgate does not support method "${request.method}"`,
          );
      }
    } catch (err) {
      throw asMcpError(err);
    }
  }
}

type Extra = Parameters<NonNullable<Server["fallbackRequestHandler"]>>[1];

function invalid(message: string): GatewayError {
  return new GatewayError(ErrorCode.InvalidRequest, message);
}

/** The SDK turns a thrown object with numeric `code` into a JSON-RPC error response. */
function asMcpError(err: unknown): Error & { code: number; data: unknown } {
  const wire = toWire(err);
  return Object.assign(new Error(wire.message), { code: wire.code, data: wire.data });
}

/** Opaque cursors over a list that the gateway assembles: base64 of the offset. */
function page<T>(items: readonly T[], cursor: unknown, key: string): Record<string, unknown> {
  let start = 0;
  if (cursor !== undefined) {
    const parsed =
      typeof cursor === "string" ? Number(Buffer.from(cursor, "base64url").toString()) : Number.NaN;
    if (!Number.isInteger(parsed) || parsed < 0) throw invalid(`invalid cursor ${JSON.stringify(cursor)}`);
    start = parsed;
  }
  const end = start + PAGE_SIZE;
  const result: Record<string, unknown> = { [key]: items.slice(start, end) };
  if (end < items.length) result.nextCursor = Buffer.from(String(end)).toString("base64url");
  return result;
}
