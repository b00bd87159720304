/**
 * MCP over Streamable HTTP, server side: one session's wire, on node:http directly (no Web Request, Response
 * or ReadableStream per call). server/http.ts owns the sessions (ids, 404/400, body parsing and limits) and
 * hands each request of a session here.
 *
 * A POST that carries requests is answered with `application/json` when its responses are the first messages
 * for it (the usual tools/call: one write, no SSE framing), and turns into a `text/event-stream` only when a
 * notification or a server→client request related to it must go out first (progress, logs, sampling), or when
 * it has waited a whole keep-alive period. The spec lets the server choose per request; clients must accept
 * both. With an event store, SSE events carry ids (`<streamId>_<seq>`) and are recorded: a client whose
 * stream was cut reconnects with GET + `Last-Event-ID`, gets what it missed, and the rest of the answers follow
 * on that GET. A client that drops a POST before all its answers, and does not resume it within the grace
 * time (at once when nothing on it could be resumed), is sent `notifications/cancelled` for them on its
 * behalf, so its upstream calls stop.
 */
import { randomBytes } from "node:crypto";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  isInitializeRequest,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type MessageExtraInfo,
  type RequestId,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/sdk/types.js";
import { ErrorCode, GatewayError, toWire } from "../errors.ts";
import { InFlightSet, InFlightTable } from "../in-flight.ts";
import { type EventStore, streamOf } from "../stores/event-store.ts";
import type { HttpRequestLike, HttpResponseLike } from "./http1-server.ts";
import { cutReason, fellBehind } from "./slow-reader.ts";

/** A comment frame this often keeps proxies and idle timers from cutting a quiet stream. */
const KEEP_ALIVE_MS = 15_000;
/** Same bound as the SDK's transport. */
const MAX_BATCH = 100;

/** How long a cut, resumable POST stream waits for the client to come back before its calls are cancelled. */
const RESUME_GRACE_MS = 30_000;

/** One open response: a POST waiting for its answers, or the session's GET stream (no requests). */
interface Exchange {
  readonly owner: StreamableHttpServerTransport;
  /** The response carrying it; a resumed stream moves to the GET that resumed it. */
  res: HttpResponseLike;
  /** Ids of the POST's requests not answered yet (a batch may repeat one). */
  readonly pending: RequestId[];
  /** Responses held back while the answer can still be plain JSON. */
  readonly responses: JSONRPCMessage[];
  readonly batch: boolean;
  sse: boolean;
  /** Keep-alive ticks seen while still JSON: the second one turns the answer into a stream. */
  ticks: number;
  /** With an event store: the stream's id and the last event number written. */
  streamId?: string;
  seq: number;
  /** Cut and waiting to be resumed; fires the cancellation when nobody comes back. */
  grace?: NodeJS.Timeout | undefined;
}

export class StreamableHttpServerTransport implements Transport {
  readonly sessionId: string;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined;
  /** A request refused here, before the session saw it (for its log and metrics). */
  onrefused?: ((request: JSONRPCRequest, error: GatewayError) => void) | undefined;

  /** Every open exchange of every session, visited by one shared ticker instead of a timer per response. */
  static readonly #live = new InFlightSet<Exchange>();
  static #ticker: NodeJS.Timeout | undefined;

  /** Which exchange answers a request id (by idKey: a number and the same digits as a string are two ids). */
  readonly #exchanges = new InFlightTable<Exchange>();
  #standalone: Exchange | undefined;
  /** Replayed `initialize` requests (replayInitialize) whose answers nobody waits for. */
  readonly #replayed = new Map<RequestId, () => void>();
  #initialized = false;
  #closed = false;
  readonly #store: EventStore | undefined;
  /** Streams by id, while they may still get events (for resumption). */
  readonly #streams = new Map<string, Exchange>();
  #streamCount = 0;
  /**
   * Makes this transport's stream ids unique: a session rebuilt on another replica (or after a restart)
   * counts its streams from 1 again, and a shared event store must not mix them with the first ones.
   */
  readonly #streamTag = randomBytes(4).toString("hex");

