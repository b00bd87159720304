import type { Readable, Writable } from "node:stream";
import { isDeepStrictEqual } from "node:util";
import { Catalog, type CatalogKind } from "./catalog/catalog.ts";
import { ArgumentValidator } from "./catalog/input-validation.ts";
import { createPinGate, pinKey, ToolPins } from "./catalog/pinning.ts";
import {
  clusterFor,
  clusterReport,
  eventStoreFor,
  instanceIdOf,
  observeCluster,
  pinStoreFor,
  redisStores,
  revocationsFor,
  sessionSealer,
  taskStoreFor,
} from "./cluster.ts";
import type { ResolvedConfig } from "./config/load.ts";
import { restartOnlyChanges } from "./config/restart-only.ts";
import type { AuthOptions } from "./config/security-schema.ts";
import { ErrorCode, GatewayError } from "./errors.ts";
import type { Cluster } from "./policies/cluster.ts";
import { PolicyEventHub } from "./policies/events.ts";
import { InputRounds } from "./protocol/input-rounds.ts";
import { ApprovalQueue } from "./router/approval.ts";
import { CatalogPublisher } from "./router/catalog-publisher.ts";
import type { PipelineCache } from "./router/pipelines.ts";
import { type Caller, type Result, Router } from "./router/router.ts";
import { approvalRoutes } from "./server/approval-routes.ts";
import { type AccessRules, accessControl, accessFor } from "./server/auth/access.ts";
import { assertSafeBind } from "./server/auth/authenticate.ts";
import { createOAuthVerifier, type OAuthVerifier } from "./server/auth/oauth.ts";
import { ANONYMOUS } from "./server/auth/principal.ts";
import { ModernFace } from "./server/eras/modern.ts";
import { ModernTasks } from "./server/eras/modern-tasks.ts";
import { createGuard, type Guard } from "./server/guard.ts";
import { HttpServer, isLoopback } from "./server/http.ts";
import {
  createOperatorGate,
  gateMiddleware,
  type OperatorGate,
  type OperatorRoute,
} from "./server/operator-gate.ts";
import { GatewaySession, type SessionInfo } from "./server/session.ts";
import { clusterRoutes } from "./server/status/cluster.ts";
import { metricsRoutes } from "./server/status/metrics.ts";
import { type MetricsServer, serveMetrics } from "./server/status/metrics-server.ts";
import { statusRoutes } from "./server/status/routes.ts";
import { statusSource } from "./server/status/source.ts";
import { StdioServerTransport } from "./server/stdio-server-transport.ts";
import { taskRoutes } from "./server/task-routes.ts";
import { upstreamAuthRoutes } from "./server/upstream-auth-routes.ts";
import type { ClusterStores } from "./stores/store.ts";
import { TaskHandles } from "./tasks/handles.ts";
import { TaskService } from "./tasks/tasks.ts";
import { upstreamRouting } from "./tasks/upstream-routing.ts";
import { callTelemetry, discoveryTelemetry, upstreamTransport } from "./telemetry/hooks.ts";
import type { Logger } from "./telemetry/log.ts";
import { telemetryOptions } from "./telemetry/options.ts";
import { createTelemetry } from "./telemetry/setup.ts";
import type { NetworkTransport, Telemetry } from "./telemetry/telemetry.ts";
import type { GatewayView } from "./telemetry/view.ts";
import type { CredentialStore } from "./upstreams/auth/credential-store.ts";
import { FileCredentialStore } from "./upstreams/auth/credential-store.ts";
import { loginCommand, oauthClients } from "./upstreams/auth/oauth-provider.ts";
import { UpstreamConsent } from "./upstreams/consent.ts";
import { isPerPrincipal, PrincipalPool } from "./upstreams/principal-pool.ts";
import { UpstreamRegistry } from "./upstreams/registry.ts";
import { whenSettled } from "./upstreams/settled.ts";
import type { UpstreamOptions, UpstreamStatus } from "./upstreams/upstream.ts";

