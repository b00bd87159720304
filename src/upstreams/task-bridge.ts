/**
 * A plain tools/call to a tool its upstream takes only as a task (`taskSupport: "required"`): create the
 * upstream task and wait for its result (`tasks/result` blocks until the task ends). Cancelling the call
 * cancels the upstream task. The client sees an ordinary result, without the upstream's task id.
 */
import type { Upstream, UpstreamRequestOptions } from "./upstream.ts";

/** The upstream keeps the bridged task this long at most; the call's own timeouts usually end it sooner. */
const BRIDGE_TTL_MS = 60 * 60_000;
const RELATED_TASK = "io.modelcontextprotocol/related-task";

export async function callAsTask(
  upstream: Pick<Upstream, "request">,
  params: Record<string, unknown>,
  options: UpstreamRequestOptions,
): Promise<Record<string, unknown>> {
  const created = await upstream.request("tools/call", { ...params, task: { ttl: BRIDGE_TTL_MS } }, options);
  const taskId = (created.task as { taskId?: unknown } | undefined)?.taskId;
  if (typeof taskId !== "string") return created;
  try {
    const result = await upstream.request(
      "tasks/result",
      { taskId },
      options.signal ? { signal: options.signal } : {},
    );
    const meta = result._meta as Record<string, unknown> | undefined;
    if (!meta || !(RELATED_TASK in meta)) return result;
    const { [RELATED_TASK]: _, ...rest } = meta;
    return { ...result, _meta: rest };
  } catch (err) {
    if (options.signal?.aborted) {
      void upstream.request("tasks/cancel", { taskId }, { timeoutMs: 10_000 }).catch(() => {});
    }
    throw err;
  }
}
