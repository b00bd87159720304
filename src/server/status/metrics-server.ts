/**
 * `telemetry.metrics.listen`: `/metrics` on an address of its own, without authentication, for a scraper on
 * a private network (the usual set-up beside a public MCP port). Nothing else is served there.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Telemetry } from "../../telemetry/telemetry.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export async function serveMetrics(
  telemetry: Pick<Telemetry, "scrape">,
  host: string,
  port: number,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics is served here\n");
      return;
    }
    telemetry.scrape().then(
      (text) => {
        if (text === undefined) {
          res.writeHead(404, { "content-type": "text/plain" }).end("Prometheus metrics are off\n");
          return;
        }
        res
          .writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" })
          .end(text);
      },
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
