/**
 * Router: public name → route → pipeline → upstream (the forward path: calls, lists, reads). What flows the
 * other way (server→client requests, notifications, subscriptions, log levels) is reverse.ts's; the router
 * registers each request in flight there and hands the reverse path's entry points through.
 */
import type {
  LoggingLevel,
  Prompt,
  Resource,
  ResourceTemplate,
  Tool,
} from "@modelcontextprotocol/sdk/types.js";
import type { Catalog, DistrustCause, ToolRoute } from "../catalog/catalog.ts";
import {
  describe,
  ErrorCode,
  GatewayError,
  isProtocolError,
  toGatewayError,
  toToolErrorResult,
  withContext,
} from "../errors.ts";
import { InFlightSet } from "../in-flight.ts";
import { noEvents, type PolicyEvent, type PolicyEvents } from "../policies/events.ts";
import type { CallContext } from "../policies/types.ts";
import type { Logger } from "../telemetry/log.ts";
import { UNKNOWN_TARGET } from "../telemetry/names.ts";
import type { UpstreamHandle } from "../upstreams/handle.ts";
import type { Connection } from "../upstreams/principal-pool.ts";
import { callAsTask } from "../upstreams/task-bridge.ts";
import { untilReady } from "../upstreams/upstream.ts";
import { type ApprovalQueue, requireApproval } from "./approval.ts";
import { connectOrElicit, type WhenAuthorized } from "./consent.ts";
import { PipelineCache, type PipelineCacheOptions } from "./pipelines.ts";
import { callResultProblem, forwardedResultProblem } from "./result-shape.ts";
import { ReversePath } from "./reverse.ts";

/** The downstream session that made a request (implemented by server/session.ts). */
export interface Caller {
  readonly sessionId: string;
  request(
    method: string,
    params: Record<string, unknown> | undefined,
    options: { relatedRequestId?: string | number; signal?: AbortSignal },
  ): Promise<Record<string, unknown>>;
  notify(
    method: string,
    params: Record<string, unknown> | undefined,
    relatedRequestId?: string | number,
  ): Promise<void>;
  /** True when the client can be asked through elicitation (absent: it cannot). */
  canElicit?(): boolean;
  /** True when the client supports URL-mode elicitation (absent: it does not). */
  canElicitUrl?(): boolean;
  /** The call is held (for an operator's approval): a task says so in its status. */
  held?(message: string): void;
}

/** Who is calling (structurally server/auth's Principal). */
export interface Principal {
  id: string;
  kind: "apiKey" | "oauth" | "anonymous";
  scopes: string[];
}

export interface RequestContext {
  caller: Caller;
  principal: Principal;
  requestId: string | number;
  signal: AbortSignal;
  /** The client's `params._meta`. */
  meta: Record<string, unknown> | undefined;
}

export interface CallToolContext extends RequestContext {
  /** Size of the request on the wire, when the transport knows it. */
  requestBytes?: number | undefined;
  onProgress: ((p: { progress: number; total?: number; message?: string }) => void) | undefined;
  /** `params.task` to send upstream: the call then answers with the upstream's CreateTaskResult. */
  task?: Record<string, unknown> | undefined;
  /** Sees this call's policy events too (a task the gateway runs tracks queue and lock waits). */
  onPolicyEvent?: ((event: PolicyEvent) => void) | undefined;
}

export type Result = Record<string, unknown>;
export type Terminal = (ctx: CallContext) => Promise<Result>;

/** The pipeline's context plus what the terminal upstream call needs; policies pass it through untouched. */
interface RoutedContext extends CallContext {
  route: ToolRoute;
  call: CallToolContext;
}

/** Who may see and call what (server/auth); absent: everything is allowed. */
export interface AccessControl {
  canSee(principal: Principal, route: ToolRoute): boolean;
  /** Throws GatewayError Forbidden / RateLimited; returns a release function for per-principal caps. */
  admit(principal: Principal, route: ToolRoute): (() => void) | Promise<() => void>;
}

/** Validates arguments against a tool's input schema before any slot is taken (catalog/input-validation). */
type ArgumentCheck = (route: ToolRoute, args: Record<string, unknown>) => void;

