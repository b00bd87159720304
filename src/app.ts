/**
 * Composition root: builds the gateway from a resolved config, owns the start/stop order and reloads.
 * Start: upstreams connect in the background → the catalog follows their lists → servers accept clients.
 * Stop: stop accepting → drain in-flight calls (up to drainTimeoutMs) → cancel the rest → close sessions →
 * stop upstreams (stdio children included).
 */
import type { Readable, Writable } from "node:stream";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { Catalog, type CatalogKind } from "./catalog/catalog.ts";
import { ArgumentValidator } from "./catalog/input-validation.ts";
import { createPinGate, ToolPins } from "./catalog/pinning.ts";
import {
  clusterFor,
  clusterReport,
  instanceIdOf,
  observeCluster,
  redisStores,
  sessionSealer,
} from "./cluster.ts";
import type { ResolvedConfig } from "./config/load.ts";
import { ErrorCode, GatewayError } from "./errors.ts";
import type { Cluster } from "./policies/cluster.ts";
import { PolicyEventHub } from "./policies/events.ts";
import { PipelineCache } from "./router/pipelines.ts";
import { type Caller, type Result, Router } from "./router/router.ts";
import { assertSafeBind } from "./server/auth/authenticate.ts";
import { type Authorizer, createAuthorizer, RateLimiter } from "./server/auth/authorize.ts";
import { createOAuthVerifier } from "./server/auth/oauth.ts";
import { ANONYMOUS } from "./server/auth/principal.ts";
import { createGuard } from "./server/guard.ts";
import { HttpServer } from "./server/http.ts";
import { GatewaySession, type SessionInfo } from "./server/session.ts";
import { clusterRoutes } from "./server/status/cluster.ts";
import { metricsRoutes } from "./server/status/metrics.ts";
import { statusRoutes } from "./server/status/routes.ts";
import { statusSource } from "./server/status/source.ts";
import type { ClusterStores } from "./stores/store.ts";
import type { Logger } from "./telemetry/log.ts";
import { telemetryOptions } from "./telemetry/options.ts";
import { createTelemetry } from "./telemetry/setup.ts";
import type { NetworkTransport, Telemetry } from "./telemetry/telemetry.ts";
import type { GatewayView } from "./telemetry/view.ts";
import { UpstreamRegistry } from "./upstreams/registry.ts";
import type { UpstreamStatus } from "./upstreams/upstream.ts";

export interface GatewayDeps {
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** Built from the config (and OTEL_* variables) when absent; tests pass one with in-memory exporters. */
  telemetry?: Telemetry | undefined;
  /** Tool-definition pins (security.pinning); absent when pinning is off. */
  pins?: ToolPins | undefined;
  /** State shared with the other replicas (cluster.redis); absent: one process, everything in memory. */
  stores?: ClusterStores | undefined;
  /** This replica's name (cluster.instanceId, default `<hostname>-<random>`). */
  instanceId?: string | undefined;
}

const SERVER_INFO = { name: "toolgate", version: "0.1.0" };

export class Gateway {
  readonly log: Logger;
  readonly catalog: Catalog;
  readonly registry: UpstreamRegistry;
  readonly router: Router;
  readonly events = new PolicyEventHub();
  readonly telemetry: Telemetry;
  readonly pipelines: PipelineCache;
  /** Replicas sharing a store; undefined for a single process. */
  readonly cluster: Cluster | undefined;
  #config: ResolvedConfig;
  #access: { authorizer: Authorizer; limiter: RateLimiter };
  readonly #validator: ArgumentValidator;
  readonly #pins: ToolPins | undefined;
  readonly #sessions = new Set<GatewaySession>();
  #http: HttpServer | undefined;
  #stopping: Promise<void> | undefined;

