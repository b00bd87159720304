/**
 * The gateway's HTTP face: MCP over Streamable HTTP at `/mcp` (sessions with `Mcp-Session-Id`, GET stream,
 * DELETE to end), MCP over WebSocket at `/ws`, `/healthz` and `/readyz`, plus routes mounted by others
 * (`/metrics`, `/status`, OAuth metadata). Every MCP request passes the guard (Origin/Host, auth) first.
 */

import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { createAdaptorServer, type ServerType } from "@hono/node-server";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { WebSocketServer } from "ws";
import type { GatewayOptions } from "../config/schema.ts";
import type { Logger } from "../telemetry/log.ts";
import type { Principal } from "./auth/principal.ts";
import type { Guard } from "./guard.ts";
import type { DownstreamTransport, GatewaySession, SessionInfo } from "./session.ts";
import { handleProtocols, WebSocketServerTransport } from "./websocket-transport.ts";

export interface HttpServerDeps {
  options: Pick<GatewayOptions, "maxSessions" | "sessionIdleMs" | "maxBodyBytes">;
  log: Logger;
  newSession(info: SessionInfo): GatewaySession;
  guard: Guard;
  /** Readiness: at least one upstream ready. */
  ready(): { ready: boolean; detail: unknown };
  /** Extra routes (metrics, status page, OAuth metadata), mounted before `/mcp`. */
  mount?(app: Hono): void;
  onSessionOpened?(session: GatewaySession): void;
  onSessionClosed?(session: GatewaySession): void;
}

interface HttpSession {
  session: GatewaySession;
  transport: WebStandardStreamableHTTPServerTransport;
  principal: Principal;
  lastSeen: number;
  /** Response streams still open: a session waiting on a call or listening on GET is not idle. */
  streams: number;
}

export class HttpServer {
  readonly app = new Hono();
  readonly #deps: HttpServerDeps;
  readonly #sessions = new Map<string, HttpSession>();
  readonly #sockets = new Set<GatewaySession>();
  #server: ServerType | undefined;
  #wss: WebSocketServer | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #accepting = true;
  /** POST response streams still carrying answers, and who waits for them to end (close). */
  #answering = 0;
  #answered: (() => void) | undefined;

  constructor(deps: HttpServerDeps) {
    this.#deps = deps;
    const { app } = this;
    app.get("/healthz", (c) => c.json({ status: "ok" }));
    app.get("/readyz", (c) => {
      const { ready, detail } = deps.ready();
      return c.json({ ready, detail }, ready ? 200 : 503);
    });
    deps.mount?.(app);
    app.use(
      "/mcp",
      bodyLimit({
        maxSize: deps.options.maxBodyBytes,
        onError: (c) =>
          c.json(rpcError(-32600, `request body larger than ${deps.options.maxBodyBytes} bytes`), 413),
      }),
    );
    app.all("/mcp", (c) => this.#handleMcp(c.req.raw, c.env as { incoming?: IncomingMessage } | undefined));
  }

  /** Open sessions of every HTTP transport (Streamable HTTP and WebSocket). */
  get sessionCount(): number {
    return this.#sessions.size + this.#sockets.size;
  }

  async #handleMcp(req: Request, env: { incoming?: IncomingMessage } | undefined): Promise<Response> {
    const loopback = isLoopback(env?.incoming?.socket.remoteAddress);
    const verdict = await this.#deps.guard(req.headers, { loopback });
    if (!verdict.ok) {
      return Response.json(rpcError(-32600, verdict.message), {
        status: verdict.status,
        headers: verdict.headers ?? {},
      });
    }
    const sessionId = req.headers.get("mcp-session-id");
    if (sessionId) {
      const entry = this.#sessions.get(sessionId);
      // Unknown, ended or someone else's session: 404 tells the client to initialize a new one.
      if (!entry || entry.principal.id !== verdict.principal.id) {
        return Response.json(rpcError(-32001, "Session not found"), { status: 404 });
      }
      entry.lastSeen = performance.now();
      if (req.method !== "POST") return this.#tracked(entry, await entry.transport.handleRequest(req), []);
      const parsed = await parseMessages(req);
      if (parsed instanceof Response) return parsed;
      const response = await entry.transport.handleRequest(req, { parsedBody: parsed.body });
      return this.#tracked(entry, response, requestIds(parsed.body));
    }
    if (req.method !== "POST") {
      return Response.json(rpcError(-32000, "Bad Request: Mcp-Session-Id header is required"), {
        status: 400,
      });
    }
    if (!this.#accepting) {
      return Response.json(rpcError(-32000, "toolgate is shutting down"), { status: 503 });
    }
    if (this.sessionCount >= this.#deps.options.maxSessions) {
      return Response.json(
        rpcError(-32000, `too many sessions (limit ${this.#deps.options.maxSessions}); retry later`),
        {
          status: 503,
          headers: { "retry-after": "5" },
        },
      );
    }
    const parsed = await parseMessages(req);
    if (parsed instanceof Response) return parsed;
    return this.#initialize(req, parsed.body, verdict.principal);
  }