  constructor(sessionId: string, store?: EventStore) {
    this.sessionId = sessionId;
    this.#store = store;
  }

  async start(): Promise<void> {}

  /**
   * A POST's messages, already parsed and validated. Returns false when the POST was refused (the error reply
   * is written), e.g. a second `initialize`.
   */
  handlePost(
    req: HttpRequestLike,
    res: HttpResponseLike,
    messages: JSONRPCMessage[],
    batch: boolean,
  ): boolean {
    if (this.#closed) return refuse(res, 404, -32001, "Session not found");
    const accept = req.headers.accept;
    if (!accept?.includes("application/json") || !accept.includes("text/event-stream")) {
      return refuse(
        res,
        406,
        -32000,
        "Not Acceptable: Client must accept both application/json and text/event-stream",
      );
    }
    if (messages.length > MAX_BATCH) {
      return refuse(res, 400, -32600, `Invalid Request: Batch must not exceed ${MAX_BATCH} messages`);
    }
    if (messages.some(isInitialize)) {
      if (this.#initialized) return refuse(res, 400, -32600, "Invalid Request: Server already initialized");
      if (messages.length > 1) {
        return refuse(res, 400, -32600, "Invalid Request: Only one initialization request is allowed");
      }
      this.#initialized = true;
    } else if (!this.#initialized) {
      return refuse(res, 400, -32000, "Bad Request: Server not initialized");
    } else if (!checkProtocolVersion(req, res)) {
      return false;
    }
    const extra: MessageExtraInfo = { requestInfo: { headers: req.headers } };
    const pending: RequestId[] = [];
    for (const message of messages) if (isRequest(message)) pending.push(message.id);
    // Answers find their POST by request id: a second request under an id still in flight would take the
    // first one's answer and leave the first waiting forever. JSON-RPC ids are unique within a session.
    const taken = pending.find((id) => this.#exchanges.has(idKey(id)));
    if (taken !== undefined) return this.#refuseTaken(res, messages, taken);
    if (pending.length === 0) {
      // Only notifications and responses: accepted, nothing to answer.
      res.writeHead(202, { "content-length": 0 }).end();
      for (const message of messages) this.onmessage?.(message, extra);
      return true;
    }
    const exchange = this.#track(res, pending, batch);
    for (const id of pending) this.#exchanges.set(idKey(id), exchange);
    // `on`, not `once`: a response closes once, and `once` wraps every listener.
    res.on("close", () => this.#dropped(exchange));
    for (const message of messages) this.onmessage?.(message, extra);
    return true;
  }

  /** GET: the session's standalone stream for messages unrelated to a request (list changes, updates). */
  handleGet(req: HttpRequestLike, res: HttpResponseLike): void {
    if (this.#closed) return void refuse(res, 404, -32001, "Session not found");
    if (!req.headers.accept?.includes("text/event-stream")) {
      return void refuse(res, 406, -32000, "Not Acceptable: Client must accept text/event-stream");
    }
    if (!checkProtocolVersion(req, res)) return;
    const lastEventId = req.headers["last-event-id"];
    if (typeof lastEventId === "string" && this.#store) {
      void this.#resume(res, lastEventId).catch(() => {
        if (!res.headersSent) refuse(res, 500, -32603, "could not read the event store");
        else res.end();
      });
      return;
    }
    if (this.#standalone) {
      return void refuse(res, 409, -32000, "Conflict: Only one SSE stream is allowed per session");
    }
    // A fresh GET stream replaces earlier ones: they cannot be resumed any more.
    for (const [id, old] of this.#streams) if (old.pending.length === 0) this.#streams.delete(id);
    const exchange = this.#track(res, [], false);
    this.#standalone = exchange;
    this.#startStream(exchange);
    res.flushHeaders();
    res.once("close", () => {
      StreamableHttpServerTransport.#live.delete(exchange);
      if (this.#standalone === exchange) this.#standalone = undefined;
    });
  }

  /** DELETE: the client ends the session. */
  handleDelete(req: HttpRequestLike, res: HttpResponseLike): void {
    if (this.#closed) return void refuse(res, 404, -32001, "Session not found");
    if (!checkProtocolVersion(req, res)) return;
    res.writeHead(200, { "content-length": 0 }).end();
    void this.close();
  }

  /**
   * Rebuilds a session this replica did not create (server/session-seal.ts): the client's `initialize` and
   * `notifications/initialized` go to the session again with no HTTP exchange; the answer is dropped (the
   * client had it from the replica that created the session).
   */
  async replayInitialize(initialize: JSONRPCRequest): Promise<void> {
    this.#initialized = true;
    const answered = new Promise<void>((resolve) => this.#replayed.set(initialize.id, resolve));
    this.onmessage?.(initialize);
    await answered;
    this.onmessage?.({ jsonrpc: "2.0", method: "notifications/initialized" });
  }

  async send(message: JSONRPCMessage, options?: { relatedRequestId?: RequestId }): Promise<void> {
    const response = "result" in message || "error" in message;
    const id = response ? (message as { id: RequestId }).id : options?.relatedRequestId;
    if (this.#replayed.size > 0 && response) {
      const replayed = this.#replayed.get(id as RequestId);
      if (replayed) {
        this.#replayed.delete(id as RequestId);
        return replayed();
      }
    }
    if (id === undefined) {
      if (response) throw new Error("Cannot send a response on the standalone SSE stream");
      // No GET stream open: like the SDK without an event store, the message is dropped.
      if (this.#standalone) this.#write(this.#standalone, message);
      return;
    }
    const key = idKey(id);
    const exchange = this.#exchanges.get(key);
    if (!exchange) throw new Error(`No connection established for request ID: ${String(id)}`);
    if (!response) {
      this.#startStream(exchange);
      this.#write(exchange, message);
      return;
    }
    const { pending, responses, res } = exchange;
    pending.splice(pending.indexOf(id), 1);
    if (!pending.includes(id)) this.#exchanges.delete(key);
    if (exchange.sse) this.#write(exchange, message);
    else responses.push(message);
    if (pending.length > 0) return;
    StreamableHttpServerTransport.#live.delete(exchange);
    this.#finished(exchange);
    if (res.destroyed) return;
    if (exchange.sse) {
      res.end();
      return;
    }
    // With its length: headers and body leave in one write, without chunked framing (writeHead without a
    // length fixes the framing to chunked before end() sees the body).
    const body = JSON.stringify(exchange.batch ? responses : responses[0]);
    res.writeHead(200, {
      "content-type": "application/json",
      "mcp-session-id": this.sessionId,
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Like the SDK: open streams end, without answers for what is still pending (and without cancelling it).
    const open = new Set(this.#exchanges.values());
    if (this.#standalone) open.add(this.#standalone);
    this.#exchanges.clear();
    this.#standalone = undefined;
    this.#streams.clear();
    for (const exchange of open) {
      exchange.pending.length = 0;
      this.#finished(exchange);
      StreamableHttpServerTransport.#live.delete(exchange);
      this.#startStream(exchange);
      exchange.res.end();
    }
    this.onclose?.();
  }

  #refuseTaken(res: HttpResponseLike, messages: JSONRPCMessage[], id: RequestId): false {
    const error = new GatewayError(
      ErrorCode.InvalidRequest,
      `request id ${JSON.stringify(id)} is already in use by a request in flight on this session; send each request with an id of its own (JSON-RPC ids are unique within a session)`,
    );
    const request = messages.find((m): m is JSONRPCRequest => isRequest(m) && m.id === id);
    if (request) this.onrefused?.(request, error);
    const wire = toWire(error);
    return refuse(res, 400, wire.code, wire.message, {}, id, wire.data);
  }

  #track(res: HttpResponseLike, pending: RequestId[], batch: boolean): Exchange {
    const exchange: Exchange = {
      owner: this,
      res,
      pending,
      responses: [],
      batch,
      sse: false,
      ticks: 0,
      seq: 0,
    };
    StreamableHttpServerTransport.#live.add(exchange);
    StreamableHttpServerTransport.#ticker ??= setInterval(
      () => StreamableHttpServerTransport.#keepAlive(),
      KEEP_ALIVE_MS,
    ).unref();
    return exchange;
  }

  /** Switch an exchange to SSE (once), flushing the responses held back so far. */
  #startStream(exchange: Exchange): void {
    if (exchange.sse) return;
    exchange.sse = true;
    if (this.#store) {
      // `g` marks the session's GET stream, so a replica that resumes it without holding it knows it.
      const kind = exchange.pending.length === 0 ? "g" : "";
      exchange.streamId = `${this.sessionId}_${this.#streamTag}${kind}${++this.#streamCount}`;
      this.#streams.set(exchange.streamId, exchange);
    }
    const { res } = exchange;
    if (res.destroyed || res.headersSent) return;
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      "mcp-session-id": this.sessionId,
    });
    if (exchange.streamId !== undefined && this.#store) {
      // The priming event (2025-11-25, SEP-1699): an id and no data, so even a stream cut before its first
      // message can be resumed; clients skip events without data.
      const id = `${exchange.streamId}_0`;
      void Promise.resolve(this.#store.append(exchange.streamId, id, "")).catch(() => {});
      res.write(`id: ${id}\ndata: \n\n`);
    }
    for (const held of exchange.responses) this.#write(exchange, held);
    exchange.responses.length = 0;
  }

  /**
   * One SSE event; with an event store it gets an id and is recorded before it is written. A notification to
   * a client that stopped reading cuts the stream instead (slow-reader.ts).
   */
  #write(exchange: Exchange, message: JSONRPCMessage): void {
    const { res, streamId } = exchange;
    const open = !res.destroyed && !res.writableEnded;
    if (open && !("result" in message || "error" in message) && fellBehind(res))
      return void this.#cut(exchange);
    if (!this.#store || streamId === undefined) {
      if (open) res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
      return;
    }
    // Recorded even when the stream is gone: the client resumes it with Last-Event-ID.
    const id = `${streamId}_${++exchange.seq}`;
    const data = JSON.stringify(message);
    void Promise.resolve(this.#store.append(streamId, id, data)).catch(() => {});
    if (open) res.write(`id: ${id}\nevent: message\ndata: ${data}\n\n`);
  }

  /** Cuts the stream of a client that stopped reading; its 'close' cancels what it was waiting for. */
  #cut(exchange: Exchange): void {
    exchange.res.destroy();
    const stream = exchange === this.#standalone ? "GET stream" : "POST response stream";
    this.onerror?.(new Error(cutReason(stream)));
  }

  /** The exchange is answered (or the session ended): nothing left to resume. */
  #finished(exchange: Exchange): void {
    clearTimeout(exchange.grace);
    if (exchange.streamId !== undefined) this.#streams.delete(exchange.streamId);
  }

  /**
   * GET with `Last-Event-ID`: replay what the stream missed, then, if it still has answers due, carry them on
   * this response. A stream of another session, or one the store no longer holds, cannot be resumed (404).
   */
  async #resume(res: HttpResponseLike, lastEventId: string): Promise<void> {
    const streamId = streamOf(lastEventId);
    const events = streamId.startsWith(`${this.sessionId}_`)
      ? await this.#store?.after(streamId, lastEventId)
      : undefined;
    if (!events) {
      return void refuse(res, 404, -32000, `cannot resume after event ${lastEventId}: it is no longer held`);
    }
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      "mcp-session-id": this.sessionId,
    });
    for (const event of events) {
      if (event.data === "") continue;
      res.write(`id: ${event.id}\nevent: message\ndata: ${event.data}\n\n`);
    }
    const exchange = this.#streams.get(streamId);
    if (!exchange) {
      // A stream held by another replica (or before a restart). A POST stream's answers land in the shared
      // store over there: ending brings the client back for them. The session's GET stream goes on here.
      if (!/^[0-9a-f]{8}g\d+$/.test(streamId.slice(this.sessionId.length + 1)) || this.#standalone) {
        return void res.end();
      }
      const adopted = this.#track(res, [], false);
      this.#standalone = adopted;
      this.#startStream(adopted);
      res.flushHeaders();
      res.once("close", () => {
        StreamableHttpServerTransport.#live.delete(adopted);
        if (this.#standalone === adopted) this.#standalone = undefined;
      });
      return;
    }
    if (exchange.pending.length === 0) {
      // The session's GET stream: it carries on as the standalone stream, unless another one took over.
      if (this.#standalone) return void res.end();
      this.#standalone = exchange;
      exchange.res = res;
      StreamableHttpServerTransport.#live.add(exchange);
      res.once("close", () => {
        StreamableHttpServerTransport.#live.delete(exchange);
        if (this.#standalone === exchange) this.#standalone = undefined;
      });
      return;
    }
    clearTimeout(exchange.grace);
    exchange.grace = undefined;
    exchange.res = res;
    StreamableHttpServerTransport.#live.add(exchange);
    res.once("close", () => this.#dropped(exchange));
  }

  /** The POST's response closed: if answers were still due, the client gave up on them, or will resume. */
  #dropped(exchange: Exchange): void {
    StreamableHttpServerTransport.#live.delete(exchange);
    if (exchange.pending.length === 0) return;
    if (exchange.streamId !== undefined && !this.#closed) {
      // The client holds an event id of this stream: give it time to come back with Last-Event-ID.
      exchange.grace = setTimeout(() => this.#cancel(exchange), RESUME_GRACE_MS).unref();
      return;
    }
    this.#cancel(exchange);
  }

  #cancel(exchange: Exchange): void {
    this.#finished(exchange);
    const ids = new Set(exchange.pending);
    exchange.pending.length = 0;
    for (const id of ids) {
      const key = idKey(id);
      if (this.#exchanges.get(key) === exchange) this.#exchanges.delete(key);
      this.onmessage?.({
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId: id, reason: "the client disconnected" },
      });
    }
  }

  static #keepAlive(): void {
    for (const exchange of StreamableHttpServerTransport.#live) {
      if (!exchange.sse && ++exchange.ticks < 2) continue;
      exchange.owner.#startStream(exchange);
      const { res } = exchange;
      if (res.destroyed || res.writableEnded) continue;
      if (fellBehind(res)) exchange.owner.#cut(exchange);
      else res.write(": keepalive\n\n");
    }
  }
}

/**
 * Type guards for messages already validated against JSONRPCMessageSchema: the SDK's own guards run zod
 * again, which the hot path does not need (a full parse only for what claims to be `initialize`).
 */
export function isRequest(message: JSONRPCMessage): message is JSONRPCRequest {
  return "method" in message && "id" in message;
}

export function isInitialize(message: JSONRPCMessage): boolean {
  return "method" in message && message.method === "initialize" && isInitializeRequest(message);
}

/** A JSON-RPC error reply (no id unless given); returns false for `return refuse(...)` in handlePost. */
export function refuse(
  res: HttpResponseLike,
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
  id: RequestId | null = null,
  data?: unknown,
): false {
  const error = data === undefined ? { code, message } : { code, message, data };
  const body = JSON.stringify({ jsonrpc: "2.0", id, error });
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
  return false;
}

/** After initialize, an MCP-Protocol-Version header, when sent, must be one this server speaks. */
function checkProtocolVersion(req: HttpRequestLike, res: HttpResponseLike): boolean {
  const version = req.headers["mcp-protocol-version"];
  if (version === undefined || SUPPORTED_PROTOCOL_VERSIONS.includes(version as string)) return true;
  return refuse(
    res,
    400,
    -32000,
    `Bad Request: Unsupported protocol version: ${version} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")})`,
  );
}

/** A request id as a dictionary key: string ids are marked, so that 1 and "1" stay two requests. */
function idKey(id: RequestId): string | number {
  return typeof id === "number" ? id : `s${id}`;
}
