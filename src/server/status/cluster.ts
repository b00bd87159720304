/**
 * `GET /status/cluster`: this replica and the cluster as the shared store sees it (replicas seen, lock
 * leases and their holders), plus the store's health and this replica's fallback counts. JSON, read on
 * demand: nothing here is on the call path.
 */
import { Hono } from "hono";
import type { Cluster } from "../../policies/cluster.ts";

export function clusterRoutes(cluster: Cluster, replicasConfigured: number): Hono {
  const app = new Hono();
  app.get("/status/cluster", async (c) => {
    const { stores, instanceId } = cluster.options;
    const local = {
      instance: instanceId,
      store: { kind: stores.kind, available: stores.health.available, latencyMs: stores.health.latencyMs },
      mode: cluster.shared ? "shared" : "local fallback",
      replicasConfigured,
      leasesHeldHere: cluster.leasesHeld(),
      events: cluster.counters,
    };
    try {
      return c.json({ ...local, cluster: await stores.snapshot() }, 200, { "cache-control": "no-store" });
    } catch (err) {
      return c.json({ ...local, cluster: null, error: (err as Error).message }, 200, {
        "cache-control": "no-store",
      });
    }
  });
  return app;
}
