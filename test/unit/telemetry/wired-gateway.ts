/**
 * A gateway core wired to telemetry through the hooks the router and policies expose (the wiring app.ts is
 * to do): real upstreams, catalog, policy pipelines and router, with `serverSpan` around each call as the
 * downstream session would do, and the status and metrics routes served on 127.0.0.1.
 * Plus a small traced MCP server whose tools record the `_meta` they receive.
 */
import type { Server as HttpServer } from "node:http";
import { type ServerType, serve } from "@hono/node-server";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolRequestSchema, ListToolsRequestSchema, type Tool } from "@modelcontextprotocol/sdk/types.js";
import { Hono } from "hono";
import { Catalog } from "../../../src/catalog/catalog.ts";
import { resolveConfig } from "../../../src/config/load.ts";
import { PolicyEventHub } from "../../../src/policies/events.ts";
import { PipelineCache } from "../../../src/router/pipelines.ts";
import { type Result, Router } from "../../../src/router/router.ts";
import { metricsRoutes } from "../../../src/server/status/metrics.ts";
import { statusRoutes } from "../../../src/server/status/routes.ts";
import { statusSource } from "../../../src/server/status/source.ts";
import { silentLogger } from "../../../src/telemetry/log.ts";
import type { NetworkTransport, Telemetry } from "../../../src/telemetry/telemetry.ts";
import type { GatewayView } from "../../../src/telemetry/view.ts";
import { UpstreamRegistry } from "../../../src/upstreams/registry.ts";
import { type RunningServer, serveNetwork } from "../../fixtures/serve.ts";

export interface TracedServer extends RunningServer {
  /** `params._meta` of every tools/call received, in order. */
  metas: Array<Record<string, unknown> | undefined>;
}

const TOOLS: Tool[] = [
  { name: "echo", inputSchema: { type: "object" }, annotations: { readOnlyHint: true } },
  { name: "flaky", inputSchema: { type: "object" }, annotations: { idempotentHint: true } },
  { name: "boom", inputSchema: { type: "object" } },
  { name: "hang", inputSchema: { type: "object" } },
];

/** An MCP server (Streamable HTTP on 127.0.0.1): echo; flaky fails its first call; boom always fails; hang waits. */
export async function startTracedServer(): Promise<TracedServer> {
  const metas: TracedServer["metas"] = [];
  let flakyCalls = 0;
  const running = await serveNetwork(
    () => {
      const server = new Server({ name: "traced", version: "1.0.0" }, { capabilities: { tools: {} } });
      server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
      server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
        metas.push(request.params._meta as Record<string, unknown> | undefined);
        const name = request.params.name;
        if (name === "flaky" && ++flakyCalls === 1)
          throw Object.assign(new Error("flaky failed"), { code: -32603 });
        if (name === "boom") throw Object.assign(new Error("boom"), { code: -32603 });
        if (name === "hang") {
          await new Promise((resolve) => extra.signal.addEventListener("abort", resolve, { once: true }));
        }
        return { content: [{ type: "text", text: name }] };
      });
      return server;
    },
    { transport: "http" },
  );
  return { ...running, metas };
}

export interface WiredGateway {
  router: Router;
  view: GatewayView;
  /** Base URL of the status and metrics routes. */
  base: string;
  /** A tools/call as a downstream session runs it: inside the SERVER span, with the client's `_meta`. */
  call(name: string, args?: Record<string, unknown>, meta?: Record<string, unknown>): Promise<Result>;
  /** Resolves once the catalog lists `tools`. */
  ready(tools: string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startWiredGateway(raw: unknown, telemetry: Telemetry): Promise<WiredGateway> {
  const { config } = resolveConfig(raw, {});
  const events = new PolicyEventHub();
  events.on((event) => telemetry.onPolicyEvent(event));
  const catalog = new Catalog({ separator: config.gateway.separator });
  const transportOf = new Map<string, NetworkTransport>(
    config.upstreams.map((u) => [u.name, u.transport.type === "stdio" ? "pipe" : "tcp"]),
  );
  const registry = new UpstreamRegistry(config.upstreams, {
    log: silentLogger,
    clientInfo: { name: "toolgate-test", version: "0.0.0" },
    onServerRequest: async () => ({}),
    onNotification: () => {},
  });
  registry.on("state", (_upstream, status) => telemetry.upstreamStatus(status));
  const pipelines = new PipelineCache({ config: () => config, events });
  const router = new Router({
    catalog,
    upstreams: registry,
    pipelines,
    events,
    log: silentLogger,
    aroundAttempt: (route, attempt, fn) =>
      telemetry.clientSpan(
        {
          method: "tools/call",
          target: route.upstreamTool,
          upstream: route.upstream,
          transport: transportOf.get(route.upstream) ?? "tcp",
          attempt,
        },
        fn,
      ),
    onCallEnd: (record) =>
      telemetry.recordCall({
        tool: record.route.name,
        upstream: record.route.upstream,
        outcome: record.outcome,
        durationMs: record.durationMs,
        ...(record.error && { errorCode: record.error.code, errorClass: record.error.errorClass }),
      }),
  });
  registry.on("catalogChanged", () => catalog.rebuild(registry.all()));
  const view: GatewayView = {
    upstreams: () => registry.statuses(),
    tools: () =>
      [...catalog.toolRoutes()].map((r) => ({
        name: r.name,
        upstream: r.upstream,
        ...(r.definition.description && { description: r.definition.description }),
        queueSize: r.policy.concurrency.queueSize,
      })),
    breakers: () => pipelines.breakers.states(),
  };
  registry.startAll();

  const app = new Hono();
  app.route("/", metricsRoutes(telemetry));
  app.route("/", statusRoutes(statusSource(view, telemetry, { name: "toolgate", version: "test" })));
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as { port: number };

  let requestId = 0;
  return {
    router,
    view,
    base: `http://127.0.0.1:${port}`,
    call: (name, args = {}, meta) =>
      telemetry.serverSpan(
        {
          method: "tools/call",
          target: name,
          transport: "tcp",
          requestId: ++requestId,
          sessionId: "s-1",
          ...(meta && { meta }),
        },
        () =>
          router.callTool(name, args, {
            caller: {
              sessionId: "s-1",
              request: async () => ({}),
              notify: async () => {},
            },
            principal: { id: "test", kind: "anonymous", scopes: [] },
            requestId,
            signal: new AbortController().signal,
            meta,
            onProgress: undefined,
          }),
      ),
    async ready(tools) {
      for (let i = 0; i < 200; i++) {
        const names = new Set([...catalog.toolRoutes()].map((r) => r.name));
        if (tools.every((t) => names.has(t))) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`the catalog never listed ${tools.join(", ")}`);
    },
    async stop() {
      (server as HttpServer).closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await registry.stopAll();
      pipelines.shutdown();
    },
  };
}