export interface RouterDeps {
  catalog: Catalog;
  upstreams: { get(name: string): UpstreamHandle | undefined; all(): Iterable<UpstreamHandle> };
  /** What the router's pipeline cache is built from (it owns the cache: fallbacks run through the router). */
  pipelines: Omit<PipelineCacheOptions, "callRoute">;
  /** Sink of policy events (telemetry). */
  events?: PolicyEvents;
  log: Logger;
  access?: AccessControl;
  checkArguments?: ArgumentCheck;
  /** Why a successful result breaks the tool's `outputSchema` (catalog/input-validation), or undefined. */
  checkResult?: (route: ToolRoute, result: Result) => string | undefined;
  /** The command that approves a held upstream's tools, for the ToolHeld message. */
  approveCommand?: (upstream: string) => string;
  /** Why a held tool is held, by cause; undefined: the default text for a changed definition. */
  heldReason?: (upstream: string, cause: DistrustCause) => string | undefined;
  /** Wraps each upstream attempt (telemetry CLIENT span); `meta` is merged into the request's `_meta`. */
  aroundAttempt?: <T>(
    route: ToolRoute,
    attempt: number,
    fn: (meta: Record<string, string> | undefined) => Promise<T>,
  ) => Promise<T>;
  /** Wraps each request forwarded as is (prompts, resources, completions): telemetry's CLIENT span. */
  aroundForward?: <T>(
    upstream: string,
    method: string,
    params: Result,
    fn: (meta: Record<string, string> | undefined) => Promise<T>,
  ) => Promise<T>;
  /** Observes every finished call (telemetry, logs, status page). */
  onCallEnd?: (record: CallRecord) => void;
  /** Holds calls for operators when the client cannot ask a person (policy `approval`). */
  approvals?: ApprovalQueue;
  /** Per-principal connections (upstreams/principal-pool.ts). Absent: every request uses the upstream itself. */
  connections?: Connections;
  /** Waits for a principal's consent at a per-principal upstream (asked for by URL-mode elicitation). */
  whenAuthorized?: WhenAuthorized;
}

interface Connections {
  /**
   * The connection a principal's request uses: its own for a per-principal upstream, opened on demand. Throws
   * when the principal must first connect an account.
   */
  connection(upstream: UpstreamHandle, principal: Principal): Promise<Connection>;
  /** The routing key `connection` would give, and the connection itself only if it is open and ready now. */
  openConnection(
    upstream: UpstreamHandle,
    principal: Principal,
  ): Partial<Connection> & { routingKey: string };
}

interface CallRecord {
  /** The route called; for a name not served, UNKNOWN_TARGET (or the held tool's name) and its upstream. */
  route: Pick<ToolRoute, "name" | "upstream">;
  principal: Principal;
  durationMs: number;
  outcome: "ok" | "tool_error" | "error";
  error?: GatewayError;
  requestBytes?: number | undefined;
  /** Size of the result's content (text bytes, decoded binary bytes). */
  responseBytes?: number;
}

export class Router {
  readonly #deps: RouterDeps;
  /** Each tool's policy pipeline; the app reads its breakers, bulkheads and locks and shuts it down. */
  readonly pipelines: PipelineCache;
  /** Server→client requests, notifications, subscriptions and log levels, routed back to sessions. */
  readonly #reverse: ReversePath;
  /** Who subscribed on each connection (routing key) with subscriptions: a per-principal one is that principal's. */
  readonly #subscribers = new Map<string, Principal>();
  /** One controller per tools/call running, so a shutdown's drain timeout can cancel them all. */
  readonly #running = new InFlightSet<{ controller: AbortController; route: ToolRoute }>();
  /** Set when a shutdown's drain time is over: a call starting afterwards is cancelled at once. */
  #drainedAfterMs: number | undefined;
  #draining = false;
  #active = 0;
  #onIdle: (() => void) | undefined;

  constructor(deps: RouterDeps) {
    this.#deps = deps;
    this.#reverse = new ReversePath({ upstreams: deps.upstreams, log: deps.log });
    this.pipelines = new PipelineCache({
      ...deps.pipelines,
      callRoute: (route, args, ctx) => this.#callRoute(route.tool, args, ctx as RoutedContext),
    });
  }

