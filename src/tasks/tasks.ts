/**
 * Tasks, era-neutral: task-augmented tool calls forwarded to upstreams that support them, tasks the
 * gateway runs itself (tool policy `task`), and every task operation (get, result, list, cancel) behind
 * opaque handles bound to the principal that created them. Upstreams speak the 2025-11-25 form; clients'
 * eras are translated at the edge (server/task-wire.ts for 2025-11-25, server/eras/modern-tasks.ts for the
 * 2026-07-28 extension).
 */
import { randomUUID } from "node:crypto";
import type { ServerCapabilities } from "@modelcontextprotocol/sdk/types.js";
import type { ToolRoute } from "../catalog/catalog.ts";
import type { TasksConfig } from "../config/tasks-schema.ts";
import { ErrorCode, GatewayError, toGatewayError } from "../errors.ts";
import type { PolicyEvent } from "../policies/events.ts";
import type { Caller, CallToolContext, Principal, RequestContext, Result, Router } from "../router/router.ts";
import type { Logger } from "../telemetry/log.ts";
import type { UpstreamHandle as Upstream } from "../upstreams/handle.ts";
import type { HandleClaims, TaskHandles, TaskOrigin } from "./handles.ts";
import {
  fromWire2025,
  isTerminal,
  isWireTask,
  RELATED_TASK,
  recordKey,
  type TaskInfo,
  type TaskOutcome,
  type TaskRecord,
  type TaskStatus,
} from "./model.ts";
import type { TaskStore } from "./store.ts";
import { postTaskWebhook } from "./webhook.ts";

interface TaskEvent {
  type: "created" | "completed" | "failed" | "cancelled";
  origin: TaskOrigin;
  tool: string;
  /** From creation to the end, for tasks the gateway runs. */
  durationMs?: number;
}

export interface TaskServiceDeps {
  router: Router;
  catalog: { tool(name: string): ToolRoute | undefined; toolRoutes(): Iterable<ToolRoute> };
  upstreams: { get(name: string): Upstream | undefined; all(): Iterable<Upstream> };
  handles: TaskHandles;
  store: TaskStore;
  config: () => TasksConfig;
  log: Logger;
  /** Lifecycle of tasks (metrics); `completed`/`failed` only for tasks the gateway runs. */
  onTaskEvent?: (event: TaskEvent) => void;
  now?: () => number;
}

/** What a task-augmented call asks for. */
export interface TaskRequest {
  /** Requested TTL; capped by `tasks.maxTtlMs`. */
  ttlMs?: number | undefined;
  /**
   * For tasks the gateway runs: answer with the plain result if the call ends within this many ms
   * (the 2026 edge, where the server decides). Absent: always a task (2025, where the client asked).
   */
  answerWithinMs?: number | undefined;
}

const LIST_PAGE = 100;
const MAX_UPSTREAM_LIST_PAGES = 20;

export class TaskService {
  readonly #deps: TaskServiceDeps;
  readonly #now: () => number;
  /** Process-local: the sessions to notify, the calls to abort, the waiters of unfinished tasks. */
  readonly #callers = new Map<string, Caller>();
  readonly #running = new Map<string, AbortController>();
  readonly #waiters = new Map<string, Set<() => void>>();
  /** `tasks/result` requests in flight per forwarded task, so its input requests go out on that stream. */
  readonly #resultRequests = new Map<string, string | number>();
  readonly #updates = new Map<string, Promise<void>>();

