/**
 * The 2026-07-28 form of tasks at the client edge: the extension `io.modelcontextprotocol/tasks` (SEP-2663),
 * beside the 2025-11-25 form (server/task-wire.ts), over the same era-neutral TaskService. The server decides:
 * a `tools/call` from a client that declared the extension, for a tool the gateway can serve as a task, is
 * answered with `resultType: "task"` when it does not end within the tool's answer window. `tasks/get`
 * inlines the result or error once terminal and the input the task waits for (`inputRequests`) while it
 * waits; `tasks/update` delivers `inputResponses`; `tasks/cancel` is an empty ack. Handles are the
 * TaskService's sealed ones (bound to the principal); `tasks/result` and `tasks/list` do not exist here.
 */
import { toWire } from "../../errors.ts";
import { ModernCode, ModernError } from "../../protocol/era.ts";
import { type HeldCall, INPUT_KEY_META } from "../../protocol/input-rounds.ts";
import type { Caller, Principal, RequestContext, Result } from "../../router/router.ts";
import { isTerminal, RELATED_TASK, type TaskInfo } from "../../tasks/model.ts";
import type { TaskService } from "../../tasks/tasks.ts";

const TASKS_EXTENSION = "io.modelcontextprotocol/tasks";

/** The extension's methods (the client sets `Mcp-Name` to `params.taskId` on each). */
export const TASK_METHODS: ReadonlySet<string> = new Set(["tasks/get", "tasks/update", "tasks/cancel"]);

/** True when the request's client capabilities declare the tasks extension. */
export function declaresTasks(capabilities: Record<string, unknown>): boolean {
  const extensions = capabilities.extensions;
  return (
    typeof extensions === "object" &&
    extensions !== null &&
    (extensions as Record<string, unknown>)[TASKS_EXTENSION] !== undefined
  );
}

/** -32021 naming the extension, as SEP-2575 asks of a request the server cannot serve without it. */
export function missingTasksExtension(what: string): ModernError {
  return new ModernError(
    ModernCode.MissingRequiredClientCapability,
    `${what} needs the ${TASKS_EXTENSION} extension: declare it under extensions in _meta["io.modelcontextprotocol/clientCapabilities"]`,
    400,
    { requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } },
  );
}

interface Pending {
  method: string;
  params: Record<string, unknown>;
  resolve(result: Record<string, unknown>): void;
}

const NEEDS: Record<string, string> = {
  "elicitation/create": "elicitation",
  "sampling/createMessage": "sampling",
  "roots/list": "roots",
};

/**
 * What running tasks wait for from their 2026 client: an upstream's server→client request tied to a task
 * (`_meta[related-task]`) is parked here under the task's handle until `tasks/update` answers it.
 * Process-local, like the upstream call that waits.
 */
export class TaskInputs {
  readonly #byTask = new Map<string, Map<string, Pending>>();
  #seq = 0;