  constructor(config: ResolvedConfig, deps: GatewayDeps) {
    this.#config = config;
    this.log = deps.log;
    this.cluster =
      deps.stores && clusterFor(config, deps.stores, deps.log, deps.instanceId ?? instanceIdOf(config));
    this.#access = accessFor(config, this.cluster);
    this.#validator = new ArgumentValidator({ logger: deps.log });
    this.#pins = deps.pins;
    const telemetry =
      deps.telemetry ??
      createTelemetry({
        ...telemetryOptions(config.telemetry, deps.env, SERVER_INFO),
        ...(deps.instanceId && { serviceInstanceId: deps.instanceId }),
        logger: deps.log,
      });
    this.telemetry = telemetry;
    this.events.on(telemetry.onPolicyEvent);
    const { pinning } = config.security;
    this.catalog = new Catalog({
      separator: config.gateway.separator,
      ...(deps.pins ? { gate: createPinGate(deps.pins, pinning.mode, deps.log) } : {}),
    });
    this.registry = new UpstreamRegistry(config.upstreams, {
      log: deps.log,
      clientInfo: SERVER_INFO,
      onServerRequest: (upstream, request, extra) =>
        this.router.serverRequest(upstream.name, request.method, request.params, extra.signal),
      onNotification: (upstream, n) => this.router.routeNotification(upstream.name, n.method, n.params),
    });
    this.pipelines = new PipelineCache({
      config: () => this.#config,
      events: this.events,
      cluster: this.cluster,
    });
    if (this.cluster) observeCluster(telemetry, this.cluster);
    this.router = new Router({
      catalog: this.catalog,
      upstreams: this.registry,
      pipelines: this.pipelines,
      events: this.events,
      log: deps.log,
      access: {
        canSee: (principal, route) => this.#access.authorizer.canCall(principal, route.name, route.upstream),
        admit: (principal, route) => {
          this.#access.authorizer.assertCanCall(principal, route.name, route.upstream);
          return this.#access.limiter.admit(principal, route.name);
        },
      },
      aroundAttempt: (route, attempt, fn) =>
        telemetry.clientSpan(
          {
            method: "tools/call",
            target: route.upstreamTool,
            upstream: route.upstream,
            transport: this.registry.get(route.upstream)?.config.transport.type === "stdio" ? "pipe" : "tcp",
            attempt,
          },
          fn,
        ),
      onCallEnd: (record) => {
        telemetry.recordCall({
          tool: record.route.name,
          upstream: record.route.upstream,
          outcome: record.outcome,
          durationMs: record.durationMs,
          ...(record.error && { errorCode: record.error.code, errorClass: record.error.errorClass }),
          ...(record.requestBytes !== undefined && { requestBytes: record.requestBytes }),
          ...(record.responseBytes !== undefined && { responseBytes: record.responseBytes }),
        });
        if (this.log.enabled("debug")) {
          this.log.debug("call", {
            tool: record.route.name,
            upstream: record.route.upstream,
            principal: record.principal.id,
            outcome: record.outcome,
            ms: Math.round(record.durationMs * 10) / 10,
            ...(record.error && { error: record.error.code, message: record.error.message }),
          });
        }
      },
      checkArguments: (route, args) => {
        if (this.#config.security.validateArguments) {
          this.#validator.validate(route.definition, args, { upstream: route.upstream });
        }
      },
    });
    this.registry.on("catalogChanged", () => this.#rebuildCatalog());
    this.registry.on("removed", (upstream) => {
      telemetry.upstreamRemoved(upstream.name);
      this.#rebuildCatalog();
    });
    this.registry.on("state", (_upstream, status) => telemetry.upstreamStatus(status));
  }

  get config(): ResolvedConfig {
    return this.#config;
  }

  /** Downstream sessions open now, over every transport. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** What telemetry (alerts, status page) reads of the running gateway. */
  readonly view: GatewayView = {
    upstreams: () => this.registry.statuses(),
    tools: () =>
      [...this.catalog.toolRoutes()].map((r) => ({
        name: r.name,
        upstream: r.upstream,
        ...(r.definition.description && { description: r.definition.description }),
        queueSize: r.policy.concurrency.queueSize,
      })),
    breakers: () => this.pipelines.breakers.states(),
  };

  #started = false;

  /** Connect every upstream in the background; never blocks on a broken one. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.registry.startAll();
    this.telemetry.startAlerts(this.view);
  }

  #rebuildCatalog(): void {
    const changed = this.catalog.rebuild(this.registry.all());
    this.telemetry.stats.retain(new Set([...this.catalog.toolRoutes()].map((r) => r.name)));
    for (const collision of this.catalog.collisions)
      this.log.warn("catalog collision", { detail: collision });
    if (changed.size) this.#announce(changed);
  }

  /** Tell every session which lists changed. */
  #announce(kinds: Set<CatalogKind>): void {
    for (const session of this.#sessions) {
      for (const kind of kinds) {
        session.notify(`notifications/${kind}/list_changed`, undefined).catch(() => {});
      }
    }
  }