  listTools(principal: Principal): readonly Tool[] {
    const { catalog, access } = this.#deps;
    if (!access) return catalog.tools;
    return [...catalog.toolRoutes()].filter((r) => access.canSee(principal, r)).map((r) => r.definition);
  }

  /** The catalog serves this public tool name (or holds it pending approval). */
  knowsTool(name: string): boolean {
    const { catalog } = this.#deps;
    return catalog.tool(name) !== undefined || catalog.heldBy(name) !== undefined;
  }

  listPrompts(): readonly Prompt[] {
    return this.#deps.catalog.prompts;
  }

  listResources(): Resource[] {
    return this.#deps.catalog.resources;
  }

  listResourceTemplates(): ResourceTemplate[] {
    return this.#deps.catalog.resourceTemplates;
  }

  /** Why `name`, not in the catalog, cannot be called: held, its upstream not serving, or no such tool. */
  async #unlisted(name: string, ctx: CallToolContext): Promise<GatewayError> {
    const { catalog } = this.#deps;
    const held = catalog.heldBy(name);
    if (held) {
      const { upstream } = held;
      return new GatewayError(
        ErrorCode.ToolHeld,
        this.#deps.heldReason?.(upstream, held.cause) ??
          `the definition of this tool changed upstream and is held until an operator approves it (${this.#deps.approveCommand?.(upstream) ?? `toolgate pins approve ${upstream}`})`,
        { upstream, tool: name, policy: "pinning" },
      );
    }
    const owner = catalog.ownerByPrefix(name, this.#deps.upstreams.all());
    const ownerHandle = owner === undefined ? undefined : this.#deps.upstreams.get(owner);
    const status = ownerHandle?.status();
    if (ownerHandle && status && status.state !== "ready") {
      // A principal who must connect an account first hears how, whatever the catalog connection's state.
      try {
        await this.#deps.connections?.connection(ownerHandle, ctx.principal);
      } catch (err) {
        return withContext(toGatewayError(err), { upstream: owner, tool: name });
      }
      // Its upstream is not serving (down, or waiting for authorization): say so rather than "no such tool".
      const why = status.lastError ? `: ${status.lastError}` : "";
      return new GatewayError(
        ErrorCode.UpstreamUnavailable,
        `"${name}" would come from upstream "${status.name}", which is ${status.state}${why}; ${untilReady(status.state, status.nextRetryAt)}`,
        { upstream: status.name, tool: name },
      );
    }
    return new GatewayError(
      ErrorCode.ToolNotFound,
      `no tool named "${name}"; tools/list shows the tools served`,
      {
        tool: name,
      },
    );
  }