  ask(
    method: string,
    params: Record<string, unknown> | undefined,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const { _meta, ...rest } = (params ?? {}) as { _meta?: Record<string, unknown> };
    const { [RELATED_TASK]: related, [INPUT_KEY_META]: hint, ...meta } = _meta ?? {};
    const handle = (related as { taskId?: unknown } | undefined)?.taskId;
    const need = NEEDS[method];
    if (typeof handle !== "string" || !need) {
      return Promise.reject(
        new Error(`${method} cannot be sent to a 2026-07-28 client outside a task's input requests`),
      );
    }
    let pending = this.#byTask.get(handle);
    if (!pending) {
      pending = new Map();
      this.#byTask.set(handle, pending);
    }
    const waiting = pending;
    const key = typeof hint === "string" && hint && !waiting.has(hint) ? hint : `${need}-${++this.#seq}`;
    const request = Object.keys(meta).length ? { ...rest, _meta: meta } : rest;
    return new Promise((resolve, reject) => {
      waiting.set(key, { method, params: request, resolve });
      signal?.addEventListener(
        "abort",
        () => {
          this.#remove(handle, key);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** The task's open input requests as `inputRequests`, or undefined when it waits for none. */
  pending(handle: string): Record<string, { method: string; params: Record<string, unknown> }> | undefined {
    const pending = this.#byTask.get(handle);
    if (!pending?.size) return undefined;
    const out: Record<string, { method: string; params: Record<string, unknown> }> = {};
    for (const [key, p] of pending) out[key] = { method: p.method, params: p.params };
    return out;
  }

  /** Hands each response to the request with its key; unknown keys are ignored (already answered, or never asked). */
  answer(handle: string, responses: Record<string, unknown>): void {
    for (const [key, response] of Object.entries(responses)) {
      const p = this.#byTask.get(handle)?.get(key);
      if (!p || typeof response !== "object" || response === null) continue;
      this.#remove(handle, key);
      p.resolve(response as Record<string, unknown>);
    }
  }

  /** A task that ended waits for nothing (its upstream call is gone). */
  forget(handle: string): void {
    this.#byTask.delete(handle);
  }

  #remove(handle: string, key: string): void {
    const pending = this.#byTask.get(handle);
    pending?.delete(key);
    if (pending?.size === 0) this.#byTask.delete(handle);
  }
}

/** Who asks, for the calls below. */
export interface TaskCallContext {
  principal: Principal;
  requestId: string | number;
  meta: Record<string, unknown> | undefined;
  requestBytes?: number | undefined;
}

export class ModernTasks {
  readonly #tasks: TaskService;
  readonly inputs = new TaskInputs();
  /** Tasks whose result is being awaited in the background so their upstream sends what it waits for. */
  readonly #draining = new Set<string>();

  constructor(tasks: TaskService) {
    this.#tasks = tasks;
  }

  /** `capabilities.extensions` of `server/discover`: the extension, when any tool can become a task. */
  extensions(): Record<string, unknown> | undefined {
    return this.#tasks.capabilities() ? { [TASKS_EXTENSION]: {} } : undefined;
  }

  /**
   * How a `tools/call` goes: as a possible task (the client declared the extension and the tool can be one),
   * or plainly; -32021 for a tool served only as a task to a client without the extension.
   */
  route(name: unknown, capabilities: Record<string, unknown>): "task" | "plain" {
    if (typeof name !== "string") return "plain";
    if (!declaresTasks(capabilities)) {
      if (this.#tasks.requiresTask(name))
        throw missingTasksExtension(`tool "${name}" runs only as a task: it`);
      return "plain";
    }
    return this.#tasks.servesAsTask(name) ? "task" : "plain";
  }

  /**
   * A `tools/call` the server may answer with a task. It runs inside an input-round held call: questions the
   * upstream asks before the task exists are input-required rounds of this request; once the answer is a
   * task, they wait on the task (`inputRequests` on `tasks/get`).
   */
  async call(
    name: string,
    args: Record<string, unknown>,
    ctx: TaskCallContext,
    held: HeldCall,
  ): Promise<Result> {
    let escalated = false;
    const caller: Caller = {
      sessionId: `modern-${held.id}`,
      request: (method, params, options) =>
        escalated
          ? this.inputs.ask(method, params, options.signal)
          : held.ask(method, params, options.signal),
      notify: async (method, params) => {
        if (!escalated) await held.notify(method, params ?? {});
      },
    };
    const context = {
      caller,
      principal: ctx.principal,
      requestId: ctx.requestId,
      signal: held.controller.signal,
      meta: ctx.meta,
    };
    const created = await this.#tasks.callTool(
      name,
      args,
      { ...context, requestBytes: ctx.requestBytes, onProgress: undefined },
      { answerWithinMs: this.#tasks.answerWindowMs(name) },
    );
    if ("result" in created) return created.result;
    if (held.controller.signal.aborted) {
      // The client went away within the answer window: nobody will ever learn this task's handle.
      await this.#tasks.cancel(created.task.handle, context).catch(() => {});
      throw held.controller.signal.reason;
    }
    escalated = true;
    return { resultType: "task", ...taskFields(created.task) };
  }

  /** `tasks/get`, `tasks/update`, `tasks/cancel` (the extension was declared: the face checked). */
  async serve(method: string, params: Record<string, unknown>, ctx: RequestContext): Promise<Result> {
    const handle = params.taskId;
    if (typeof handle !== "string" || !handle) {
      throw new ModernError(-32602, `Invalid params: ${method} needs params.taskId (a string)`, 200);
    }
    switch (method) {
      case "tasks/get":
        return this.#get(handle, ctx);
      case "tasks/update": {
        const responses = params.inputResponses;
        if (typeof responses !== "object" || responses === null || Array.isArray(responses)) {
          throw new ModernError(
            -32602,
            "Invalid params: tasks/update needs inputResponses, an object keyed by the task's inputRequests keys",
            200,
          );
        }
        // Opening the handle first: someone else's task is "not found", never fed.
        const info = await this.#tasks.get(handle, ctx);
        this.inputs.answer(info.handle, responses as Record<string, unknown>);
        return { resultType: "complete" };
      }
      default: {
        const info = await this.#tasks.get(handle, ctx);
        // Idempotent: cancelling a task that already ended is the same empty ack.
        if (!isTerminal(info.status))
          await this.#tasks.cancel(handle, ctx).catch(ignoreIfEnded(this.#tasks, handle, ctx));
        return { resultType: "complete" };
      }
    }
  }

  /**
   * `subscriptions/listen` with `notifications.taskIds`: the ids this principal may follow (someone else's,
   * unknown or expired handles are left out of the acknowledgement, never reported as theirs).
   */
  async accept(taskIds: unknown[], ctx: RequestContext): Promise<string[]> {
    const accepted: string[] = [];
    for (const id of taskIds) {
      if (typeof id !== "string" || accepted.includes(id)) continue;
      try {
        await this.#tasks.get(id, ctx);
        accepted.push(id);
      } catch {
        // not acknowledged
      }
    }
    return accepted;
  }

  /**
   * Sends `notifications/tasks` (the DetailedTask `tasks/get` would return) whenever an accepted task's status,
   * message or open input requests change, until it ends or the stream closes. It looks at the task's poll
   * interval, as a client would: the same code serves tasks run here, on another replica, or upstream.
   */
  follow(taskIds: string[], ctx: RequestContext, emit: (params: Result) => void): void {
    for (const handle of taskIds) {
      void this.#follow(handle, ctx, emit).catch(() => {});
    }
  }

  async #follow(handle: string, ctx: RequestContext, emit: (params: Result) => void): Promise<void> {
    let last = "";
    while (!ctx.signal.aborted) {
      const { resultType: _, _meta: __, ...task } = await this.#get(handle, ctx);
      const seen = JSON.stringify([task.status, task.statusMessage, Object.keys(task.inputRequests ?? {})]);
      if (seen !== last) {
        last = seen;
        emit(task);
      }
      if (isTerminal(task.status as TaskInfo["status"])) return;
      await pause(Number(task.pollIntervalMs ?? 1_000), ctx.signal);
    }
  }

  /**
   * A forwarded (2025-11-25) upstream task in input_required sends its questions only to a `tasks/result`
   * request: the gateway makes that request in the background, once, and the questions (tied to the task)
   * come back to this task's caller, which parks them as `inputRequests`. For a task the gateway runs
   * (held for an operator's approval) this only waits for the end.
   */
  #drain(handle: string, ctx: RequestContext): void {
    if (this.#draining.has(handle)) return;
    this.#draining.add(handle);
    // Not tied to this request's signal: the wait outlives it, and ends with the task (or its upstream request).
    void this.#tasks
      .result(handle, { ...ctx, signal: new AbortController().signal })
      .catch(() => {})
      .finally(() => this.#draining.delete(handle));
  }

  async #get(handle: string, ctx: RequestContext): Promise<Result> {
    const info = await this.#tasks.get(handle, ctx);
    const out: Result = { resultType: "complete", ...taskFields(info) };
    if (!isTerminal(info.status)) {
      const inputRequests = this.inputs.pending(info.handle);
      if (!inputRequests && info.status === "input_required") this.#drain(handle, ctx);
      if (inputRequests) {
        // Parallel questions: the task waits until every one is answered, whatever its last status change said.
        out.status = "input_required";
        out.inputRequests = inputRequests;
      }
      return out;
    }
    this.inputs.forget(info.handle);
    if (info.status === "cancelled") return out;
    try {
      // Terminal: returns at once. A tool error (isError) is a call that ran to its end: completed, in this era.
      const result = await this.#tasks.result(handle, ctx);
      out.status = "completed";
      out.result = withoutRelated(result);
    } catch (err) {
      const wire = toWire(err);
      out.status = "failed";
      out.error = { code: wire.code, message: wire.message, data: wire.data };
    }
    return out;
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** A task's own fields in this era's names (`ttlMs`, `pollIntervalMs`; no `ttl`, `pollInterval`, `requestState`). */
function taskFields(info: TaskInfo): Result {
  return {
    taskId: info.handle,
    status: info.status,
    ...(info.message !== undefined && { statusMessage: info.message }),
    createdAt: info.createdAt,
    lastUpdatedAt: info.lastUpdatedAt,
    ttlMs: info.ttlMs === null ? null : Math.round(info.ttlMs),
    ...(info.pollIntervalMs !== undefined && { pollIntervalMs: Math.round(info.pollIntervalMs) }),
  };
}

/** The inlined result carries no related-task `_meta`: the task id is at the root of `tasks/get`. */
function withoutRelated(result: Result): Result {
  const meta = result._meta as Record<string, unknown> | undefined;
  if (!meta || !(RELATED_TASK in meta)) return result;
  const { [RELATED_TASK]: _, ...rest } = meta;
  const { _meta: __, ...body } = result;
  return Object.keys(rest).length ? { ...body, _meta: rest } : body;
}

/** A cancel that lost the race with the task's end is still the ack; anything else is the client's error. */
function ignoreIfEnded(tasks: TaskService, handle: string, ctx: RequestContext) {
  return async (err: unknown) => {
    const now = await tasks.get(handle, ctx);
    if (!isTerminal(now.status)) throw err;
  };
}