  #newSession = (info: SessionInfo): GatewaySession => {
    return new GatewaySession(
      {
        router: this.router,
        log: this.log,
        serverInfo: SERVER_INFO,
        instructions: this.#instructions(),
        telemetry: this.telemetry,
        maxPending: this.#config.gateway.maxPendingPerSession,
      },
      info,
    );
  };

  #instructions(): string {
    const names = this.registry.all().map((u) => u.name);
    return `toolgate serves the tools of ${names.length} upstream MCP server(s) (${names.join(", ")}); tool names are prefixed with their upstream.`;
  }

  #opened = (session: GatewaySession): void => {
    this.#sessions.add(session);
    this.telemetry.sessionOpened(networkTransport(session));
  };

  #closed = (session: GatewaySession): void => {
    if (!this.#sessions.delete(session)) return;
    this.router.sessionClosed(session);
    this.telemetry.sessionClosed(networkTransport(session), performance.now() - session.openedAt);
  };

  /** Serve MCP over Streamable HTTP (/mcp) and WebSocket (/ws); resolves with the bound port. */
  async serveHttp(host: string, port: number): Promise<number> {
    const { auth } = this.#config.security;
    assertSafeBind(host, auth);
    const oauth = auth.oauth ? createOAuthVerifier(auth.oauth) : undefined;
    this.start();
    const http = new HttpServer({
      options: this.#config.gateway,
      log: this.log,
      newSession: this.#newSession,
      guard: createGuard({
        listenHost: host,
        gateway: this.#config.gateway,
        auth: this.#config.security.auth,
        oauth,
      }),
      // Status page, /metrics and the RFC 9728 document a 401's WWW-Authenticate points OAuth clients to.
      mount: (app) => {
        app.route("/", metricsRoutes(this.telemetry));
        app.route("/", statusRoutes(statusSource(this.view, this.telemetry, SERVER_INFO)));
        const { cluster } = this;
        if (cluster)
          app.route(
            "/",
            clusterRoutes(() => clusterReport(cluster, this.#config.cluster.replicas)),
          );
        if (oauth && auth.oauth) {
          app.get(auth.oauth.resourceMetadataPath, (c) => c.json(oauth.protectedResourceMetadata()));
        }
      },
      // Not ready while draining, so a load balancer stops sending new work during a rolling update.
      ready: () => {
        const statuses = this.registry.statuses();
        return {
          ready: this.#stopping === undefined && statuses.some((s) => s.state === "ready"),
          detail: statuses,
        };
      },
      onSessionOpened: this.#opened,
      onSessionClosed: this.#closed,
      sealer: sessionSealer(this.#config),
    });
    this.#http = http;
    return http.listen(host, port);
  }

  /** Serve one MCP session over stdio (stdout carries the protocol; logs go to stderr). */
  async serveStdio(input: Readable, output: Writable): Promise<void> {
    this.start();
    const session = this.#newSession({ transport: "stdio", principal: ANONYMOUS });
    const transport = new StdioServerTransport(input, output);
    transport.onclose = () => this.#closed(session);
    this.#opened(session);
    await session.connect(transport);
  }

  /** Wait until every upstream is ready or down (or the timeout passes), reporting each as it settles. */
  async waitForUpstreams(timeoutMs: number, onSettled?: (status: UpstreamStatus) => void): Promise<void> {
    this.start();
    const pending = new Set(this.registry.all().map((u) => u.name));
    await new Promise<void>((resolve) => {
      const settle = (status: UpstreamStatus) => {
        if (!pending.has(status.name) || status.state === "connecting") return;
        pending.delete(status.name);
        onSettled?.(status);
        if (pending.size === 0) finish();
      };
      const onState = (_: unknown, status: UpstreamStatus) => settle(status);
      const finish = () => {
        clearTimeout(timer);
        this.registry.off("state", onState);
        resolve();
      };
      const timer = setTimeout(() => {
        for (const status of this.registry.statuses()) if (pending.has(status.name)) onSettled?.(status);
        finish();
      }, timeoutMs);
      this.registry.on("state", onState);
      for (const status of this.registry.statuses()) settle(status);
      if (pending.size === 0) finish();
    });
    this.#rebuildCatalog();
  }

  /** Upstreams and the catalog as plain data (`toolgate list`, status). */
  snapshot() {
    return {
      upstreams: this.registry.statuses(),
      tools: [...this.catalog.toolRoutes()].map((r) => ({
        name: r.name,
        upstream: r.upstream,
        description: r.definition.description,
        idempotent: r.idempotent,
      })),
      prompts: this.catalog.prompts.map((p) => p.name),
      resources: this.catalog.resources.map((r) => r.uri),
      collisions: this.catalog.collisions,
    };
  }

  /** A call from inside the process (`toolgate call`): no client to answer sampling or elicitation. */
  callTool(
    name: string,
    args: Record<string, unknown>,
    onProgress?: (p: { progress: number; total?: number; message?: string }) => void,
  ): Promise<Result> {
    const caller: Caller = {
      sessionId: "cli",
      request: async (method) => {
        throw new GatewayError(ErrorCode.MethodNotFound, `${method} needs an interactive MCP client`);
      },
      notify: async (method, params) => {
        if (method === "notifications/message") this.log.info("upstream log", { params });
      },
    };
    return this.router.callTool(name, args, {
      caller,
      principal: { id: "cli", kind: "anonymous", scopes: [] },
      requestId: 0,
      signal: new AbortController().signal,
      meta: onProgress ? { progressToken: 0 } : undefined,
      onProgress,
    });
  }

  /** Apply a new config: unchanged upstreams and their in-flight calls are left alone. */
  async reload(config: ResolvedConfig): Promise<void> {
    this.#config = config;
    this.#access = accessFor(config, this.cluster);
    // Approvals made meanwhile by `toolgate pins approve` (another process) release held tools.
    await this.#pins?.reload();
    const result = await this.registry.reconcile(config.upstreams);
    this.log.info("upstreams reconciled", { ...result });
    this.#rebuildCatalog();
  }

  /** Graceful shutdown; idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#http?.stopAccepting();
    await this.router.drain(this.#config.gateway.drainTimeoutMs);
    await this.#http?.close();
    await Promise.allSettled([...this.#sessions].map((s) => s.close()));
    await this.registry.stopAll();
    this.pipelines.shutdown();
    this.cluster?.stop();
    await this.cluster?.options.stores.close();
    await this.telemetry.shutdown();
  }
}

export async function createGateway(config: ResolvedConfig, deps: GatewayDeps): Promise<Gateway> {
  const { pinning } = config.security;
  const pins =
    deps.pins ??
    (pinning.mode === "off" ? undefined : await ToolPins.open(pinning.file, { logger: deps.log }));
  const instanceId = deps.instanceId ?? instanceIdOf(config);
  const stores = deps.stores ?? (await redisStores(config, deps.log, instanceId));
  return new Gateway(config, { ...deps, pins, stores, instanceId });
}

function networkTransport(session: GatewaySession): NetworkTransport {
  return session.info.transport === "stdio" ? "pipe" : "tcp";
}

function accessFor(
  config: ResolvedConfig,
  cluster: Cluster | undefined,
): { authorizer: Authorizer; limiter: RateLimiter } {
  const authorizer = createAuthorizer(config.security);
  const shared = cluster && { rates: cluster.options.stores.rates, replicas: cluster.options.replicas };
  return { authorizer, limiter: new RateLimiter((p) => authorizer.rulesFor(p), shared ? { shared } : {}) };
}
