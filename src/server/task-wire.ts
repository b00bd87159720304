/**
 * The 2025-11-25 (experimental) form of tasks at the client edge: `params.task` in, `CreateTaskResult`
 * and `Task` objects out. The 2026-07-28 `io.modelcontextprotocol/tasks` edge (server/eras/modern-tasks.ts)
 * maps the same neutral TaskInfo (tasks/model.ts) to `resultType: "task"`, `ttlMs` and `pollIntervalMs`.
 */
import { ErrorCode, GatewayError } from "../errors.ts";
import type { TaskInfo } from "../tasks/model.ts";
import type { TaskRequest } from "../tasks/tasks.ts";

/** A 2025 `Task` object. */
export function wireTask(info: TaskInfo): Record<string, unknown> {
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

/** `params.task` of a task-augmented request (`{ ttl? }`), or a clear error. */
export function taskRequest(task: unknown): TaskRequest {
  if (typeof task !== "object" || task === null || Array.isArray(task)) {
    throw new GatewayError(ErrorCode.InvalidParams, 'params.task must be an object such as { "ttl": 60000 }');
  }
  const ttl = (task as { ttl?: unknown }).ttl;
  if (ttl !== undefined && ttl !== null && (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0)) {
    throw new GatewayError(
      ErrorCode.InvalidParams,
      "params.task.ttl must be a positive number of milliseconds",
    );
  }
  return typeof ttl === "number" ? { ttlMs: ttl } : {};
}