/** What the HTTP listener checks each request against. */
interface Door {
  host: string;
  /** Rebuilt by a reload that changes `security.auth.oauth` (and its JWKS cache with it). */
  oauth: OAuthVerifier | undefined;
  /** The settings `oauth` was built from. */
  oauthConfig: AuthOptions["oauth"];
  guard: Guard;
  gate: OperatorGate;
}

export interface GatewayDeps {
  log: Logger;
  env: NodeJS.ProcessEnv;
  /** Built from the config (and OTEL_* variables) when absent; tests pass one with in-memory exporters. */
  telemetry?: Telemetry | undefined;
  /** The gateway owns the process (`toolgate serve`): OpenTelemetry is set up globally by the NodeSDK. */
  processWideTelemetry?: boolean;
  /** Tool-definition pins (security.pinning); absent when pinning is off. */
  pins?: ToolPins | undefined;
  /** Credentials of OAuth-protected upstreams; absent when no upstream uses OAuth. */
  credentials?: CredentialStore | undefined;
  /** Check pins without writing them (`toolgate list`/`call`: a look leaves no state behind). */
  pinsReadOnly?: boolean;
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
  readonly tasks: TaskService;
  readonly approvals: ApprovalQueue;
  /** Replicas sharing a store; undefined for a single process. */
  readonly cluster: Cluster | undefined;
  /** Per-principal connections of upstreams with auth.oauth.perPrincipal; absent without upstream OAuth. */
  principals: PrincipalPool | undefined;
  #config: ResolvedConfig;
  #access: AccessRules;
  readonly #validator: ArgumentValidator;
  readonly #pins: ToolPins | undefined;
  /** Rebuilds the catalog from the upstreams, publishes it to telemetry and announces what changed. */
  readonly #publisher: CatalogPublisher;
  readonly #sessions = new Set<GatewaySession>();
  #http: HttpServer | undefined;
  /** The HTTP listener's door (who may call, who may operate), once serving HTTP; a reload rebuilds it. */
  #door: Door | undefined;
  #metricsServer: Promise<MetricsServer> | undefined;
  /** The 2026-07-28 face, shared by every HTTP request that speaks it. */
  readonly modern: ModernFace;
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
        ...(deps.processWideTelemetry && { processWide: true }),
      });
    this.telemetry = telemetry;
    this.events.on(telemetry.onPolicyEvent);
    const { pinning } = config.security;
    this.catalog = new Catalog({
      separator: config.gateway.separator,
      ...(deps.pins && {
        gate: createPinGate(deps.pins, pinning.mode, deps.log, (name) => {
          const upstream = this.registry.get(name);
          return upstream ? pinKey(upstream.config) : name;
        }),
      }),
    });
    this.registry = new UpstreamRegistry(config.upstreams, {
      ...this.#upstreamHooks(undefined),
      ...(deps.credentials && { oauthFor: this.#oauthFor(deps.credentials, deps.env) }),
    });
    if (this.cluster) observeCluster(telemetry, this.cluster);
    this.approvals = new ApprovalQueue({
      operators: () => this.#config.approvals.operators,
      timeoutMs: () => this.#config.approvals.timeoutMs,
      log: deps.log,
    });
    this.router = new Router({
      catalog: this.catalog,
      upstreams: this.registry,
      pipelines: { config: () => this.#config, events: this.events, cluster: this.cluster },
      events: this.events,
      log: deps.log,
      approveCommand: (upstream) => this.#approveCommand(upstream),
      heldReason: (_upstream, cause) =>
        cause === "unverified"
          ? `this tool is held: ${this.#pinsUnreadable() ?? "the tool pins could not be read"}; a definition not compared with its pin is not served until the store answers again`
          : undefined,
      approvals: this.approvals,
      ...(this.principals && {
        connections: this.principals,
        whenAuthorized: (upstream, principal, signal) =>
          (this.principals as PrincipalPool).whenAuthorized(upstream, principal, signal),
      }),
      access: accessControl(() => this.#access),
      ...callTelemetry({
        telemetry,
        log: deps.log,
        transportOf: (upstream) => upstreamTransport(this.registry.get(upstream)?.config),
      }),
      checkArguments: (route, args) => {
        if (this.#config.security.validateArguments) {
          this.#validator.validate(route.definition, args, { upstream: route.upstream });
        }
      },
      checkResult: (route, result) => {
        const problem = this.#validator.outputProblem(route.definition, result, { upstream: route.upstream });
        if (problem === undefined) return undefined;
        const fromSpec = this.registry.get(route.upstream)?.config.transport.type === "openapi";
        return fromSpec
          ? `${problem}; the API's answer does not follow its OpenAPI document: fix the document, or set "outputSchemas": false on "${route.upstream}"`
          : problem;
      },
    });
    this.pipelines = this.router.pipelines;
    this.#publisher = new CatalogPublisher({
      catalog: this.catalog,
      upstreams: this.registry,
      pipelines: this.pipelines,
      telemetry,
      log: deps.log,
      announce: (kinds) => this.#announce(kinds),
    });
    // Pins changed elsewhere (an approval, another replica) or readable again: verdicts may change.
    deps.pins?.onChange(() => this.#publisher.rebuild());
    const handleKey = config.tasks.handleKey ?? deps.env.TOOLGATE_TASK_KEY;
    const handles = new TaskHandles(handleKey);
    if (handles.ephemeral) {
      this.log.info("task handles use a key made for this process: they die with it (set tasks.handleKey)");
    }
    this.tasks = new TaskService({
      router: this.router,
      catalog: this.catalog,
      upstreams: this.registry,
      handles,
      store: taskStoreFor(deps.stores, () => this.#config.tasks.maxTasks),
      config: () => this.#config.tasks,
      log: deps.log,
      onTaskEvent: (event) => telemetry.recordTask(event),
    });
    this.modern = new ModernFace({
      router: this.router,
      log: deps.log,
      telemetry,
      serverInfo: SERVER_INFO,
      instructions: () => this.#instructions(),
      toolSchema: (name) =>
        this.catalog.tool(name)?.definition.inputSchema as Record<string, unknown> | undefined,
      // A held call waits up to 5 minutes for the client's next round; asks sent together go out together.
      rounds: new InputRounds({ ttlMs: 5 * 60_000, gatherMs: 20 }),
      tasks: new ModernTasks(this.tasks),
      limits: this.#config.gateway,
      maxOpen: () => this.#config.gateway.maxSessions,
      whenCatalogReady: (signal) => this.whenCatalogReady(signal),
    });
    this.registry.on("catalogChanged", () => this.#publisher.rebuild());
    this.registry.on("connected", (upstream) => void this.router.upstreamConnected(upstream.name));
    this.registry.on("removed", (upstream) => {
      telemetry.upstreamRemoved(upstream.name);
      this.principals?.drop(upstream.name);
      this.#publisher.rebuild();
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
    upstreams: () => this.#upstreamStatuses(),
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
  /** Settles when the first catalog is complete: every upstream ready or down, or the start-up budget passed. */
  #firstCatalog: Promise<void> | undefined;
  #catalogComplete = false;

  /** Connect every upstream in the background; never blocks on a broken one. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.registry.startAll();
    this.#publisher.publish();
    this.telemetry.startAlerts(this.view);
    const budgetMs = this.#config.gateway.startupBudgetMs;
    this.#firstCatalog = whenSettled(this.registry, budgetMs).then((connecting) => {
      this.#publisher.rebuild();
      this.#catalogComplete = true;
      if (connecting.length) {
        this.log.warn("start-up budget passed; serving the catalog without upstreams still connecting", {
          budgetMs,
          connecting,
        });
      }
    });
  }

  /**
   * Resolves once the catalog may be served as complete (see `start`), so a client that lists once right
   * after connecting sees every upstream's tools. Rejects when `signal` aborts (the client cancelled).
   */
  whenCatalogReady(signal?: AbortSignal): Promise<void> {
    const first = this.#firstCatalog;
    if (this.#catalogComplete || !first) return Promise.resolve();
    if (!signal) return first;
    signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      void first.then(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  /** Tell every session which lists changed. */
  #announce(kinds: Set<CatalogKind>): void {
    // Before the first catalog is complete every list waits for it: a change then is not news to anyone,
    // and a client would re-list once per upstream and kind as they come up.
    if (!this.#catalogComplete) return;
    for (const kind of kinds) this.modern.listChanged(kind);
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
        tasks: this.tasks,
        log: this.log,
        serverInfo: SERVER_INFO,
        instructions: this.#instructions(),
        telemetry: this.telemetry,
        maxPending: this.#config.gateway.maxPendingPerSession,
        limits: this.#config.gateway,
        whenCatalogReady: (signal) => this.whenCatalogReady(signal),
        modern: this.modern,
      },
      info,
    );
  };

  #instructions(): string {
    const names = this.registry.all().map((u) => u.name);
    return `toolgate serves the tools of ${names.length} upstream MCP server(s) (${names.join(", ")}); tool names are prefixed with their upstream.`;
  }

  /**
   * What every upstream connection hands back to the gateway: server→client requests and notifications go
   * to the calls in flight under `routingKey` (a per-principal connection's own key; default: the upstream's
   * name), discovery timings to telemetry.
   */
  #upstreamHooks(routingKey: string | undefined): Omit<UpstreamOptions, "oauthFor"> {
    return {
      log: this.log,
      clientInfo: SERVER_INFO,
      // Read when a message arrives: the registry is built before the router and the tasks.
      ...upstreamRouting(this, routingKey),
      onDiscovery: discoveryTelemetry(this.telemetry),
    };
  }

  /** The work the status page lists: running gateway tasks and calls held for approval. */
  readonly #statusWork = { runningTasks: () => this.tasks.running(), heldCalls: () => this.approvals.list() };

  /**
   * Each upstream's status; a per-principal one's with the number of principals' connections open, one with
   * tools held by pinning with their count and why.
   */
  #upstreamStatuses(): UpstreamStatus[] {
    const pool = this.principals;
    return this.registry.all().map((u) => {
      const status: UpstreamStatus =
        pool && isPerPrincipal(u.config)
          ? { ...u.status(), principalConnections: pool.size(u.name) }
          : u.status();
      const held = this.catalog.heldCount(u.name);
      if (held === 0) return status;
      const changed = this.catalog.heldCount(u.name, "changed");
      const reasons = [
        ...(changed > 0 ? [`definition changed since pinned: ${this.#approveCommand(u.name)}`] : []),
        ...(held > changed
          ? [`${this.#pinsUnreadable() ?? "the tool pins could not be read"}: held until it answers`]
          : []),
      ];
      return { ...status, toolsHeld: { count: held, reason: reasons.join("; ") } };
    });
  }

  #approveCommand(upstream: string): string {
    const file = this.#config.configFile;
    return `toolgate pins approve ${upstream}${file ? ` --config ${shellQuote(file)}` : ""}`;
  }

  /** While the tool pins cannot be read: why tools without a known pin are held. */
  #pinsUnreadable(): string | undefined {
    const unreadable = this.#pins?.unreadable;
    return unreadable === undefined
      ? undefined
      : `the tool pins (${this.#pins?.store.where}) cannot be read (${unreadable})`;
  }

  /** OAuth clients of the upstreams' shared connections; a per-principal upstream's is its catalog principal's. */
  #oauthFor(store: CredentialStore, env: NodeJS.ProcessEnv): UpstreamOptions["oauthFor"] {
    const login = (name: string) => loginCommand(name, this.#config.configFile);
    const shared = oauthClients(store, login);
    const pool = new PrincipalPool({
      store,
      log: this.log,
      upstreamOptions: (routingKey) => this.#upstreamHooks(routingKey),
      onConnected: ({ handle, routingKey }) => void this.router.connectionOpened(handle, routingKey),
      subscribedOn: (routingKey) => this.router.subscribedOn(routingKey),
      loginCommand: login,
      ticketSecret: env.TOOLGATE_TOKEN_KEY,
    });
    this.principals = pool;
    return (name, transport) => {
      const upstream = this.registry.get(name);
      return upstream && isPerPrincipal(upstream.config)
        ? pool.catalogOAuth(upstream.config)
        : shared(name, transport);
    };
  }

  #opened = (session: GatewaySession): void => {
    this.#sessions.add(session);
    this.telemetry.sessionOpened(networkTransport(session));
  };

  #closed = (session: GatewaySession): void => {
    if (!this.#sessions.delete(session)) return;
    this.router.sessionClosed(session);
    this.tasks.sessionClosed(session);
    this.telemetry.sessionClosed(networkTransport(session), performance.now() - session.openedAt);
  };

  /** The guard and operator gate for `auth`, on a listener bound to `host`. */
  #doorFor(host: string, auth: AuthOptions, oauth: OAuthVerifier | undefined): Pick<Door, "guard" | "gate"> {
    const guard = createGuard({ listenHost: host, gateway: this.#config.gateway, auth, oauth });
    return { guard, gate: createOperatorGate({ guard, auth, operators: this.#config.security.operators }) };
  }

  /** Serve MCP over Streamable HTTP (/mcp) and WebSocket (/ws); resolves with the bound port. */
  async serveHttp(host: string, port: number): Promise<number> {
    const { auth } = this.#config.security;
    assertSafeBind(host, auth);
    const oauth = auth.oauth ? createOAuthVerifier(auth.oauth) : undefined;
    this.start();
    this.#door = { host, oauth, oauthConfig: auth.oauth, ...this.#doorFor(host, auth, oauth) };
    // Stable entry points to the current door: a reload rebuilds it under them.
    const guard: Guard = (headers, remote) => (this.#door as Door).guard(headers, remote);
    const decide: OperatorGate["decide"] = (...args) => (this.#door as Door).gate.decide(...args);
    const gate = { middleware: (route: OperatorRoute) => gateMiddleware(decide, route) };
    const sealer = sessionSealer(this.#config);
    const http = new HttpServer({
      options: this.#config.gateway,
      log: this.log,
      newSession: this.#newSession,
      modern: this.modern,
      eventStore: eventStoreFor(this.cluster?.options.stores),
      guard,
      // Status page, /metrics (operators only) and the RFC 9728 document a 401's WWW-Authenticate points to.
      mount: (app) => {
        app.route("/", metricsRoutes(this.telemetry, gate.middleware("metrics")));
        app.route(
          "/",
          statusRoutes(statusSource(this.view, this.telemetry, SERVER_INFO, this.#statusWork), {
            status: gate.middleware("status"),
            page: gate.middleware("page"),
          }),
        );
        app.route("/", approvalRoutes({ approvals: this.approvals, guard, isLoopback }));
        if (this.principals) {
          const consent = new UpstreamConsent(this.principals, (name) => this.registry.get(name));
          app.route("/", upstreamAuthRoutes({ consent, guard, isLoopback, log: this.log }));
        }
        app.route(
          "/",
          taskRoutes({
            tasks: this.tasks,
            guard,
            isLoopback,
            maxCalls: () => this.#config.tasks.maxTasks,
            maxBodyBytes: this.#config.gateway.maxBodyBytes,
          }),
        );
        const { cluster } = this;
        if (cluster) {
          app.use("/status/cluster", gate.middleware("status"));
          app.route(
            "/",
            clusterRoutes(() => clusterReport(cluster, this.#config.cluster.replicas)),
          );
        }
        // Public, and read by browser clients of any origin before they sign in (as the SDK's router serves it).
        // Matched per request: a reload may turn OAuth on or off, or move the document.
        app.get("*", (c, next) => {
          const door = this.#door;
          if (!door?.oauth || c.req.path !== door.oauthConfig?.resourceMetadataPath) return next();
          return c.json(door.oauth.protectedResourceMetadata(), 200, { "access-control-allow-origin": "*" });
        });
      },
      // Ready: not draining (a load balancer stops sending new work during a rolling update), the start-up hold
      // is over, and some upstream serves (or none is configured). Anyone may ask, so the detail is counts
      // only: names, versions and errors (stderr lines among them) are for operators, on /status.
      ready: () => {
        const statuses = this.#upstreamStatuses();
        const serving = statuses.length === 0 || statuses.some((s) => s.state === "ready");
        const upstreams: Record<string, number> = {};
        for (const { state } of statuses) upstreams[state] = (upstreams[state] ?? 0) + 1;
        return {
          ready: this.#stopping === undefined && this.#catalogComplete && serving,
          detail: {
            catalog: this.#catalogComplete ? "complete" : "starting",
            draining: this.#stopping !== undefined,
            upstreams,
          },
        };
      },
      onSessionOpened: this.#opened,
      onSessionClosed: this.#closed,
      onRefused: (status) => this.telemetry.httpRefused(status),
      sealer,
      revocations: revocationsFor(this.cluster?.options.stores, sealer),
    });
    this.#http = http;
    await this.#serveMetrics();
    const bound = await http.listen(host, port);
    // Consent links and the OAuth callback use the address served (auth.oauth.publicUrl overrides it).
    if (this.principals) this.principals.origin = `http://${browsable(host)}:${bound}`;
    return bound;
  }

  /** Serve one MCP session over stdio (stdout carries the protocol; logs go to stderr). */
  async serveStdio(input: Readable, output: Writable): Promise<void> {
    this.start();
    await this.#serveMetrics();
    const session = this.#newSession({ transport: "stdio", principal: ANONYMOUS });
    const transport = new StdioServerTransport(input, output, this.#config.gateway.maxBodyBytes);
    transport.onclose = () => this.#closed(session);
    this.#opened(session);
    await session.connect(transport);
  }

  /** `telemetry.metrics.listen`: /metrics alone on its own address; resolves with its port, or undefined. */
  async metricsPort(): Promise<number | undefined> {
    return (await this.#metricsServer)?.port;
  }

  async #serveMetrics(): Promise<void> {
    const listen = this.#config.telemetry.metrics.listen;
    if (!listen || this.#metricsServer) return;
    const colon = listen.lastIndexOf(":");
    const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    this.#metricsServer = serveMetrics(this.telemetry, host, Number(listen.slice(colon + 1)));
    const server = await this.#metricsServer;
    this.log.info("metrics listening", { url: `http://${listen.slice(0, colon)}:${server.port}/metrics` });
  }

  /** Wait until every upstream is ready or down (or the timeout passes), reporting each as it settles. */
  async waitForUpstreams(timeoutMs: number, onSettled?: (status: UpstreamStatus) => void): Promise<void> {
    this.start();
    await whenSettled(this.registry, timeoutMs, onSettled);
    this.#publisher.rebuild();
  }

  /** Upstreams and the catalog as plain data (`toolgate list`, status). */
  snapshot() {
    return {
      upstreams: this.#upstreamStatuses(),
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
    options: { priority?: number | undefined } = {},
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
      meta:
        onProgress || options.priority !== undefined
          ? {
              ...(onProgress && { progressToken: 0 }),
              ...(options.priority !== undefined && { "toolgate/priority": options.priority }),
            }
          : undefined,
      onProgress,
    });
  }

  /**
   * Apply a new config: unchanged upstreams and their in-flight calls are left alone; API keys, operators and
   * allowed origins and hosts apply to the next request. Throws, changing nothing, when the new config would
   * leave a non-loopback listener without authentication.
   */
  async reload(config: ResolvedConfig): Promise<void> {
    const door = this.#door;
    const { auth } = config.security;
    if (door) assertSafeBind(door.host, auth);
    const restartOnly = restartOnlyChanges(this.#config, config);
    const keysChanged = !isDeepStrictEqual(this.#config.security.auth.apiKeys, auth.apiKeys);
    const oauthChanged = !isDeepStrictEqual(door?.oauthConfig, auth.oauth);
    const before = this.#config;
    this.#config = config;
    if (door) {
      // A new verifier only for new settings: an unchanged one keeps its JWKS cache.
      const oauth = oauthChanged ? auth.oauth && createOAuthVerifier(auth.oauth) : door.oauth;
      this.#door = {
        host: door.host,
        oauth,
        oauthConfig: auth.oauth,
        ...this.#doorFor(door.host, auth, oauth),
      };
      this.#http?.allowOrigins(config.gateway.allowedOrigins);
      if (keysChanged || oauthChanged) await this.#http?.recheckCredentials();
    }
    if (keysChanged) {
      // A principal no key authenticates as any more: its per-principal connections go now, not when idle.
      const kept = new Set(auth.apiKeys.map((key) => key.principal));
      for (const { principal } of before.security.auth.apiKeys) {
        if (!kept.has(principal)) this.principals?.forget({ id: principal, kind: "apiKey" });
      }
    }
    this.#access = accessFor(config, this.cluster);
    // Approvals made meanwhile by `toolgate pins approve` (another process) release held tools.
    await this.#pins?.reload();
    await this.principals?.load(config.upstreams);
    const result = await this.registry.reconcile(config.upstreams);
    this.log.info("upstreams reconciled", { ...result });
    this.#publisher.rebuild();
    if (restartOnly.length > 0) {
      this.log.warn("these settings changed, but apply only after a restart; the running values stay", {
        settings: restartOnly,
      });
    }
  }

  /** Graceful shutdown; idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#http?.stopAccepting();
    await this.router.drain(this.#config.gateway.drainTimeoutMs);
    this.modern.close();
    await this.#http?.close();
    await (await this.#metricsServer?.catch(() => undefined))?.close();
    await Promise.allSettled([...this.#sessions].map((s) => s.close()));
    await this.principals?.stopAll();
    await this.registry.stopAll();
    this.pipelines.shutdown();
    await this.#pins?.close();
    this.cluster?.stop();
    await this.cluster?.options.stores.close();
    await this.telemetry.shutdown();
  }
}

export async function createGateway(config: ResolvedConfig, deps: GatewayDeps): Promise<Gateway> {
  const { pinning } = config.security;
  const instanceId = deps.instanceId ?? instanceIdOf(config);
  const stores = deps.stores ?? (await redisStores(config, deps.log, instanceId));
  const pins =
    deps.pins ??
    (pinning.mode === "off"
      ? undefined
      : await ToolPins.open(pinStoreFor(stores) ?? pinning.file, {
          logger: deps.log,
          readOnly: deps.pinsReadOnly ?? false,
        }));
  const credentials =
    deps.credentials ??
    (config.upstreams.some((u) => "oauth" in u.transport && u.transport.oauth)
      ? credentialStore(config, deps.env)
      : undefined);
  const gateway = new Gateway(config, { ...deps, pins, credentials, stores, instanceId });
  await gateway.principals?.load(config.upstreams);
  return gateway;
}

/** A host a browser can open: a wildcard address means this machine. */
function browsable(host: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

/** Upstream OAuth credentials live in the config's state directory (gateway.stateDir). */
export function credentialStore(config: ResolvedConfig, env: NodeJS.ProcessEnv): FileCredentialStore {
  return new FileCredentialStore(config.gateway.stateDir, env.TOOLGATE_TOKEN_KEY);
}

/** A path as one shell word (quoted only when it needs to be). */
function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

function networkTransport(session: GatewaySession): NetworkTransport {
  return session.info.transport === "stdio" ? "pipe" : "tcp";
}
