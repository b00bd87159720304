/**
 * The era-neutral task model in the middle of the gateway. The 2025-11-25 edge (server/task-wire.ts)
 * and a 2026-07-28 `io.modelcontextprotocol/tasks` edge translate to and from it; the upstream face's
 * 2025 form is read here (`fromWire2025`) because that is what upstreams speak today.
 */
import type { ErrorCode } from "../errors.ts";
import type { TaskOrigin } from "./handles.ts";

export type TaskStatus = "working" | "input_required" | "completed" | "failed" | "cancelled";

export function isTerminal(status: TaskStatus): boolean {
  return status === "completed" || status === "failed" || status === "cancelled";
}

/** A task as a client sees it, whatever the era. */
export interface TaskInfo {
  /** The opaque handle (never an upstream's id). */
  handle: string;
  status: TaskStatus;
  /** What it is doing now, in words: `queued …`, `waiting for lock …`, `working`, the upstream's message. */
  message?: string;
  /** ISO 8601. */
  createdAt: string;
  lastUpdatedAt: string;
  /** Life from creation; null: unlimited (never for handles the gateway mints). */
  ttlMs: number | null;
  pollIntervalMs?: number;
}

/** How a task the gateway ran ended: the tool result (isError included) or the error a plain call would get. */
export type TaskOutcome =
  | { result: Record<string, unknown> }
  | {
      error: {
        code: ErrorCode;
        message: string;
        upstream?: string;
        tool?: string;
        policy?: string;
        rpcCode?: number;
      };
    };

/** What the gateway remembers of one task; plain data, so a shared store can hold it. */
export interface TaskRecord {
  /** `gateway:<id>` or `upstream:<upstream>:<upstream task id>` (see `recordKey`). */
  key: string;
  handle: string;
  origin: TaskOrigin;
  upstream: string;
  taskId: string;
  principalId: string;
  /** The session that created it (status notifications go there). */
  sessionId: string;
  tool: string;
  createdAt: string;
  /** Epoch ms; the record is dropped after this. */
  expiresAt: number;
  /** Tasks the gateway runs keep their state here; forwarded ones are asked upstream. */
  status?: TaskStatus;
  message?: string;
  lastUpdatedAt?: string;
  ttlMs?: number;
  pollIntervalMs?: number;
  outcome?: TaskOutcome;
  /** Where the terminal status is POSTed (the tool's `task.webhook` policy), and whether it was. */
  webhook?: string;
  announced?: boolean;
}

export function recordKey(origin: TaskOrigin, upstream: string, taskId: string): string {
  return origin === "gateway" ? `gateway:${taskId}` : `upstream:${upstream}:${taskId}`;
}

/** `_meta` key tying a message to a task (2025-11-25). */
export const RELATED_TASK = "io.modelcontextprotocol/related-task";

/** An upstream's 2025-11-25 Task as the neutral model, under the gateway's handle and TTL cap. */
export function fromWire2025(task: Record<string, unknown>, handle: string, maxTtlMs: number): TaskInfo {
  const status = task.status as TaskStatus;
  const ttl = typeof task.ttl === "number" ? Math.min(task.ttl, maxTtlMs) : maxTtlMs;
  return {
    handle,
    status,
    ...(typeof task.statusMessage === "string" && { message: task.statusMessage }),
    createdAt: String(task.createdAt),
    lastUpdatedAt: String(task.lastUpdatedAt ?? task.createdAt),
    ttlMs: ttl,
    ...(typeof task.pollInterval === "number" && { pollIntervalMs: task.pollInterval }),
  };
}

const STATUSES = new Set(["working", "input_required", "completed", "failed", "cancelled"]);

/** A 2025-11-25 Task object as an upstream sends it (enough to route it; the rest passes as is). */
export function isWireTask(
  value: unknown,
): value is Record<string, unknown> & { taskId: string; createdAt: string } {
  const task = value as Record<string, unknown> | undefined;
  return (
    typeof task === "object" &&
    task !== null &&
    typeof task.taskId === "string" &&
    STATUSES.has(task.status as string) &&
    typeof task.createdAt === "string"
  );
}
