/**
 * The `tasks` section of the config: how task handles are sealed and how long tasks live. Per-tool
 * origination (`task: "auto" | "always"`) is a policy (config/schema.ts), not set here.
 */
import { z } from "zod";
import { msAtLeast } from "./duration.ts";

const positiveInt = z.number().int().positive();

export const TasksSchema = z.strictObject({
  /**
   * Secret the task handles are encrypted with (AES-256-GCM, key derived by SHA-256): at least 32
   * characters, usually `${TOOLGATE_TASK_KEY}`. Replicas that share it can serve each other's handles.
   * Absent: the `TOOLGATE_TASK_KEY` environment variable, else a random key per process (handles then
   * die with the process).
   */
  handleKey: z.string().min(32).optional(),
  /** TTL of a task whose creator asked for none. */
  defaultTtlMs: msAtLeast().default(60 * 60_000),
  /** Upper bound of any task's TTL (and so of its handle's life), forwarded or run by the gateway. */
  maxTtlMs: msAtLeast().default(24 * 60 * 60_000),
  /** `pollInterval` suggested to clients for tasks the gateway runs. */
  pollIntervalMs: msAtLeast().default(1_000),
  /**
   * Tasks remembered at once (tasks the gateway runs, with their results, plus the index of forwarded
   * ones); the oldest finished task is dropped first, and new tasks are refused when all are running.
   */
  maxTasks: positiveInt.default(10_000),
  /**
   * Signs task webhooks: `X-Toolgate-Signature: sha256=<hex HMAC-SHA256 of the body>`, so a receiver knows
   * the POST came from this gateway. Usually `${TOOLGATE_WEBHOOK_SECRET}`.
   */
  webhookSecret: z.string().min(16).optional(),
});

export type TasksConfig = z.output<typeof TasksSchema>;