  /**
   * A `tools/call`. Failures the model can act on come back as `isError` results naming the cause;
   * unroutable requests (unknown tool) throw and become JSON-RPC errors.
   */
  async callTool(name: string, args: Record<string, unknown>, ctx: CallToolContext): Promise<Result> {
    const { catalog, access, checkArguments, onCallEnd } = this.#deps;
    const listed = catalog.tool(name);
    if (!listed) {
      const started = performance.now();
      const error = await this.#unlisted(name, ctx);
      // Counted under a held tool's name, else under one label: any other name comes from a client.
      const known = error.code === ErrorCode.ToolHeld;
      onCallEnd?.({
        route: { name: known ? name : UNKNOWN_TARGET, upstream: error.upstream ?? "" },
        principal: ctx.principal,
        durationMs: performance.now() - started,
        outcome: "error",
        error,
        requestBytes: ctx.requestBytes,
      });
      if (error.code === ErrorCode.ToolNotFound) throw error;
      return toToolErrorResult(error);
    }
    // Compact mode: an invoke runs under the invoked operation's own route (policies, breaker, metrics).
    const route = catalog.operationRoute(listed, args) ?? listed;
    const started = performance.now();
    let release: (() => void) | undefined;
    let running: { controller: AbortController; route: ToolRoute } | undefined;
    // The client's cancellation or the shutdown's, on a plain controller: AbortSignal.any would do, but a
    // composite signal makes every listener the policies add to it costly, on every call.
    const controller = new AbortController();
    const cancel = () => controller.abort(ctx.signal.reason);
    this.#active++;
    try {
      const admitted = access?.admit(ctx.principal, listed);
      release = admitted instanceof Promise ? await admitted : admitted;
      checkArguments?.(listed, args);
      if (route !== listed) checkArguments?.(route, operationArguments(args));
      // A principal without its own upstream account fails here, not in the pipeline: no retry, no breaker.
      if (this.#deps.connections) {
        await connectOrElicit(
          route.upstream,
          ctx,
          () => this.#connection(route.upstream, ctx.principal, route.name),
          this.#deps.whenAuthorized,
        );
      } else {
        this.#upstream(route.upstream, route.name); // one shared connection: it must still be configured
      }
      if (route.policy.approval === "always") {
        await requireApproval(route, args, ctx, this.#deps.log, this.#deps.approvals);
      }
      if (ctx.signal.aborted) cancel();
      else ctx.signal.addEventListener("abort", cancel); // removed when the call ends
      if (this.#drainedAfterMs !== undefined) controller.abort(shuttingDown(route, this.#drainedAfterMs));
      running = { controller, route };
      this.#running.add(running);
      const context: RoutedContext = {
        signal: controller.signal,
        deadline:
          route.policy.timeout.callMs > 0 ? started + route.policy.timeout.callMs : Number.POSITIVE_INFINITY,
        upstream: route.upstream,
        tool: route.name,
        args,
        priority: priorityOf(ctx.meta, route),
        idempotent: route.idempotent,
        attempt: 1,
        events: withListener(this.#deps.events ?? noEvents, ctx.onPolicyEvent),
        route,
        call: ctx,
      };
      let result: Result;
      for (;;) {
        try {
          result = await this.pipelines.pipeline(route, true).execute(this.#terminal, context);
          break;
        } catch (err) {
          if (!(await this.#approvedRerun(route, args, ctx, controller.signal, err))) throw err;
          // A person chose to run it again: a fresh deadline, the same policies.
          if (route.policy.timeout.callMs > 0)
            context.deadline = performance.now() + route.policy.timeout.callMs;
        }
      }
      onCallEnd?.({
        route,
        principal: ctx.principal,
        durationMs: performance.now() - started,
        outcome: result.isError === true ? "tool_error" : "ok",
        requestBytes: ctx.requestBytes,
        responseBytes: contentBytes(result),
      });
      return result;
    } catch (err) {
      const error = withContext(toGatewayError(err), { upstream: route.upstream, tool: route.name });
      onCallEnd?.({
        route,
        principal: ctx.principal,
        durationMs: performance.now() - started,
        outcome: "error",
        error,
        requestBytes: ctx.requestBytes,
      });
      if (isProtocolError(error)) throw error;
      return toToolErrorResult(error);
    } finally {
      ctx.signal.removeEventListener("abort", cancel);
      if (running) this.#running.delete(running);
      release?.();
      if (--this.#active === 0) this.#onIdle?.();
    }
  }

  /**
   * Policy `approval: "onFailure"`: a call that failed after its retries and fallbacks (a transient or
   * upstream failure, not the caller's) is put to a person, who may have it run again. False: the failure
   * stands (no policy, cancelled, the caller's own error, or the person declined).
   */
  async #approvedRerun(
    route: ToolRoute,
    args: Record<string, unknown>,
    ctx: CallToolContext,
    signal: AbortSignal,
    err: unknown,
  ): Promise<boolean> {
    if (route.policy.approval !== "onFailure" || signal.aborted) return false;
    const failure = toGatewayError(err);
    const rerunnable =
      failure.errorClass === "transient" ||
      failure.code === ErrorCode.RetriesExhausted ||
      failure.code === ErrorCode.FallbackExhausted;
    if (!rerunnable) return false;
    try {
      await requireApproval(route, args, ctx, this.#deps.log, this.#deps.approvals, describe(failure));
      return true;
    } catch {
      return false;
    }
  }

  /** True from the start of a shutdown's drain: sessions refuse new requests with ShuttingDown. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Shutdown: let calls in flight finish for up to `timeoutMs`, then cancel the rest with ShuttingDown. */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    const idle = (ms: number) =>
      new Promise<void>((resolve) => {
        if (this.#active === 0) return resolve();
        const timer = setTimeout(resolve, ms);
        this.#onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    await idle(timeoutMs);
    if (this.#active === 0) return;
    this.#deps.log.warn("drain timeout: cancelling calls still in flight", { calls: this.#active });
    this.#drainedAfterMs = timeoutMs;
    for (const { controller, route } of this.#running) controller.abort(shuttingDown(route, timeoutMs));
    await idle(1_000);
  }

  /** A fallback route: the alternate tool's own pipeline, without its fallbacks, within the same deadline. */
  #callRoute(name: string, args: Record<string, unknown>, ctx: RoutedContext): Promise<Result> {
    const route = this.#deps.catalog.tool(name);
    if (!route) {
      return Promise.reject(
        new GatewayError(ErrorCode.ToolNotFound, `fallback route "${name}" is not in the catalog`, {
          tool: name,
        }),
      );
    }
    const context: RoutedContext = {
      ...ctx,
      upstream: route.upstream,
      tool: route.name,
      args,
      idempotent: route.idempotent,
      attempt: 1,
      route,
    };
    return this.pipelines.pipeline(route, false).execute(this.#terminal, context);
  }

  /**
   * One function for every call, so composed pipelines are cached (no closures per call). Without
   * per-principal connections every call shares the upstream's: no lookup to wait for, no async layer.
   */
  readonly #terminal: Terminal = (ctx) => {
    const routed = ctx as RoutedContext;
    const { route } = routed;
    if (this.#deps.connections) {
      return this.#connection(route.upstream, routed.call.principal, route.name).then((c) =>
        this.#attempt(routed, c.handle, c.routingKey),
      );
    }
    let upstream: UpstreamHandle;
    try {
      upstream = this.#upstream(route.upstream, route.name);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#attempt(routed, upstream, route.upstream);
  };

  /**
   * Why a tool's result from `upstream` (answering `method`: `tools/call`, or an upstream task's `tasks/result`)
   * must not reach the client: malformed, or breaking the tool's outputSchema (when `route` is known); else
   * undefined. A client's SDK would refuse it with an error naming neither the upstream nor the gateway.
   */
  resultProblem(
    upstream: string,
    route: ToolRoute | undefined,
    result: Result,
    method: string,
  ): string | undefined {
    if (result.task !== undefined) return undefined; // a task's creation: its result is checked at tasks/result
    const malformed = callResultProblem(result);
    if (malformed !== undefined)
      return `upstream "${upstream}" answered ${method} with a malformed result: ${malformed}`;
    const mismatch = route && this.#deps.checkResult?.(route, result);
    if (mismatch === undefined) return undefined;
    return `upstream "${upstream}" answered ${method} with a result that does not match the outputSchema of tool "${route?.name}": ${mismatch}`;
  }

  /**
   * One attempt against the route's upstream; the policies decide how many and when. The answer is checked
   * inside the attempt's CLIENT span, so a malformed result shows there as the failure it is.
   */
  #attempt(ctx: RoutedContext, upstream: UpstreamHandle, routingKey: string): Promise<Result> {
    const { route, call, args } = ctx;
    const onActivity = ctx.onActivity;
    const onProgress = call.onProgress;
    const entry = this.#reverse.enter(routingKey, call);
    const answered = (result: Result): Result => {
      this.#reverse.leave(routingKey, entry);
      const problem = this.resultProblem(route.upstream, route, result, "tools/call");
      if (problem === undefined) return result;
      throw new GatewayError(ErrorCode.UpstreamError, problem, {
        upstream: route.upstream,
        tool: route.name,
        policy: "upstream",
        reachedUpstream: true,
      });
    };
    const failed = (err: unknown): never => {
      this.#reverse.leave(routingKey, entry);
      // The upstream knows no tool names: say which tool, and that the failure came from the call itself.
      throw withContext(toGatewayError(err), {
        upstream: route.upstream,
        tool: route.name,
        policy: "upstream",
      });
    };
    const run = (traceMeta: Record<string, string> | undefined): Promise<Result> => {
      let sent: Promise<Result>;
      try {
        const params: Record<string, unknown> = { name: route.upstreamTool, arguments: args };
        if (call.task) params.task = call.task;
        const meta = forwardedMeta(call.meta, traceMeta);
        if (meta) params._meta = meta;
        if (ctx.fencing) params._meta = { ...meta, "toolgate/fencing": ctx.fencing };
        // Nobody listens for progress: ask the upstream for none (onprogress undefined). Only the idle timeout
        // listens: its reset is the handler itself, no closure per call.
        const options =
          onProgress === undefined
            ? { signal: ctx.signal, onprogress: onActivity }
            : {
                signal: ctx.signal,
                onprogress: (p: { progress: number; total?: number; message?: string }) => {
                  onActivity?.();
                  onProgress(p);
                },
              };
        sent =
          route.upstreamTaskOnly && !call.task
            ? callAsTask(upstream, params, options)
            : upstream.request("tools/call", params, options);
      } catch (err) {
        sent = Promise.reject(err);
      }
      return sent.then(answered, failed);
    };
    try {
      return this.#deps.aroundAttempt ? this.#deps.aroundAttempt(route, ctx.attempt, run) : run(undefined);
    } catch (err) {
      return Promise.reject(err).then(undefined, failed);
    }
  }

  #upstream(name: string, tool?: string): UpstreamHandle {
    const upstream = this.#deps.upstreams.get(name);
    if (!upstream) {
      throw new GatewayError(ErrorCode.UpstreamUnavailable, "the upstream is not configured any more", {
        upstream: name,
        ...(tool ? { tool } : {}),
      });
    }
    return upstream;
  }

  /** The connection a principal's request to `name` goes over, and the key its server→client requests use. */
  async #connection(name: string, principal: Principal, tool?: string): Promise<Connection> {
    const upstream = this.#upstream(name, tool);
    const connections = this.#deps.connections;
    return connections ? connections.connection(upstream, principal) : { handle: upstream, routingKey: name };
  }

  /** `#connection` without opening one: the routing key, and the connection only if it is open now. */
  #openConnection(
    upstream: UpstreamHandle,
    principal: Principal,
  ): Partial<Connection> & { routingKey: string } {
    return (
      this.#deps.connections?.openConnection(upstream, principal) ?? {
        handle: upstream,
        routingKey: upstream.name,
      }
    );
  }

  /** Forward a request to one upstream as is (prompts, resources, completions): no policies but cancellation. */
  async #forward(upstream: string, method: string, params: Result, ctx: RequestContext): Promise<Result> {
    return this.#forwardOn(await this.#connection(upstream, ctx.principal), upstream, method, params, ctx);
  }

  /** `#forward` on a connection already chosen. */
  #forwardOn(
    { handle: target, routingKey }: Connection,
    upstream: string,
    method: string,
    params: Result,
    ctx: RequestContext,
  ): Promise<Result> {
    const { _meta: _, ...rest } = params;
    // The result is checked inside the span, so the client operation's metric counts a malformed one as failed.
    const checked = (result: Result): Result => {
      const problem = forwardedResultProblem(method, result);
      if (problem === undefined) return result;
      throw new GatewayError(
        ErrorCode.UpstreamError,
        `upstream "${upstream}" answered ${method} with a malformed result: ${problem}`,
        { upstream, reachedUpstream: true },
      );
    };
    const run = (traceMeta: Record<string, string> | undefined) => {
      const meta = forwardedMeta(ctx.meta, traceMeta);
      return target
        .request(method, meta ? { ...rest, _meta: meta } : rest, { signal: ctx.signal })
        .then(checked);
    };
    const around = this.#deps.aroundForward;
    return this.#reverse.track(routingKey, ctx, () =>
      around ? around(upstream, method, rest, run) : run(undefined),
    );
  }

  /** A task method (`tasks/get`, `tasks/result`, …) to the upstream owning the task; no policies but cancellation. */
  forwardTask(upstream: string, method: string, params: Result, ctx: RequestContext): Promise<Result> {
    return this.#forward(upstream, method, params, ctx);
  }

  async getPrompt(params: Result, ctx: RequestContext): Promise<Result> {
    const name = params.name;
    if (typeof name !== "string")
      throw new GatewayError(ErrorCode.InvalidParams, "params.name must be a string");
    const route = this.#deps.catalog.prompt(name);
    if (!route) {
      throw new GatewayError(
        ErrorCode.PromptNotFound,
        `no prompt named ${JSON.stringify(name)}; prompts/list shows them`,
      );
    }
    return this.#forward(route.upstream, "prompts/get", { ...params, name: route.upstreamPrompt }, ctx);
  }

  async readResource(params: Result, ctx: RequestContext): Promise<Result> {
    return this.#forward(this.#resourceUpstream(params.uri), "resources/read", params, ctx);
  }

  /** The first session subscribed to `uri` on its connection asks it (per principal on a per-principal upstream). */
  async subscribe(params: Result, ctx: RequestContext): Promise<Result> {
    const upstream = this.#resourceUpstream(params.uri);
    const connection = await this.#connection(upstream, ctx.principal);
    this.#subscribers.set(connection.routingKey, ctx.principal);
    const first = this.#reverse.subscribe(connection.routingKey, params.uri as string, ctx.caller);
    return first ? this.#forwardOn(connection, upstream, "resources/subscribe", params, ctx) : {};
  }

  /**
   * The last session subscribed to `uri` on its connection tells it. A principal's connection that closed
   * meanwhile is not reopened for that: it took its subscriptions with it, and one reopened restores only
   * those still made.
   */
  async unsubscribe(params: Result, ctx: RequestContext): Promise<Result> {
    const name = this.#resourceUpstream(params.uri);
    const upstream = this.#upstream(name);
    const { handle, routingKey } = this.#openConnection(upstream, ctx.principal);
    if (!this.#reverse.unsubscribe(routingKey, params.uri as string, ctx.caller)) return {};
    if (!this.#reverse.subscribedOn(routingKey)) this.#subscribers.delete(routingKey);
    if (!handle) return {};
    return this.#forwardOn({ handle, routingKey }, name, "resources/unsubscribe", params, ctx);
  }

  async complete(params: Result, ctx: RequestContext): Promise<Result> {
    const ref = params.ref as { type?: string; name?: string; uri?: string } | undefined;
    if (ref?.type === "ref/prompt") {
      const route = typeof ref.name === "string" ? this.#deps.catalog.prompt(ref.name) : undefined;
      if (!route)
        throw new GatewayError(ErrorCode.PromptNotFound, `no prompt named ${JSON.stringify(ref.name)}`);
      return this.#forward(
        route.upstream,
        "completion/complete",
        { ...params, ref: { ...ref, name: route.upstreamPrompt } },
        ctx,
      );
    }
    if (ref?.type === "ref/resource") {
      return this.#forward(this.#resourceUpstream(ref.uri), "completion/complete", params, ctx);
    }
    throw new GatewayError(ErrorCode.InvalidParams, "completion/complete needs ref/prompt or ref/resource");
  }

  /** A session's log level; upstreams get the most verbose level any session asked for. */
  setLogLevel(caller: Caller, level: LoggingLevel): Promise<void> {
    return this.#reverse.setLogLevel(caller, level);
  }

  /**
   * Forget a session that ended. A resource it was the last subscriber to on its connection is unsubscribed there
   * (when that connection is open), or the upstream would go on sending updates nobody receives.
   */
  sessionClosed(caller: Caller): void {
    for (const { routingKey, uri } of this.#reverse.sessionClosed(caller)) {
      const subscriber = this.#subscribers.get(routingKey);
      if (!this.#reverse.subscribedOn(routingKey)) this.#subscribers.delete(routingKey);
      const name = this.#deps.catalog.resourceUpstream(uri);
      const upstream = name === undefined ? undefined : this.#deps.upstreams.get(name);
      if (!subscriber || !upstream) continue;
      const open = this.#openConnection(upstream, subscriber);
      // The resource moved to another upstream since: the connection now serving it was never asked.
      const { handle } = open;
      if (open.routingKey !== routingKey || handle?.status().state !== "ready") continue;
      handle.request("resources/unsubscribe", { uri }, {}).catch((err) =>
        this.#deps.log.debug("could not unsubscribe a resource its last subscriber left", {
          upstream: name,
          uri,
          error: (err as Error).message,
        }),
      );
    }
  }

  #resourceUpstream(uri: unknown): string {
    if (typeof uri !== "string")
      throw new GatewayError(ErrorCode.InvalidParams, "params.uri must be a string");
    const upstream = this.#deps.catalog.resourceUpstream(uri);
    if (!upstream) {
      throw new GatewayError(
        ErrorCode.ResourceNotFound,
        `no upstream serves resource ${JSON.stringify(uri)}`,
        { data: { uri } },
      );
    }
    return upstream;
  }

  /** An upstream (re)connected: what sessions asked of the old connection is asked again (reverse.ts). */
  upstreamConnected(name: string): Promise<void> {
    const upstream = this.#deps.upstreams.get(name);
    return upstream ? this.connectionOpened(upstream, name) : Promise.resolve();
  }

  /** Whether a session is subscribed to a resource on the connection under `routingKey`. */
  subscribedOn(routingKey: string): boolean {
    return this.#reverse.subscribedOn(routingKey);
  }

  /** A connection under `routingKey` (an upstream's, or a principal's own) opened: the same, for it. */
  connectionOpened(connection: UpstreamHandle, routingKey: string): Promise<void> {
    const { name } = connection;
    return this.#reverse.restore(
      routingKey,
      connection,
      (uri) => this.#deps.catalog.resourceUpstream(uri) === name,
    );
  }

