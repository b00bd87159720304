/**
 * The gateway's HTTP face: MCP over Streamable HTTP at `/mcp` (sessions with `Mcp-Session-Id`, GET stream,
 * DELETE to end), MCP over WebSocket at `/ws`, `/healthz` and `/readyz`, plus routes mounted by others
 * (`/metrics`, `/status`, OAuth metadata). Every MCP request passes the guard (Origin/Host, auth) first.
 */

import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { isJsonContentType } from "@modelcontextprotocol/sdk/shared/mediaType.js";
import type { JSONRPCMessage, JSONRPCRequest } from "@modelcontextprotocol/sdk/types.js";
import { Hono } from "hono";
import { WebSocketServer } from "ws";
import type { GatewayOptions } from "../config/schema.ts";
import { RpcCode } from "../errors.ts";
import { eraOf } from "../protocol/era.ts";
import type { EventStore } from "../stores/event-store.ts";
import { type SessionRevocations, sessionDigest } from "../stores/revocations.ts";
import { StoreUnavailable } from "../stores/store.ts";
import type { Logger } from "../telemetry/log.ts";
import { atExpiry, type Principal } from "./auth/principal.ts";
import { Cors, grant } from "./cors.ts";
import type { ModernFace } from "./eras/modern.ts";
import type { Guard } from "./guard.ts";
import {
  Http1Front,
  Http1Request,
  type HttpRequestLike,
  type HttpResponseLike,
  leanBody,
} from "./http1-server.ts";
import { initializeProblem, toJsonRpcMessage } from "./jsonrpc-message.ts";
import type { DownstreamTransport, GatewaySession, SessionInfo } from "./session.ts";
import type { SessionSealer } from "./session-seal.ts";
import {
  isInitialize,
  isRequest,
  refuse,
  StreamableHttpServerTransport,
} from "./streamable-http-transport.ts";
import { CLOSE_POLICY_VIOLATION, handleProtocols, WebSocketServerTransport } from "./websocket-transport.ts";

export interface HttpServerDeps {
  options: Pick<GatewayOptions, "maxSessions" | "sessionIdleMs" | "maxBodyBytes" | "allowedOrigins">;
  log: Logger;
  newSession(info: SessionInfo): GatewaySession;
  /** Events of 2025-era SSE streams, for clients that resume with Last-Event-ID; absent: no resumption. */
  eventStore?: EventStore;
  /** The 2026-07-28 face: session-less requests with per-request `_meta`. */
  modern: ModernFace;
  guard: Guard;
  /** Readiness (`/readyz`): 200 when ready, else 503; `detail` says why. */
  ready(): { ready: boolean; detail: unknown };
  /** Extra routes (metrics, status page, OAuth metadata) on the hono app; `/mcp` is served apart. */
  mount?(app: Hono): void;
  onSessionOpened?(session: GatewaySession): void;
  onSessionClosed?(session: GatewaySession): void;
  /** A request to `/mcp` or `/ws` answered 4xx/5xx before MCP took it (an MCP error answers 200 or comes later). */
  onRefused?(status: number): void;
  /** Session ids that carry the session's state, so any replica can serve them (session-seal.ts). */
  sealer?: SessionSealer | undefined;
  /** Sessions ended on any replica (stores/revocations.ts), with a sealer and Redis; absent: ending is local. */
  revocations?: SessionRevocations | undefined;
}

interface HttpSession {
  session: GatewaySession;
  transport: StreamableHttpServerTransport;
  principal: Principal;
  lastSeen: number;
  /** Response streams still open: a session waiting on a call or listening on GET is not idle. */
  streams: number;
}