  constructor(deps: TaskServiceDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** The `tasks` server capability: what any upstream offers, plus what the gateway offers itself. */
  capabilities(): NonNullable<ServerCapabilities["tasks"]> | undefined {
    let list = false;
    let cancel = false;
    let call = false;
    for (const upstream of this.#deps.upstreams.all()) {
      const tasks = upstream.capabilities?.tasks;
      list ||= tasks?.list !== undefined;
      cancel ||= tasks?.cancel !== undefined;
      call ||= tasks?.requests?.tools?.call !== undefined;
    }
    if ([...this.#deps.catalog.toolRoutes()].some((r) => r.policy.task.mode !== "off")) {
      list = cancel = call = true;
    }
    if (!list && !cancel && !call) return undefined;
    return {
      ...(list && { list: {} }),
      ...(cancel && { cancel: {} }),
      ...(call && { requests: { tools: { call: {} } } }),
    };
  }

  /**
   * A task-augmented `tools/call`: forwarded when the tool's upstream runs it as a task, run by the gateway
   * when the tool's policy says so, refused otherwise. `{ result }` only with `answerWithinMs`.
   */
  async callTool(
    name: string,
    args: Record<string, unknown>,
    ctx: CallToolContext,
    request: TaskRequest,
  ): Promise<{ task: TaskInfo } | { result: Result }> {
    const route = this.#deps.catalog.tool(name);
    if (!route) {
      throw new GatewayError(
        ErrorCode.ToolNotFound,
        `no tool named "${name}"; tools/list shows the tools served`,
        {
          tool: name,
        },
      );
    }
    if (this.#upstreamRunsTasks(route)) return { task: await this.#forwardCall(route, args, ctx, request) };
    if (route.policy.task.mode !== "off") return this.#originate(route, args, ctx, request);
    throw new GatewayError(
      ErrorCode.MethodNotFound,
      "this tool does not run as a task (its execution.taskSupport is forbidden and its task policy is off); call it without params.task",
      { tool: name, upstream: route.upstream },
    );
  }

  /**
   * For an edge where the server decides (2026 `io.modelcontextprotocol/tasks`): how long to wait for a
   * plain result before answering with a task (`auto`: the policy's threshold, `always`: 0); undefined
   * when the gateway does not run this tool as a task itself.
   */
  answerWindowMs(name: string): number | undefined {
    const route = this.#deps.catalog.tool(name);
    if (!route || route.policy.task.mode === "off" || this.#upstreamRunsTasks(route)) return undefined;
    return route.policy.task.mode === "auto" ? route.policy.task.thresholdMs : 0;
  }

  /** True when a `tools/call` of this tool can become a task: forwarded to its upstream, or run by the gateway. */
  servesAsTask(name: string): boolean {
    const route = this.#deps.catalog.tool(name);
    return route !== undefined && (this.#upstreamRunsTasks(route) || route.policy.task.mode !== "off");
  }

  /** True when the tool, as served, takes only task calls (`execution.taskSupport: "required"`). */
  requiresTask(name: string): boolean {
    return this.#deps.catalog.tool(name)?.definition.execution?.taskSupport === "required";
  }

  /**
   * A call the gateway runs as a task whatever the tool's policy (batch submission over HTTP): the caller
   * asked for a task explicitly. `priority` orders it in the tools' queues.
   */
  async submit(
    name: string,
    args: Record<string, unknown>,
    ctx: CallToolContext,
    request: TaskRequest & { priority?: number | undefined },
  ): Promise<TaskInfo> {
    const route = this.#deps.catalog.tool(name);
    if (!route) {
      throw new GatewayError(ErrorCode.ToolNotFound, `no tool named "${name}"`, { tool: name });
    }
    const meta =
      request.priority === undefined ? ctx.meta : { ...ctx.meta, "toolgate/priority": request.priority };
    const created = await this.#originate(route, args, { ...ctx, meta }, { ttlMs: request.ttlMs });
    if (!("task" in created))
      throw new GatewayError(ErrorCode.Internal, "a submitted call must become a task");
    return created.task;
  }

  /** True when the upstream declares task-augmented tools/call and the tool accepts a task. */
  #upstreamRunsTasks(route: ToolRoute): boolean {
    const upstream = this.#deps.upstreams.get(route.upstream);
    if (upstream?.capabilities?.tasks?.requests?.tools?.call === undefined) return false;
    const support = upstream.tools.find((t) => t.name === route.upstreamTool)?.execution?.taskSupport;
    return support === "optional" || support === "required";
  }

  async #forwardCall(
    route: ToolRoute,
    args: Record<string, unknown>,
    ctx: CallToolContext,
    request: TaskRequest,
  ): Promise<TaskInfo> {
    const { maxTtlMs, defaultTtlMs } = this.#deps.config();
    const ttl = Math.min(request.ttlMs ?? defaultTtlMs, maxTtlMs);
    const result = await this.#deps.router.callTool(route.name, args, { ...ctx, task: { ttl } });
    const task = result.task;
    if (!isWireTask(task)) throw notATask(route, result);
    // The handle lives as long as the shorter of what was asked (capped) and what the upstream keeps.
    const ttlMs = typeof task.ttl === "number" ? Math.min(task.ttl, ttl) : ttl;
    const expiresAt = this.#now() + ttlMs;
    const handle = this.#deps.handles.seal({
      origin: "upstream",
      upstream: route.upstream,
      taskId: task.taskId,
      principalId: ctx.principal.id,
      expiresAt,
    });
    const key = recordKey("upstream", route.upstream, task.taskId);
    const stored = await this.#deps.store.put({
      key,
      handle,
      origin: "upstream",
      upstream: route.upstream,
      taskId: task.taskId,
      principalId: ctx.principal.id,
      sessionId: ctx.caller.sessionId,
      tool: route.name,
      createdAt: task.createdAt,
      expiresAt,
      ...(route.policy.task.webhook && { webhook: route.policy.task.webhook }),
    });
    if (stored) this.#callers.set(key, ctx.caller);
    else this.#deps.log.warn("task store full: a forwarded task is not listed", { tool: route.name });
    this.#deps.onTaskEvent?.({ type: "created", origin: "upstream", tool: route.name });
    return fromWire2025(task, handle, ttlMs);
  }

  async #originate(
    route: ToolRoute,
    args: Record<string, unknown>,
    ctx: CallToolContext,
    request: TaskRequest,
  ): Promise<{ task: TaskInfo } | { result: Result }> {
    const { maxTtlMs, defaultTtlMs, pollIntervalMs, maxTasks } = this.#deps.config();
    const ttlMs = Math.min(request.ttlMs ?? defaultTtlMs, maxTtlMs);
    const id = randomUUID();
    const key = recordKey("gateway", "", id);
    const now = this.#now();
    const expiresAt = now + ttlMs;
    const handle = this.#deps.handles.seal({
      origin: "gateway",
      upstream: "",
      taskId: id,
      principalId: ctx.principal.id,
      expiresAt,
    });
    const created = new Date(now).toISOString();
    const record: TaskRecord = {
      key,
      handle,
      origin: "gateway",
      upstream: route.upstream,
      taskId: id,
      principalId: ctx.principal.id,
      sessionId: ctx.caller.sessionId,
      tool: route.name,
      createdAt: created,
      expiresAt,
      status: "working",
      message: "working",
      lastUpdatedAt: created,
      ttlMs,
      pollIntervalMs,
      ...(route.policy.task.webhook && { webhook: route.policy.task.webhook }),
    };
    if (!(await this.#deps.store.put(record))) {
      throw new GatewayError(
        ErrorCode.QueueFull,
        `toolgate already runs ${maxTasks} tasks (tasks.maxTasks); wait for some to finish or cancel them`,
        { tool: route.name, policy: "tasks.maxTasks" },
      );
    }
    const controller = new AbortController();
    this.#running.set(key, controller);
    this.#callers.set(key, ctx.caller);
    this.#deps.onTaskEvent?.({ type: "created", origin: "gateway", tool: route.name });
    const done = this.#run(route, args, ctx, record, controller).catch((err) =>
      this.#deps.log.error("task run failed", { err, tool: route.name }),
    );
    if (request.answerWithinMs !== undefined) {
      const finished = await within(done, request.answerWithinMs);
      const current = finished ? await this.#deps.store.get(key) : undefined;
      if (current?.outcome && "result" in current.outcome) {
        await this.#deps.store.delete(key);
        return { result: current.outcome.result };
      }
    }
    return { task: infoOf(record) };
  }

  /** Runs the call through the normal pipeline in the background; the task follows its policy events. */
  async #run(
    route: ToolRoute,
    args: Record<string, unknown>,
    ctx: CallToolContext,
    record: TaskRecord,
    controller: AbortController,
  ): Promise<void> {
    const { key, handle } = record;
    const caller = this.#relatedCaller(ctx.caller, key, handle);
    let outcome: TaskOutcome;
    try {
      const result = await this.#deps.router.callTool(route.name, args, {
        caller,
        principal: ctx.principal,
        requestId: ctx.requestId,
        signal: controller.signal,
        meta: withoutProgress(ctx.meta),
        onProgress: (p) => {
          const total = p.total === undefined ? "" : `/${p.total}`;
          void this.#setState(
            key,
            "working",
            `working: ${p.progress}${total}${p.message ? ` ${p.message}` : ""}`,
          );
        },
        onPolicyEvent: (event) => {
          const message = phaseOf(event);
          if (message) void this.#setState(key, "working", message);
        },
      });
      outcome = { result };
    } catch (err) {
      const e = toGatewayError(err, { upstream: route.upstream, tool: route.name });
      outcome = {
        error: {
          code: e.code,
          message: e.message,
          ...(e.upstream && { upstream: e.upstream }),
          ...(e.tool && { tool: e.tool }),
          ...(e.policy && { policy: e.policy }),
          ...(e.rpcCode !== undefined && { rpcCode: e.rpcCode }),
        },
      };
    } finally {
      this.#running.delete(key);
    }
    const current = await this.#deps.store.get(key);
    if (!current || current.status === "cancelled") return this.#wake(key);
    const failed = "error" in outcome || outcome.result.isError === true;
    const status: TaskStatus = failed ? "failed" : "completed";
    await this.#setState(key, status, failed ? failureMessage(outcome) : "completed", outcome);
    this.#deps.onTaskEvent?.({
      type: status === "failed" ? "failed" : "completed",
      origin: "gateway",
      tool: route.name,
      durationMs: this.#now() - Date.parse(record.createdAt),
    });
  }

  /**
   * Changes of one task apply in order (policy events fire while earlier changes are still being stored),
   * and a failing store never becomes an unhandled rejection.
   */
  #setState(key: string, status: TaskStatus, message: string, outcome?: TaskOutcome): Promise<void> {
    const previous = this.#updates.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => this.#applyState(key, status, message, outcome))
      .catch((err) => this.#deps.log.error("task state not stored", { err, status }));
    this.#updates.set(key, next);
    void next.then(() => {
      if (this.#updates.get(key) === next) this.#updates.delete(key);
    });
    return next;
  }

  async #applyState(key: string, status: TaskStatus, message: string, outcome?: TaskOutcome): Promise<void> {
    const current = await this.#deps.store.get(key);
    if (!current || (current.status && isTerminal(current.status))) return;
    if (current.status === status && current.message === message && !outcome) return;
    const updated = await this.#deps.store.update(key, {
      status,
      message,
      lastUpdatedAt: new Date(this.#now()).toISOString(),
      ...(outcome && { outcome }),
    });
    if (!updated) return;
    const caller = this.#callers.get(key);
    caller
      ?.notify("notifications/tasks/status", { ...statusParams(infoOf(updated)) })
      .catch((err) => this.#deps.log.debug("task status not delivered", { err }));
    if (isTerminal(status)) {
      this.#callers.delete(key);
      this.#wake(key);
      await this.#announce(updated, infoOf(updated));
    }
  }

  /** The terminal status, once, to the webhook of the task's tool policy. */
  async #announce(record: TaskRecord, info: TaskInfo): Promise<void> {
    if (!record.webhook || record.announced || !isTerminal(info.status)) return;
    await this.#deps.store.update(record.key, { announced: true });
    void postTaskWebhook(
      record.webhook,
      {
        event: "task.ended",
        taskId: record.handle,
        status: info.status,
        ...(info.message !== undefined && { statusMessage: info.message }),
        tool: record.tool,
        origin: record.origin,
        principal: record.principalId,
        createdAt: info.createdAt,
        lastUpdatedAt: info.lastUpdatedAt,
      },
      { secret: this.#deps.config().webhookSecret, log: this.#deps.log },
    );
  }

  /** A forwarded task seen in a terminal status (polled, cancelled or notified): its webhook, once. */
  async #observed(claims: HandleClaims, info: TaskInfo): Promise<TaskInfo> {
    if (isTerminal(info.status)) {
      const record = await this.#deps.store.get(recordKey("upstream", claims.upstream, claims.taskId));
      if (record) await this.#announce(record, info);
    }
    return info;
  }

  /**
   * A background call's view of its session: messages carry the task (not a request answered long ago),
   * and while the upstream waits for the client's answer (elicitation, sampling) the task is input_required.
   */
  #relatedCaller(caller: Caller, key: string, handle: string): Caller {
    return {
      sessionId: caller.sessionId,
      request: async (method, params, options) => {
        await this.#setState(key, "input_required", `waiting for the client to answer ${method}`);
        try {
          return await caller.request(
            method,
            withRelated(params ?? {}, handle),
            options.signal ? { signal: options.signal } : {},
          );
        } finally {
          await this.#setState(key, "working", "working");
        }
      },
      notify: (method, params) => caller.notify(method, withRelated(params ?? {}, handle)),
      canElicit: () => caller.canElicit?.() === true,
      held: (message) => void this.#setState(key, "input_required", message),
    };
  }

  #wake(key: string): void {
    const waiters = this.#waiters.get(key);
    this.#waiters.delete(key);
    for (const wake of waiters ?? []) wake();
  }

  #claims(handle: unknown, principal: Principal): HandleClaims {
    const claims = this.#deps.handles.open(handle, principal.id, this.#now());
    if (!claims) throw notFound();
    return claims;
  }

  async #gatewayRecord(claims: HandleClaims): Promise<TaskRecord> {
    const record = await this.#deps.store.get(recordKey("gateway", "", claims.taskId));
    if (!record) {
      throw new GatewayError(
        ErrorCode.TaskNotFound,
        "toolgate ran this task in memory and no longer has it: the gateway restarted or the task was dropped (tasks.maxTasks); run the call again",
        { policy: "tasks" },
      );
    }
    return record;
  }

  async get(handle: unknown, ctx: RequestContext): Promise<TaskInfo> {
    const claims = this.#claims(handle, ctx.principal);
    if (claims.origin === "gateway") return infoOf(await this.#gatewayRecord(claims));
    const task = await this.#upstreamCall(claims, "tasks/get", ctx);
    return this.#observed(claims, fromWire2025(task, handle as string, ttlCap(claims, task)));
  }

  /** The task's result once it is terminal (waits until then); the JSON-RPC error of a failed call is thrown. */
  async result(handle: unknown, ctx: RequestContext): Promise<Result> {
    const claims = this.#claims(handle, ctx.principal);
    if (claims.origin === "upstream") {
      const key = recordKey("upstream", claims.upstream, claims.taskId);
      this.#resultRequests.set(key, ctx.requestId);
      try {
        const result = await this.#upstreamCall(claims, "tasks/result", ctx);
        return withRelated(result, handle as string);
      } finally {
        if (this.#resultRequests.get(key) === ctx.requestId) this.#resultRequests.delete(key);
      }
    }
    let record = await this.#gatewayRecord(claims);
    while (!record.status || !isTerminal(record.status)) {
      await this.#waitForChange(record.key, ctx.signal);
      record = await this.#gatewayRecord(claims);
    }
    const outcome = record.outcome;
    if (!outcome) {
      throw new GatewayError(ErrorCode.Cancelled, "the task was cancelled before it finished", {
        tool: record.tool,
        upstream: record.upstream,
      });
    }
    if ("error" in outcome) {
      const { code, message, ...rest } = outcome.error;
      throw new GatewayError(code, message, rest);
    }
    return withRelated(outcome.result, record.handle);
  }

  #waitForChange(key: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(cancelled());
      let waiters = this.#waiters.get(key);
      if (!waiters) {
        waiters = new Set();
        this.#waiters.set(key, waiters);
      }
      const done = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        signal.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        done();
        reject(cancelled());
      };
      const wake = () => {
        done();
        resolve();
      };
      waiters.add(wake);
      signal.addEventListener("abort", onAbort, { once: true });
      // A task run by another replica (a shared store) never wakes this one: look again now and then.
      const timer = setTimeout(wake, this.#deps.config().pollIntervalMs * 5);
    });
  }

  async cancel(handle: unknown, ctx: RequestContext): Promise<TaskInfo> {
    const claims = this.#claims(handle, ctx.principal);
    if (claims.origin === "upstream") {
      const task = await this.#upstreamCall(claims, "tasks/cancel", ctx);
      this.#deps.onTaskEvent?.({ type: "cancelled", origin: "upstream", tool: await this.#toolOf(claims) });
      return this.#observed(claims, fromWire2025(task, handle as string, ttlCap(claims, task)));
    }
    const record = await this.#gatewayRecord(claims);
    if (record.status && isTerminal(record.status)) {
      throw new GatewayError(
        ErrorCode.InvalidArguments,
        `cannot cancel a task that is already ${record.status}`,
        {
          tool: record.tool,
        },
      );
    }
    const controller = this.#running.get(record.key);
    await this.#setState(record.key, "cancelled", "cancelled by the client");
    controller?.abort(
      new GatewayError(ErrorCode.Cancelled, "the task was cancelled by the client", {
        tool: record.tool,
        upstream: record.upstream,
      }),
    );
    this.#deps.onTaskEvent?.({
      type: "cancelled",
      origin: "gateway",
      tool: record.tool,
      durationMs: this.#now() - Date.parse(record.createdAt),
    });
    return infoOf((await this.#deps.store.get(record.key)) ?? record);
  }

  async #toolOf(claims: HandleClaims): Promise<string> {
    const record = await this.#deps.store.get(recordKey(claims.origin, claims.upstream, claims.taskId));
    return record?.tool ?? "";
  }

  /** The caller's tasks: the gateway's own, and forwarded ones as their upstreams report them now. */
  async list(cursor: unknown, ctx: RequestContext): Promise<{ tasks: TaskInfo[]; nextCursor?: string }> {
    const records = await this.#deps.store.list(ctx.principal.id);
    const byUpstream = new Map<string, TaskRecord[]>();
    const tasks: TaskInfo[] = [];
    for (const record of records) {
      if (record.origin === "gateway") tasks.push(infoOf(record));
      else byUpstream.set(record.upstream, [...(byUpstream.get(record.upstream) ?? []), record]);
    }
    const reports = await Promise.all(
      [...byUpstream].map(([upstream, mine]) => this.#upstreamTasks(upstream, mine, ctx)),
    );
    for (const [index, [, mine]] of [...byUpstream].entries()) {
      const report = reports[index] as Map<string, Record<string, unknown>>;
      for (const record of mine) {
        const task = report.get(record.taskId);
        if (task) tasks.push(fromWire2025(task, record.handle, ttlCap(record, task)));
      }
    }
    tasks.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    const start = parseCursor(cursor);
    const page = tasks.slice(start, start + LIST_PAGE);
    const next = start + LIST_PAGE;
    return {
      tasks: page,
      ...(next < tasks.length && { nextCursor: Buffer.from(String(next)).toString("base64url") }),
    };
  }

  /** Upstream task states by upstream id: its `tasks/list` when declared, else `tasks/get` per task. */
  async #upstreamTasks(
    upstream: string,
    mine: TaskRecord[],
    ctx: RequestContext,
  ): Promise<Map<string, Record<string, unknown>>> {
    const found = new Map<string, Record<string, unknown>>();
    const router = this.#deps.router;
    try {
      if (this.#deps.upstreams.get(upstream)?.capabilities?.tasks?.list !== undefined) {
        let cursor: string | undefined;
        for (let page = 0; page < MAX_UPSTREAM_LIST_PAGES; page++) {
          const result = await router.forwardTask(upstream, "tasks/list", cursor ? { cursor } : {}, ctx);
          for (const task of Array.isArray(result.tasks) ? result.tasks : []) {
            if (isWireTask(task)) found.set(task.taskId, task);
          }
          cursor = typeof result.nextCursor === "string" && result.nextCursor ? result.nextCursor : undefined;
          if (!cursor) break;
        }
        return found;
      }
      const answers = await Promise.allSettled(
        mine.map((r) => router.forwardTask(upstream, "tasks/get", { taskId: r.taskId }, ctx)),
      );
      for (const answer of answers) {
        if (answer.status === "fulfilled" && isWireTask(answer.value))
          found.set(answer.value.taskId, answer.value);
      }
    } catch (err) {
      this.#deps.log.warn("listing an upstream's tasks failed; they are left out", {
        upstream,
        error: toGatewayError(err).message,
      });
    }
    return found;
  }

  async #upstreamCall(claims: HandleClaims, method: string, ctx: RequestContext): Promise<Result> {
    try {
      const result = await this.#deps.router.forwardTask(
        claims.upstream,
        method,
        { taskId: claims.taskId },
        ctx,
      );
      if (method !== "tasks/result" && !isWireTask(result)) {
        throw new GatewayError(ErrorCode.UpstreamError, `the upstream answered ${method} without a task`, {
          upstream: claims.upstream,
        });
      }
      // Upstream tasks here are tool calls: their result is a CallToolResult, checked as a call's is (against
      // the tool's outputSchema too, while the tool the task was made for is in the catalog).
      if (method !== "tasks/result") return result;
      const route = this.#deps.catalog.tool(await this.#toolOf(claims));
      const problem = this.#deps.router.resultProblem(claims.upstream, route, result, method);
      if (problem !== undefined) {
        throw new GatewayError(ErrorCode.UpstreamError, problem, {
          upstream: claims.upstream,
          reachedUpstream: true,
        });
      }
      return result;
    } catch (err) {
      const e = toGatewayError(err, { upstream: claims.upstream });
      if (e.code === ErrorCode.UpstreamError && e.rpcCode === -32602 && /not found/i.test(e.message)) {
        throw new GatewayError(
          ErrorCode.TaskNotFound,
          `upstream "${claims.upstream}" no longer has this task (it expired there, or the upstream restarted): ${e.message}`,
          { upstream: claims.upstream },
        );
      }
      throw e;
    }
  }

  /**
   * A message from an upstream tied to one of its tasks (`_meta[related-task]`, `notifications/tasks/status`):
   * for the session that created the task, under the task's handle. Undefined when no task here matches
   * (the message then takes the ordinary route, without the upstream's task id).
   */
  async relatedTarget(
    upstream: string,
    method: string,
    params: Result | undefined,
  ): Promise<{ caller: Caller; params: Result; relatedRequestId?: string | number } | undefined> {
    const taskId =
      method === "notifications/tasks/status"
        ? params?.taskId
        : (params?._meta as Record<string, { taskId?: unknown }> | undefined)?.[RELATED_TASK]?.taskId;
    if (typeof taskId !== "string") return undefined;
    const key = recordKey("upstream", upstream, taskId);
    const record = await this.#deps.store.get(key);
    const caller = this.#callers.get(key);
    if (!record) {
      this.#callers.delete(key);
      return undefined;
    }
    if (method === "notifications/tasks/status" && isWireTask(params)) {
      const info = fromWire2025(params, record.handle, ttlCap(record, params));
      await this.#announce(record, info);
      // The last status a task has: nothing more goes to its session.
      if (isTerminal(info.status)) this.#callers.delete(key);
    }
    if (!caller) return undefined;
    const rewritten: Result =
      method === "notifications/tasks/status"
        ? {
            ...params,
            taskId: record.handle,
            ...(typeof params?.ttl === "number" && { ttl: Math.min(params.ttl, ttlCap(record, params)) }),
          }
        : withRelated(params ?? {}, record.handle);
    const relatedRequestId = this.#resultRequests.get(key);
    return { caller, params: rewritten, ...(relatedRequestId !== undefined && { relatedRequestId }) };
  }

  /**
   * The tasks this process runs now (operators' view, the status page): every principal's records, which
   * carry no arguments and, unfinished, no result.
   */
  async running(): Promise<TaskRecord[]> {
    const records = await Promise.all([...this.#running.keys()].map((key) => this.#deps.store.get(key)));
    return records.filter((r): r is TaskRecord => r !== undefined && !isTerminal(r.status ?? "working"));
  }

  /** Forget a session that ended: its tasks live on (reachable by handle) but get no more notifications. */
  sessionClosed(caller: Caller): void {
    for (const [key, c] of this.#callers) if (c === caller) this.#callers.delete(key);
  }
}

/** The TTL a forwarded task is reported with: what is left of its handle's life, counted from creation. */
function ttlCap(claims: { expiresAt: number }, task: Record<string, unknown>): number {
  const created = Date.parse(String(task.createdAt));
  return Number.isFinite(created) ? Math.max(0, claims.expiresAt - created) : 0;
}

function infoOf(record: TaskRecord): TaskInfo {
  return {
    handle: record.handle,
    status: record.status ?? "working",
    ...(record.message !== undefined && { message: record.message }),
    createdAt: record.createdAt,
    lastUpdatedAt: record.lastUpdatedAt ?? record.createdAt,
    ttlMs: record.ttlMs ?? null,
    ...(record.pollIntervalMs !== undefined && { pollIntervalMs: record.pollIntervalMs }),
  };
}

/** The 2025 wire shape of a status notification's params (the gateway's own tasks). */
function statusParams(info: TaskInfo): Result {
  return {
    taskId: info.handle,
    status: info.status,
    ttl: info.ttlMs,
    createdAt: info.createdAt,
    lastUpdatedAt: info.lastUpdatedAt,
    ...(info.pollIntervalMs !== undefined && { pollInterval: info.pollIntervalMs }),
    ...(info.message !== undefined && { statusMessage: info.message }),
  };
}

/** The status message of a policy event that changes what a queued or running task is doing. */
function phaseOf(event: PolicyEvent): string | undefined {
  switch (event.type) {
    case "queued":
      return `queued: waiting for a slot of ${event.bulkhead} (${event.queued} waiting)`;
    case "lockWait":
      return `waiting for lock ${event.lock}`;
    case "dequeued":
    case "lockAcquired":
    case "attemptStart":
      return "working";
    case "retryScheduled":
      return `working: attempt ${event.attempt} failed (${event.errorCode}); retrying in ${event.delayMs} ms`;
    case "fallback":
      return `working: falling back to ${event.to}`;
    default:
      return undefined;
  }
}

function failureMessage(outcome: TaskOutcome): string {
  if ("error" in outcome) return `failed: ${outcome.error.code}: ${outcome.error.message}`;
  const content = outcome.result.content as Array<{ text?: string }> | undefined;
  const text = content
    ?.map((c) => c.text ?? "")
    .join(" ")
    .slice(0, 500);
  return `failed: the tool returned an error${text ? `: ${text}` : ""}`;
}

function withRelated(params: Result, handle: string): Result {
  return {
    ...params,
    _meta: { ...(params._meta as Result | undefined), [RELATED_TASK]: { taskId: handle } },
  };
}

function withoutProgress(meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!meta) return undefined;
  const { progressToken: _, ...rest } = meta;
  return rest;
}

function within(done: Promise<void>, ms: number): Promise<boolean> {
  if (ms <= 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void done.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function parseCursor(cursor: unknown): number {
  if (cursor === undefined) return 0;
  const n = typeof cursor === "string" ? Number(Buffer.from(cursor, "base64url").toString()) : Number.NaN;
  if (!Number.isInteger(n) || n < 0)
    throw new GatewayError(ErrorCode.InvalidParams, `invalid cursor ${JSON.stringify(cursor)}`);
  return n;
}

/** One error for every handle the caller may not use, so none of them tells anything apart. */
function notFound(): GatewayError {
  return new GatewayError(
    ErrorCode.TaskNotFound,
    "task not found: the handle is unknown, expired or not yours (tasks toolgate runs itself do not survive a restart)",
  );
}

function cancelled(): GatewayError {
  return new GatewayError(ErrorCode.Cancelled, "the request was cancelled");
}

/** A call meant to create a task came back without one: a policy's error result, or a server ignoring the task. */
function notATask(route: ToolRoute, result: Result): GatewayError {
  const meta = result._meta as Record<string, { code?: string; message?: string }> | undefined;
  const error = meta?.["toolgate/error"];
  const content = result.content as Array<{ text?: string }> | undefined;
  const text = error?.message ?? content?.map((c) => c.text ?? "").join(" ") ?? "";
  const code = error?.code && error.code in ErrorCode ? (error.code as ErrorCode) : ErrorCode.UpstreamError;
  return new GatewayError(code, `the task-augmented call did not create a task${text ? `: ${text}` : ""}`, {
    upstream: route.upstream,
    tool: route.name,
  });
}