  /** A server→client request from an upstream, to the session with the latest call in flight there. */
  serverRequest(
    upstream: string,
    method: string,
    params: Result | undefined,
    signal: AbortSignal,
  ): Promise<Result> {
    return this.#reverse.serverRequest(upstream, method, params, signal);
  }

  /** A notification from an upstream, to the callers in flight there (resource updates: to subscribers). */
  routeNotification(upstream: string, method: string, params: Result | undefined): void {
    this.#reverse.routeNotification(upstream, method, params);
  }
}

/** The arguments of an invoked operation inside a compact-mode invoke call. */
function operationArguments(args: Record<string, unknown>): Record<string, unknown> {
  const inner = args.arguments;
  return inner && typeof inner === "object" && !Array.isArray(inner)
    ? (inner as Record<string, unknown>)
    : {};
}

function shuttingDown(route: ToolRoute, drainMs: number): GatewayError {
  return new GatewayError(
    ErrorCode.ShuttingDown,
    `toolgate is shutting down; the call was cancelled after the ${drainMs} ms drain time (gateway.drainTimeoutMs)`,
    { upstream: route.upstream, tool: route.name, reachedUpstream: true },
  );
}

/** The shared event sink, plus one call's own listener when it has one. */
function withListener(events: PolicyEvents, listener: ((e: PolicyEvent) => void) | undefined): PolicyEvents {
  if (!listener) return events;
  return {
    emit(event) {
      events.emit(event);
      try {
        listener(event);
      } catch {
        // A listener must never change the outcome of a call.
      }
    },
  };
}