export class HttpServer {
  readonly app = new Hono();
  readonly #deps: HttpServerDeps;
  readonly #sessions = new Map<string, HttpSession>();
  readonly #restoring = new Map<string, Promise<HttpSession | undefined>>();
  /** Rebuilds under way whose session was ended elsewhere meanwhile: dropped when they finish. */
  readonly #endedWhileRestoring = new Set<string>();
  /** WebSocket sessions, with what they authenticated with at the upgrade (re-checked by recheckCredentials). */
  readonly #sockets = new Map<
    GatewaySession,
    { headers: Headers; loopback: boolean; transport: WebSocketServerTransport }
  >();
  /** Open GET and listen streams, with what their request authenticated with (re-checked the same way). */
  readonly #streams = new Map<
    HttpResponseLike,
    { headers: Pick<Headers, "get">; loopback: boolean; principal: string; end: () => void }
  >();
  #front: Http1Front | undefined;
  #wss: WebSocketServer | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #accepting = true;
  /** POST response streams still carrying answers, and who waits for them to end (close). */
  #answering = 0;
  #answered: (() => void) | undefined;
  #cors: Cors;

  constructor(deps: HttpServerDeps) {
    this.#deps = deps;
    this.#cors = new Cors(deps.options.allowedOrigins);
    const { app } = this;
    app.get("/healthz", (c) => c.json({ status: "ok" }));
    app.get("/readyz", (c) => {
      const { ready, detail } = deps.ready();
      return c.json({ ready, detail }, ready ? 200 : 503);
    });
    deps.mount?.(app);
    deps.revocations?.onRevoked((digest) => this.#closeRevoked(digest));
  }

  /**
   * A CORS preflight carries no credentials and runs nothing: the listed origins alone decide. The request that
   * follows meets the guard as any other.
   */
  #preflight(origin: string, req: McpRequest, res: HttpResponseLike): void {
    const answer = this.#cors.preflight(origin, req.headers);
    if (!answer.ok)
      return void refuse(res, 403, -32600, answer.message, answer.headers as Record<string, string>);
    res.writeHead(204, answer.headers).end();
  }

