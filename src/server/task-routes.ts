/**
 * Tasks over plain HTTP, for scripts and pipelines that are not MCP clients, behind the same guard
 * (Origin/Host, authentication) as `/mcp`, and bound to the same principals:
 *   POST   /tasks                 JSON Lines of `{tool, arguments?, priority?, id?}` → one task per line
 *   GET    /tasks/:taskId         the task (2025-11-25 `Task` shape)
 *   GET    /tasks/:taskId/result  waits until the task ends; the tool result (or the error)
 *   DELETE /tasks/:taskId         cancels it
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ErrorCode, GatewayError, toGatewayError, toWire } from "../errors.ts";
import type { Caller, RequestContext } from "../router/router.ts";
import { parseBatch } from "../tasks/batch.ts";
import type { TaskService } from "../tasks/tasks.ts";
import type { Principal } from "./auth/principal.ts";
import type { Guard } from "./guard.ts";
import { type GuardedEnv, guarded } from "./guarded.ts";
import { wireTask } from "./task-wire.ts";

export interface TaskRoutesOptions {
  tasks: TaskService;
  guard: Guard;
  isLoopback(address: string | undefined): boolean;
  /** Calls one submission may carry. */
  maxCalls: () => number;
  /** Largest submission body (gateway.maxBodyBytes). */
  maxBodyBytes: number;
}

/** Nobody to ask: a task submitted over HTTP has no MCP session behind it. */
const NO_SESSION: Caller = {
  sessionId: "http-tasks",
  request: async (method) => {
    throw new GatewayError(
      ErrorCode.MethodNotFound,
      `${method} needs an MCP client; tasks submitted over HTTP have none`,
    );
  },
  notify: async () => {},
};

export function taskRoutes(options: TaskRoutesOptions): Hono<GuardedEnv> {
  const app = new Hono<GuardedEnv>();
  let requests = 0;
  const guard = guarded(options.guard, options.isLoopback);
  app.use("/tasks", guard);
  app.use("/tasks/*", guard);

  const context = (principal: Principal, signal: AbortSignal): RequestContext => ({
    caller: NO_SESSION,
    principal,
    requestId: `http-${++requests}`,
    signal,
    meta: undefined,
  });
  const principalOf = (c: { get(key: "principal"): Principal }) => c.get("principal");

  const limit = bodyLimit({
    maxSize: options.maxBodyBytes,
    onError: (c) =>
      c.json(
        {
          error: {
            code: "InvalidRequest",
            message: `the body is over ${options.maxBodyBytes} bytes (gateway.maxBodyBytes)`,
          },
        },
        413,
      ),
  });
  app.post("/tasks", limit, async (c) => {
    const { calls, invalid } = parseBatch(await c.req.text());
    if (calls.length + invalid.length > options.maxCalls()) {
      return c.json(
        {
          error: {
            code: "QueueFull",
            message: `at most ${options.maxCalls()} calls per submission (tasks.maxTasks)`,
          },
        },
        413,
      );
    }
    const principal = principalOf(c);
    const answers: Array<Record<string, unknown>> = invalid.map((a) => ({ line: a.line, error: a.error }));
    for (const call of calls) {
      const base = { line: call.line, ...(call.id !== undefined && { id: call.id }) };
      try {
        const task = await options.tasks.submit(
          call.tool,
          call.arguments,
          { ...context(principal, new AbortController().signal), onProgress: undefined },
          { priority: call.priority },
        );
        answers.push({ ...base, task: wireTask(task) });
      } catch (err) {
        const wire = toWire(err);
        answers.push({ ...base, error: { code: wire.code, message: wire.message } });
      }
    }
    answers.sort((a, b) => (a.line as number) - (b.line as number));
    return c.json({ tasks: answers });
  });

  app.get("/tasks/:taskId", (c) =>
    answer(c, async () =>
      wireTask(await options.tasks.get(c.req.param("taskId"), context(principalOf(c), c.req.raw.signal))),
    ),
  );
  app.get("/tasks/:taskId/result", (c) =>
    answer(c, () => options.tasks.result(c.req.param("taskId"), context(principalOf(c), c.req.raw.signal))),
  );
  app.delete("/tasks/:taskId", (c) =>
    answer(c, async () =>
      wireTask(await options.tasks.cancel(c.req.param("taskId"), context(principalOf(c), c.req.raw.signal))),
    ),
  );
  return app;
}

async function answer(
  c: { json(body: unknown, status?: number): Response },
  fn: () => Promise<Record<string, unknown>>,
): Promise<Response> {
  try {
    return c.json(await fn());
  } catch (err) {
    const e = toGatewayError(err);
    const status = e.code === ErrorCode.TaskNotFound ? 404 : e.errorClass === "client" ? 400 : 502;
    return c.json({ error: { code: e.code, message: toWire(e).message } }, status);
  }
}
