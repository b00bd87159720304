/**
 * `toolgate batch`: many tool calls from a JSON Lines file through the gateway's policies, for scripts
 * that are not MCP clients. One `{ "tool", "arguments"?, "priority"?, "id"? }` per line; every line is
 * answered exactly once, by one JSON line: `{ line, id?, tool, ok, result }` or `{ line, ok: false, error }`.
 * Calls start in priority order (higher first) with at most `parallel` in flight; the priority also
 * orders them in the tools' queues.
 */
import { toWire } from "../errors.ts";

export interface BatchCall {
  line: number;
  id?: unknown;
  tool: string;
  arguments: Record<string, unknown>;
  priority: number | undefined;
}

export interface BatchAnswer {
  line: number;
  id?: unknown;
  tool?: string;
  ok: boolean;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

export interface BatchProgress {
  total: number;
  done: number;
  failed: number;
}

export interface BatchOptions {
  call: (
    tool: string,
    args: Record<string, unknown>,
    priority: number | undefined,
  ) => Promise<Record<string, unknown>>;
  parallel: number;
  /** One answer (already serialized, without a newline). */
  write: (json: string) => void;
  progress?: (progress: BatchProgress) => void;
}

/** Lines that are calls, and answers for lines that are not (blank lines are skipped). */
export function parseBatch(text: string): { calls: BatchCall[]; invalid: BatchAnswer[] } {
  const calls: BatchCall[] = [];
  const invalid: BatchAnswer[] = [];
  for (const [index, raw] of text.split("\n").entries()) {
    if (raw.trim() === "") continue;
    const parsed = parseLine(raw, index + 1);
    if (typeof parsed === "string") {
      invalid.push({ line: index + 1, ok: false, error: { code: -32600, message: parsed } });
    } else calls.push(parsed);
  }
  return { calls, invalid };
}

/** One line as a call, or what is wrong with it. */
function parseLine(raw: string, line: number): BatchCall | string {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return `line ${line} is not JSON: ${(err as Error).message}`;
  }
  const entry = value as Record<string, unknown> | null;
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    return `line ${line} must be an object { "tool", "arguments"?, "priority"? }`;
  }
  const args = entry.arguments ?? {};
  if (typeof entry.tool !== "string" || entry.tool === "") {
    // tools/call's own key: the likeliest slip.
    const slip =
      typeof entry.name === "string"
        ? `; it has "name": write {"tool": ${JSON.stringify(entry.name)}, …}`
        : "";
    return `line ${line} needs "tool" (a string)${slip}`;
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    return `line ${line}: "arguments" must be an object`;
  }
  if (entry.priority !== undefined && !Number.isInteger(entry.priority)) {
    return `line ${line}: "priority" must be an integer`;
  }
  return {
    line,
    ...(entry.id !== undefined && { id: entry.id }),
    tool: entry.tool,
    arguments: args as Record<string, unknown>,
    priority: entry.priority as number | undefined,
  };
}

export async function runBatch(text: string, options: BatchOptions): Promise<BatchProgress> {
  const { calls, invalid } = parseBatch(text);
  const progress: BatchProgress = { total: calls.length + invalid.length, done: 0, failed: 0 };
  const answer = (a: BatchAnswer) => {
    options.write(JSON.stringify(a));
    progress.done++;
    if (!a.ok) progress.failed++;
    options.progress?.({ ...progress });
  };
  for (const a of invalid) answer(a);
  // Stable: equal priorities keep file order.
  const queue = [...calls].sort((a, b) => (b.priority ?? 0) - (a.priority ?? 0));
  let next = 0;
  const worker = async () => {
    while (next < queue.length) {
      const call = queue[next++] as BatchCall;
      const base = { line: call.line, ...(call.id !== undefined && { id: call.id }), tool: call.tool };
      try {
        const result = await options.call(call.tool, call.arguments, call.priority);
        answer({ ...base, ok: result.isError !== true, result });
      } catch (err) {
        const wire = toWire(err);
        answer({ ...base, ok: false, error: { code: wire.code, message: wire.message } });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.parallel, queue.length)) }, worker));
  return progress;
}