  /**
   * After the API keys or the OAuth settings changed: a WebSocket session authenticates once, at its upgrade, and
   * a GET or listen stream with its request, so one opened with credentials no longer accepted would go on.
   * Those credentials meet the guard again, and a session or stream they no longer admit (as the same principal)
   * is closed. Everything else needs none of this: every request meets the guard.
   */
  async recheckCredentials(): Promise<void> {
    for (const { headers, loopback, principal, end } of this.#streams.values()) {
      const verdict = await this.#deps.guard(headers, { loopback });
      if (verdict.ok && verdict.principal.id === principal) continue;
      this.#deps.log.info("ending a stream: the credentials it opened with are no longer accepted", {
        principal,
      });
      end();
    }
    for (const [session, { headers, loopback, transport }] of this.#sockets) {
      const verdict = await this.#deps.guard(headers, { loopback });
      if (verdict.ok && verdict.principal.id === session.info.principal.id) continue;
      this.#deps.log.info(
        "closing a WebSocket session: the credentials it opened with are no longer accepted",
        { principal: session.info.principal.id },
      );
      await transport
        .close(CLOSE_POLICY_VIOLATION, "the credentials it opened with are no longer accepted")
        .catch(() => {});
    }
  }

  /** A reload's `gateway.allowedOrigins`: who gets CORS from now on. */
  allowOrigins(origins: readonly string[]): void {
    this.#cors = new Cors(origins);
  }

  /** Open sessions of every HTTP transport (Streamable HTTP and WebSocket). */
  get sessionCount(): number {
    return this.#sessions.size + this.#sockets.size;
  }

  /**
   * `/mcp`, without hono: a POST with a Content-Length body on the lean front's own request and response
   * (http1-server.ts), anything else (GET streams, DELETE, chunked bodies) on node:http's.
   */
  async #handleMcp(req: McpRequest, res: HttpResponseLike): Promise<void> {
    // A browser page's requests carry an Origin; other clients' (the hot path) do not.
    const { origin } = req.headers;
    if (typeof origin === "string") {
      if (req.method === "OPTIONS") return this.#preflight(origin, req, res);
      if (this.#cors.grants(origin)) grant(res, origin);
    }
    const headers = headerReader(req);
    const loopback = isLoopback(req.socket.remoteAddress);
    const verdict = await this.#deps.guard(headers, { loopback });
    if (!verdict.ok) return void refuse(res, verdict.status, -32600, verdict.message, verdict.headers);
    if (req.method !== "POST" && req.method !== "GET" && req.method !== "DELETE") {
      return void refuse(res, 405, -32000, "Method not allowed.", { allow: "GET, POST, DELETE" });
    }
    const sessionId = req.headers["mcp-session-id"];
    if (typeof sessionId === "string") {
      let entry = this.#sessions.get(sessionId);
      if (!entry && req.method === "DELETE" && this.#deps.revocations) {
        return this.#endElsewhere(res, sessionId, verdict.principal);
      }
      try {
        entry ??= await this.#restore(sessionId, verdict.principal);
      } catch (err) {
        if (!(err instanceof StoreUnavailable)) throw err;
        // Fail closed: an ended session is a logout, never revived because Redis cannot say it ended.
        return void refuse(
          res,
          503,
          -32000,
          `cannot tell whether this session was ended on another replica: the cluster store is unreachable (${err.message}); retry in a few seconds, or initialize a new session`,
          { "retry-after": "5" },
        );
      }
      // Unknown, ended or someone else's session: 404 tells the client to initialize a new one.
      if (!entry || entry.principal.id !== verdict.principal.id) {
        return void refuse(res, 404, -32001, "Session not found");
      }
      entry.lastSeen = performance.now();
      switch (req.method) {
        case "POST": {
          const parsed = await this.#readMessages(req, res);
          if (!parsed) return;
          this.#watch(entry, res, parsed.messages.some(isRequest));
          // A 2026-07-28 listen on a session lasts only as long as its credentials do, and ends with its result.
          if (parsed.messages.some(isListen)) {
            const { session } = entry;
            this.#holdStream(res, headers, loopback, verdict.principal, () => session.credentialsRefused());
          }
          entry.transport.handlePost(req, res, parsed.messages, parsed.batch);
          return;
        }
        case "GET":
          this.#watch(entry, res, false);
          entry.transport.handleGet(req, res);
          // The stream outlives the request that authenticated it: it ends with the credentials (at a token's
          // expiry, or a reload that no longer accepts them), and the client's next GET meets the guard.
          this.#holdStream(res, headers, loopback, verdict.principal, () => res.end());
          res.on(
            "close",
            atExpiry(verdict.principal, () => res.end()),
          );
          return;
        default: // DELETE
          // Recorded before the answer, so the client's next request, wherever it lands, finds it ended.
          await this.#revoke(sessionId);
          // The announcement may have closed it here already (this replica hears its own): ended either way.
          if (!this.#sessions.has(sessionId)) return void res.writeHead(200, { "content-length": 0 }).end();
          return entry.transport.handleDelete(req, res);
      }
    }
    if (req.method !== "POST") {
      return void refuse(res, 400, -32000, "Bad Request: Mcp-Session-Id header is required");
    }
    const parsed = await this.#readMessages(req, res);
    if (!parsed) return;
    const first = parsed.messages[0] as JSONRPCMessage;
    const version = req.headers["mcp-protocol-version"];
    if (
      !parsed.batch &&
      "method" in first &&
      eraOf(first.method, first.params, typeof version === "string" ? version.trim() : undefined) === "modern"
    ) {
      if (!this.#accepting) {
        return void refuse(
          res,
          503,
          -32000,
          "toolgate is shutting down",
          {},
          "id" in first ? first.id : null,
        );
      }
      this.#answering++;
      res.on("close", this.#modernClosed);
      // A listen stream ends (with its result) at its token's expiry in the face itself, and at a reload here.
      if (first.method !== "subscriptions/listen") {
        return this.#deps.modern.handle(req, res, first, verdict.principal);
      }
      const refused = new AbortController();
      this.#holdStream(res, headers, loopback, verdict.principal, () => refused.abort());
      return this.#deps.modern.handle(req, res, first, verdict.principal, refused.signal);
    }
    if (!this.#accepting) return void refuse(res, 503, -32000, "toolgate is shutting down");
    if (this.sessionCount >= this.#deps.options.maxSessions) {
      return void refuse(
        res,
        503,
        -32000,
        `too many sessions (limit ${this.#deps.options.maxSessions}); retry later`,
        { "retry-after": "5" },
      );
    }
    if (!parsed.messages.some(isInitialize)) {
      for (const message of parsed.messages) {
        const problem = initializeProblem(message);
        if (problem)
          return void refuse(res, 400, RpcCode.InvalidParams, problem, {}, (message as JSONRPCRequest).id);
      }
      return void refuse(
        res,
        400,
        -32000,
        "Bad Request: Mcp-Session-Id header is required; start a session with initialize",
      );
    }
    await this.#initialize(req, res, parsed, verdict.principal);
  }

  async #initialize(
    req: HttpRequestLike,
    res: HttpResponseLike,
    parsed: { messages: JSONRPCMessage[]; batch: boolean },
    principal: Principal,
  ): Promise<void> {
    const { sealer } = this.#deps;
    const initialize = parsed.messages.find(isInitialize) as JSONRPCRequest;
    const id = sealer ? sealer.seal(principal.id, initialize) : crypto.randomUUID();
    const session = this.#deps.newSession({ transport: "http", principal });
    const transport = this.#wire(id, session);
    await session.connect(transport);
    const entry: HttpSession = { session, transport, principal, lastSeen: performance.now(), streams: 0 };
    this.#watch(entry, res, true);
    // The initialize answer goes out a few microtasks later, after the session is registered below.
    if (!transport.handlePost(req, res, parsed.messages, parsed.batch)) {
      await session.close();
      return;
    }
    this.#sessions.set(id, entry);
    this.#deps.onSessionOpened?.(session);
  }

  /** A session's wire: forgotten when it closes; what it refuses is logged and counted by the session. */
  #wire(id: string, session: GatewaySession): StreamableHttpServerTransport {
    const transport = new StreamableHttpServerTransport(id, this.#deps.eventStore);
    // Set before connect: Protocol chains its own close handling after this one.
    transport.onclose = () => this.#forget(id);
    transport.onrefused = session.refused;
    return transport;
  }

  /** Ends a sealed session on every replica (with Redis): recorded, announced, refused by rebuilds. */
  async #revoke(id: string): Promise<void> {
    const { sealer, revocations } = this.#deps;
    const state = sealer?.open(id);
    if (!state || !sealer || !revocations) return;
    if (!(await revocations.revoke(id, sealer.remainingMs(state)))) {
      this.#deps.log.warn(
        "session ended here, but the cluster store is unreachable: other replicas learn it when it answers",
        { principal: state.principal },
      );
    }
  }

  /** DELETE of a sealed session this replica does not hold: ended everywhere without rebuilding it here. */
  async #endElsewhere(res: HttpResponseLike, id: string, principal: Principal): Promise<void> {
    if (this.#deps.sealer?.open(id)?.principal !== principal.id) {
      return void refuse(res, 404, -32001, "Session not found");
    }
    await this.#revoke(id);
    res.writeHead(200, { "content-length": 0 }).end();
  }

  /**
   * A session ended on a replica (this one included): its copy here closes. `undefined`: announcements may
   * have been missed (the subscriber reconnected), so the sessions held here are checked.
   */
  #closeRevoked(digest: string | undefined): void {
    const close = (id: string) => {
      const entry = this.#sessions.get(id);
      if (!entry) return;
      this.#deps.log.info("session ended (DELETE) on a replica: closed here", {
        principal: entry.principal.id,
      });
      entry.transport.close().catch(() => {});
      this.#forget(id);
    };
    if (digest !== undefined) {
      for (const id of this.#sessions.keys()) if (sessionDigest(id) === digest) close(id);
      for (const id of this.#restoring.keys()) {
        if (sessionDigest(id) === digest) this.#endedWhileRestoring.add(id);
      }
      return;
    }
    const held = [...this.#sessions.keys()].filter((id) => this.#deps.sealer?.open(id) !== undefined);
    this.#deps.revocations
      ?.revokedAmong(held)
      .then((ended) => {
        for (const id of ended) close(id);
      })
      .catch(() => {}); // Redis away again: the next reconnection checks again
  }

  /**
   * A session another replica created (or this one before a restart), rebuilt from its sealed id when it
   * belongs to this principal and was not ended (with Redis: rejects with StoreUnavailable when that cannot be
   * told). Concurrent requests for it share one rebuild.
   */
  #restore(id: string, principal: Principal): Promise<HttpSession | undefined> | undefined {
    const { sealer } = this.#deps;
    if (!sealer || !this.#accepting || this.sessionCount >= this.#deps.options.maxSessions) return undefined;
    const state = sealer.open(id);
    if (state?.principal !== principal.id) return undefined;
    let restoring = this.#restoring.get(id);
    if (!restoring) {
      restoring = (async () => {
        if (await this.#deps.revocations?.isRevoked(id)) return undefined;
        const session = this.#deps.newSession({ transport: "http", principal });
        // With a shared event store, streams this session had on another replica resume here too.
        const transport = this.#wire(id, session);
        await session.connect(transport);
        await transport.replayInitialize(state.initialize);
        if (this.#endedWhileRestoring.has(id)) {
          await session.close();
          return undefined;
        }
        const entry: HttpSession = { session, transport, principal, lastSeen: performance.now(), streams: 0 };
        this.#sessions.set(id, entry);
        this.#deps.onSessionOpened?.(session);
        this.#deps.log.debug("session rebuilt from its sealed id", { principal: principal.id });
        return entry;
      })().finally(() => {
        this.#restoring.delete(id);
        this.#endedWhileRestoring.delete(id);
      });
      this.#restoring.set(id, restoring);
    }
    return restoring;
  }

  /** A stream's credentials, kept while it is open for recheckCredentials, and how it ends when they fail. */
  #holdStream(
    res: HttpResponseLike,
    headers: Pick<Headers, "get">,
    loopback: boolean,
    principal: Principal,
    end: () => void,
  ): void {
    this.#streams.set(res, { headers, loopback, principal: principal.id, end });
    res.on("close", () => this.#streams.delete(res));
  }

  /** A modern POST's response closed (one handler for all of them; `on`, as `once` wraps it per call). */
  readonly #modernClosed = (): void => {
    if (--this.#answering === 0) this.#answered?.();
  };

  /**
   * Follows a response until it closes: a session with one open is not idle, and a shutdown lets answers
   * still due (`answering`) go out before the sessions close.
   */
  #watch(entry: HttpSession, res: HttpResponseLike, answering: boolean): void {
    entry.streams++;
    if (answering) this.#answering++;
    res.on("close", () => {
      entry.streams--;
      entry.lastSeen = performance.now();
      if (answering && --this.#answering === 0) this.#answered?.();
    });
  }

  /**
   * The body of a POST, parsed and validated here: the SDK answers well-formed JSON that is not JSON-RPC with
   * -32700 (Parse error) where JSON-RPC says -32600 (Invalid Request), and accepts an empty batch silently.
   * Writes the error reply and resolves undefined when the body is refused.
   */
  async #readMessages(
    req: McpRequest,
    res: HttpResponseLike,
  ): Promise<{ messages: JSONRPCMessage[]; batch: boolean } | undefined> {
    // Either era: a body declared as anything else is refused unread, whatever its JSON would say.
    const contentType = req.headers["content-type"];
    if (contentType !== "application/json" && !isJsonContentType(contentType)) {
      refuse(res, 415, -32600, "Unsupported Media Type: Content-Type must be application/json");
      return undefined;
    }
    const max = this.#deps.options.maxBodyBytes;
    // The front read the body already (or refused to, past the limit).
    const text = req instanceof Http1Request ? leanBody(req, max) : await readBody(req, max);
    if (text === undefined) {
      refuse(res, 413, -32600, `request body larger than ${max} bytes`);
      return undefined;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      refuse(res, 400, -32700, "Parse error: the body is not valid JSON");
      return undefined;
    }
    const batch = Array.isArray(body);
    const raw: unknown[] = batch ? (body as unknown[]) : [body];
    const messages: JSONRPCMessage[] = [];
    for (const m of raw) {
      const message = toJsonRpcMessage(m);
      if (!message) break;
      messages.push(message);
    }
    if (messages.length === 0 || messages.length < raw.length) {
      refuse(
        res,
        400,
        -32600,
        "Invalid Request: the body must be a JSON-RPC 2.0 message or a non-empty batch of them",
      );
      return undefined;
    }
    return { messages, batch };
  }

  #forget(id: string): void {
    const entry = this.#sessions.get(id);
    if (!entry) return;
    this.#sessions.delete(id);
    this.#deps.onSessionClosed?.(entry.session);
    entry.session.close().catch(() => {});
  }

  #serveMcp(req: McpRequest, res: HttpResponseLike): void {
    this.#handleMcp(req, res).then(
      // A refusal is written before the handler returns; answers that come later are MCP's to count.
      () => {
        if (res.statusCode >= 400) this.#deps.onRefused?.(res.statusCode);
      },
      (err) => {
        this.#deps.log.warn("MCP request failed", { err });
        if (!res.headersSent) refuse(res, 500, -32603, "internal error");
        else res.destroy();
        this.#deps.onRefused?.(500);
      },
    );
  }

  /**
   * Listen on host:port (port 0: any free port); resolves with the bound port. The listener is the lean
   * HTTP/1.1 front (http1-server.ts): it serves MCP POSTs itself and hands every other connection to the
   * node:http server below (hono's routes, `/ws` upgrades, GET and DELETE of `/mcp`, whatever is unusual).
   */
  listen(host: string, port: number): Promise<number> {
    const other = getRequestListener(this.app.fetch, { hostname: host });
    const server = createServer((req, res) => {
      if (!isMcpPath(req.url)) return void other(req, res);
      this.#serveMcp(req, res);
    });
    const front = new Http1Front({
      fallback: server,
      path: "/mcp",
      maxBodyBytes: this.#deps.options.maxBodyBytes,
      handle: (req, res) => this.#serveMcp(req, res),
    });
    this.#front = front;
    this.#wss = new WebSocketServer({
      noServer: true,
      handleProtocols,
      maxPayload: this.#deps.options.maxBodyBytes,
    });
    server.on("upgrade", (req, socket, head) => {
      this.#upgrade(req, socket as import("node:net").Socket, head).catch((err) => {
        this.#deps.log.warn("websocket upgrade failed", { err });
        socket.destroy();
      });
    });
    const idle = this.#deps.options.sessionIdleMs;
    this.#sweeper = setInterval(
      () => this.#expireIdle(),
      Math.min(60_000, Math.max(1_000, idle / 4)),
    ).unref();
    const listener = front.server;
    return new Promise((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(port, host, () => {
        listener.off("error", reject);
        resolve((listener.address() as AddressInfo).port);
      });
    });
  }

  async #upgrade(req: IncomingMessage, socket: import("node:net").Socket, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const reject = (status: number, message: string, headers: Record<string, string> = {}) => {
      this.#deps.onRefused?.(status);
      const extra = Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      socket.end(
        `HTTP/1.1 ${status} ${message}\r\n${extra}content-type: text/plain\r\nconnection: close\r\n\r\n${message}\n`,
      );
    };
    if (url.pathname !== "/ws") return reject(404, "Not Found");
    if (!this.#accepting) return reject(503, "Shutting down");
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
    const loopback = isLoopback(req.socket.remoteAddress);
    const verdict = await this.#deps.guard(headers, { loopback });
    if (!verdict.ok) return reject(verdict.status, verdict.message, verdict.headers);
    if (this.sessionCount >= this.#deps.options.maxSessions) return reject(503, "Too many sessions");
    const wss = this.#wss;
    if (!wss) return reject(503, "Not listening");
    wss.handleUpgrade(req, socket, head, (ws) => {
      const session = this.#deps.newSession({
        transport: "ws" as DownstreamTransport,
        principal: verdict.principal,
      });
      const transport = new WebSocketServerTransport(ws);
      this.#sockets.set(session, { headers, loopback, transport });
      this.#deps.onSessionOpened?.(session);
      // A session authenticates once, here; an access token's expiry ends it.
      const expiry = atExpiry(verdict.principal, () => {
        this.#deps.log.info("closing a WebSocket session: its access token expired", {
          principal: verdict.principal.id,
        });
        void transport.close(CLOSE_POLICY_VIOLATION, "the access token expired: reconnect with a fresh one");
      });
      transport.onclose = () => {
        expiry();
        if (this.#sockets.delete(session)) this.#deps.onSessionClosed?.(session);
      };
      session.connect(transport).catch((err) => {
        this.#deps.log.warn("websocket session failed to start", { err });
        ws.terminate();
      });
    });
  }

  #expireIdle(): void {
    const cutoff = performance.now() - this.#deps.options.sessionIdleMs;
    for (const [id, entry] of this.#sessions) {
      if (entry.streams === 0 && entry.lastSeen < cutoff) {
        this.#deps.log.info("session expired after idle time", { session: id });
        entry.transport.close().catch(() => {});
        this.#forget(id);
      }
    }
  }

  /**
   * Answers already due (a drained call's result, a ShuttingDown error) are still on their way through the
   * session when the router is idle: let their streams end before the sessions close, for at most `ms`.
   */
  #answersSent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#answering === 0) return resolve();
      const timer = setTimeout(resolve, ms);
      this.#answered = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Stop accepting new sessions (graceful shutdown, step one). */
  stopAccepting(): void {
    this.#accepting = false;
  }

  async close(): Promise<void> {
    this.#accepting = false;
    clearInterval(this.#sweeper);
    await this.#answersSent(1_000);
    const sessions = [...this.#sessions.values()].map((e) => e.session).concat([...this.#sockets.keys()]);
    await Promise.allSettled(sessions.map((s) => s.close()));
    this.#sessions.clear();
    this.#sockets.clear();
    this.#wss?.close();
    await this.#front?.close();
  }
}

/** An MCP request: the lean front's (a POST, body read) or node's (anything handed over). */
type McpRequest = Http1Request | IncomingMessage;

/** A request body as text, or undefined when it is larger than `max` bytes (the rest is discarded). */
function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  if (Number(req.headers["content-length"]) > max) {
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) return void chunks.push(chunk);
      req.off("data", onData);
      req.resume();
      resolve(undefined);
    };
    req.on("data", onData);
    req.once("end", () =>
      resolve(chunks.length === 1 ? String(chunks[0]) : Buffer.concat(chunks).toString()),
    );
    req.once("error", reject);
  });
}

/** The guard reads a few headers; node already parsed them all. */
function headerReader(req: HttpRequestLike): { get(name: string): string | null } {
  return {
    get(name) {
      const value = req.headers[name];
      return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
    },
  };
}

/** `/mcp`, with or without a query string. */
function isMcpPath(url: string | undefined): boolean {
  return url?.startsWith("/mcp") === true && (url.length === 4 || url[4] === "?");
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

function isListen(message: JSONRPCMessage): boolean {
  return "method" in message && message.method === "subscriptions/listen";
}
