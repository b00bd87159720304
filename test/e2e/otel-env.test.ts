/**
 * The standard OTEL_* variables on the real gateway binary, where the OTel NodeSDK sets telemetry up:
 * OTLP over HTTP/JSON with OTEL_RESOURCE_ATTRIBUTES (service.instance.id included) and the SDK's own
 * resource detection on what a receiver gets; and OTLP over gRPC (h2c) reaching a gRPC endpoint.
 */
import { createServer } from "node:http";
import { createServer as createHttp2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import {
  connectClient,
  eventually,
  FAULT_SERVER,
  type GatewayProcess,
  NODE,
  spawnGateway,
} from "../helpers/gateway.ts";

const config = {
  mcpServers: { faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] } },
  telemetry: { metrics: { process: false } },
};

interface OtlpJson {
  resourceMetrics?: Array<{
    resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> };
  }>;
}

let gw: GatewayProcess | undefined;
const closers: Array<() => void> = [];

afterAll(async () => {
  await gw?.stop();
  for (const close of closers) close();
});

describe("toolgate serve with OTEL_* variables", () => {
  it("pushes OTLP/JSON metrics whose resource carries OTEL_RESOURCE_ATTRIBUTES and detected attributes", async () => {
    const bodies: OtlpJson[] = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString("utf8");
      });
      req.on("end", () => {
        if (req.url === "/v1/metrics") bodies.push(JSON.parse(body) as OtlpJson);
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    closers.push(() => receiver.close());
    const { port } = receiver.address() as AddressInfo;
    gw = await spawnGateway(config, [], {
      OTEL_METRICS_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_METRIC_EXPORT_INTERVAL: "300",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=staging,service.instance.id=gw-7",
    });
    await eventually(() => bodies.length > 0, 20_000);
    const attributes = new Map(
      (bodies[0]?.resourceMetrics?.[0]?.resource?.attributes ?? []).map((a) => [a.key, a.value.stringValue]),
    );
    expect(attributes.get("service.name")).toBe("toolgate");
    expect(attributes.get("service.instance.id")).toBe("gw-7");
    expect(attributes.get("deployment.environment.name")).toBe("staging");
    // Added by the NodeSDK's host detector: the SDK did the set-up.
    expect(attributes.get("host.name")).toBeTruthy();
    await gw.stop();
    gw = undefined;
  }, 60_000);

  it("exports traces over gRPC when OTEL_EXPORTER_OTLP_PROTOCOL=grpc", async () => {
    const calls: string[] = [];
    const server = createHttp2Server();
    server.on("stream", (stream, headers) => {
      calls.push(`${headers[":path"]} ${headers["content-type"]}`);
      stream.on("data", () => {});
      stream.on("end", () => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(() => server.close());
    const { port } = server.address() as AddressInfo;
    gw = await spawnGateway(config, [], {
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
    // Any MCP request makes a SERVER span.
    const client = await connectClient("http", { url: gw.url });
    await client.listTools();
    await client.close();
    await eventually(() => calls.length > 0, 20_000);
    expect(calls[0]).toBe("/opentelemetry.proto.collector.trace.v1.TraceService/Export application/grpc");
  }, 60_000);
});