  async #initialize(req: Request, body: unknown, principal: Principal): Promise<Response> {
    const session = this.#deps.newSession({ transport: "http", principal });
    const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id) => {
        this.#sessions.set(id, { session, transport, principal, lastSeen: performance.now(), streams: 0 });
        this.#deps.onSessionOpened?.(session);
      },
      onsessionclosed: (id) => this.#forget(id),
    });
    transport.onclose = () => {
      if (transport.sessionId) this.#forget(transport.sessionId);
    };
    await session.connect(transport);
    const response = await transport.handleRequest(req, { parsedBody: body });
    // Not a valid initialize: the transport answered with an error and no session exists; drop the pair.
    if (!transport.sessionId) await session.close();
    return response;
  }

  /**
   * Follows an SSE response until it ends. A stream the client dropped can never be resumed (there is no
   * event store), so the requests it carried are cancelled as if the client had sent notifications/cancelled:
   * their upstream calls stop and their slots are freed.
   */
  #tracked(entry: HttpSession, response: Response, ids: Array<string | number>): Response {
    const body = response.body;
    if (!body || !response.headers.get("content-type")?.startsWith("text/event-stream")) return response;
    const reader = body.getReader();
    const answering = ids.length > 0;
    entry.streams++;
    if (answering) this.#answering++;
    let open = true;
    const end = () => {
      if (!open) return;
      open = false;
      entry.streams--;
      entry.lastSeen = performance.now();
      if (answering && --this.#answering === 0) this.#answered?.();
    };
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const chunk = await reader.read();
        if (!chunk.done) return controller.enqueue(chunk.value);
        end();
        controller.close();
      },
      cancel: (reason) => {
        end();
        for (const requestId of ids) {
          entry.transport.onmessage?.({
            jsonrpc: "2.0",
            method: "notifications/cancelled",
            params: { requestId, reason: "the client disconnected" },
          });
        }
        return reader.cancel(reason);
      },
    });
    return new Response(stream, { status: response.status, headers: response.headers });
  }

  #forget(id: string): void {
    const entry = this.#sessions.get(id);
    if (!entry) return;
    this.#sessions.delete(id);
    this.#deps.onSessionClosed?.(entry.session);
    entry.session.close().catch(() => {});
  }

  /** Listen on host:port (port 0: any free port); resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    const server = createAdaptorServer({ fetch: this.app.fetch, hostname: host });
    this.#server = server;
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
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  async #upgrade(req: IncomingMessage, socket: import("node:net").Socket, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const reject = (status: number, message: string, headers: Record<string, string> = {}) => {
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
    const verdict = await this.#deps.guard(headers, { loopback: isLoopback(req.socket.remoteAddress) });
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
      this.#sockets.add(session);
      this.#deps.onSessionOpened?.(session);
      transport.onclose = () => {
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
    const sessions = [...this.#sessions.values()].map((e) => e.session).concat([...this.#sockets]);
    await Promise.allSettled(sessions.map((s) => s.close()));
    this.#sessions.clear();
    this.#sockets.clear();
    this.#wss?.close();
    const server = this.#server;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as import("node:http").Server).closeAllConnections?.();
      });
    }
  }
}

/**
 * The body of a POST, parsed here because the SDK answers well-formed JSON that is not JSON-RPC with -32700
 * (Parse error) where JSON-RPC says -32600 (Invalid Request), and accepts an empty batch silently.
 */
async function parseMessages(req: Request): Promise<{ body: unknown } | Response> {
  let body: unknown;
  try {
    body = JSON.parse(await req.text());
  } catch {
    return Response.json(rpcError(-32700, "Parse error: the body is not valid JSON"), { status: 400 });
  }
  const messages = Array.isArray(body) ? body : [body];
  if (messages.length === 0 || messages.some((m) => !JSONRPCMessageSchema.safeParse(m).success)) {
    return Response.json(
      rpcError(
        -32600,
        "Invalid Request: the body must be a JSON-RPC 2.0 message or a non-empty batch of them",
      ),
      { status: 400 },
    );
  }
  return { body };
}

/** Ids of the requests in a POST body (one message or a batch). */
function requestIds(body: unknown): Array<string | number> {
  const messages = Array.isArray(body) ? body : [body];
  return messages.flatMap((m) => {
    const { id, method } = m as { id?: unknown; method?: unknown };
    return typeof method === "string" && (typeof id === "string" || typeof id === "number") ? [id] : [];
  });
}

function rpcError(code: number, message: string) {
  return { jsonrpc: "2.0", id: null, error: { code, message } };
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}
