/**
 * `GET /status/cluster`: this replica and the cluster as the shared store sees it (replicas seen, lock
 * leases and their holders), the store's health and this replica's fallback counts. JSON, read on demand:
 * nothing here is on the call path. The composition root supplies the report (app.ts).
 */
import { Hono } from "hono";

export function clusterRoutes(report: () => Promise<Record<string, unknown>>): Hono {
  const app = new Hono();
  app.get("/status/cluster", async (c) => c.json(await report(), 200, { "cache-control": "no-store" }));
  return app;
}