/** Priority of a queued call: `_meta["toolgate/priority"]` from the client, else the tool's configured one. */
function priorityOf(meta: Record<string, unknown> | undefined, route: ToolRoute): number {
  const p = meta?.["toolgate/priority"];
  return typeof p === "number" && Number.isFinite(p) ? p : route.policy.concurrency.priority;
}

/** The client's `_meta` minus its progress token (the SDK sets its own upstream), plus trace context. */
function forwardedMeta(
  meta: Record<string, unknown> | undefined,
  trace: Record<string, string> | undefined,
): Record<string, unknown> | undefined {
  const traced = trace !== undefined && hasKeys(trace);
  if (!meta) return traced ? { ...trace } : undefined;
  const { progressToken: _, ...rest } = meta;
  const merged = traced ? { ...rest, ...trace } : rest;
  return Object.keys(merged).length ? merged : undefined;
}

function hasKeys(object: object): boolean {
  for (const _ in object) return true;
  return false;
}

/**
 * Bytes of a result's content without serializing it: text as UTF-8, base64 data and blobs decoded.
 * Enough for a payload-size histogram; `structuredContent` and `_meta` are not counted.
 */
function contentBytes(result: Result): number {
  let bytes = 0;
  const content = result.content;
  if (!Array.isArray(content)) return bytes;
  for (const item of content as Array<Record<string, unknown>>) {
    const text = item.text ?? (item.resource as Record<string, unknown> | undefined)?.text;
    if (typeof text === "string") bytes += Buffer.byteLength(text);
    const data = item.data ?? (item.resource as Record<string, unknown> | undefined)?.blob;
    if (typeof data === "string") bytes += Math.floor((data.length * 3) / 4);
  }
  return bytes;
}
