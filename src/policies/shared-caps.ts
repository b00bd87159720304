/**
 * Concurrency caps counted across the cluster: inside the local bulkheads (which still bound this
 * replica's memory and queue), a call takes one cluster permit of its tool, upstream and global caps, all
 * or none, waiting within the bulkhead's `queueTimeoutMs`. While the store is unreachable the call takes
 * local fallback bulkheads instead, each limited to the cap divided by the replica count, so the cluster
 * as a whole stays near its limit; the next call after the store is back counts cluster-wide again.
 */
import { type Bulkhead, bulkheadPolicy } from "./bulkhead.ts";
import type { Cluster } from "./cluster.ts";
import type { Policy } from "./types.ts";

export interface SharedCap {
  name: string;
  limit: number;
  /** The local bulkhead used while the store is away (limit / replicas). */
  fallback: Bulkhead;
}

export function sharedCapsPolicy(
  cluster: Cluster,
  caps: readonly SharedCap[],
  queueTimeoutMs: number,
): Policy {
  const slots = caps.map(({ name, limit }) => ({ name, limit }));
  const fallback = bulkheadPolicy(
    caps.map((c) => c.fallback),
    queueTimeoutMs,
  );
  return {
    name: "sharedCaps",
    async execute(fn, ctx) {
      const waitUntil = queueTimeoutMs > 0 ? performance.now() + queueTimeoutMs : Number.POSITIVE_INFINITY;
      const release = await cluster.acquirePermits(slots, ctx, waitUntil);
      if (release === undefined) return fallback.execute(fn, ctx);
      try {
        return await fn(ctx);
      } finally {
        release();
      }
    },
  };
}
