/**
 * Waiting for upstreams to settle: every upstream ready or down (a failed first attempt counts; it keeps
 * retrying in the background), or a time budget passed. One mechanism for the gateway's start-up hold
 * (the first lists wait for it) and for `toolgate list`/`call`.
 */
import type { UpstreamRegistry } from "./registry.ts";
import type { UpstreamStatus } from "./upstream.ts";

/** Resolves with the names of the upstreams still connecting when the budget ran out (empty: all settled). */
export function whenSettled(
  registry: UpstreamRegistry,
  timeoutMs: number,
  onSettled?: (status: UpstreamStatus) => void,
): Promise<string[]> {
  const pending = new Set(registry.all().map((u) => u.name));
  return new Promise<string[]>((resolve) => {
    const settle = (status: UpstreamStatus) => {
      if (!pending.has(status.name) || status.state === "connecting") return;
      pending.delete(status.name);
      onSettled?.(status);
      if (pending.size === 0) finish([]);
    };
    const onState = (_: unknown, status: UpstreamStatus) => settle(status);
    const finish = (left: string[]) => {
      clearTimeout(timer);
      registry.off("state", onState);
      resolve(left);
    };
    const timer = setTimeout(() => {
      for (const status of registry.statuses()) if (pending.has(status.name)) onSettled?.(status);
      finish([...pending]);
    }, timeoutMs);
    registry.on("state", onState);
    for (const status of registry.statuses()) settle(status);
    if (pending.size === 0) finish([]);
  });
}
