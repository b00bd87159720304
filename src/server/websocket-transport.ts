/**
 * MCP over WebSocket, server side: one accepted `ws` socket carries JSON-RPC messages as text frames,
 * one message per frame. The SDK ships only the client half (`client/websocket.js`, subprotocol `mcp`).
 */
import { randomUUID } from "node:crypto";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage, MessageExtraInfo, RequestInfo } from "@modelcontextprotocol/sdk/types.js";
import { type RawData, WebSocket } from "ws";
import { ErrorCode, GatewayError, RpcCode } from "../errors.ts";
import { parseMessage, Refusal } from "./jsonrpc-message.ts";
import { MAX_UNSENT_BYTES } from "./slow-reader.ts";

/** The subprotocol the SDK's `WebSocketClientTransport` requests. */
const MCP_SUBPROTOCOL = "mcp";

function acceptsMcpSubprotocol(protocols: Set<string>): boolean {
  return protocols.has(MCP_SUBPROTOCOL);
}

/**
 * For `new WebSocketServer({ handleProtocols })`: select `mcp` when offered. A client that offers only
 * other subprotocols gets none selected, which a conforming client treats as a failed handshake.
 */
export function handleProtocols(protocols: Set<string>): string | false {
  return acceptsMcpSubprotocol(protocols) ? MCP_SUBPROTOCOL : false;
}

export interface WebSocketServerTransportOptions {
  /** Defaults to a random UUID. */
  sessionId?: string;
  /** The upgrade request, handed to every message as `extra.requestInfo` (headers for auth, tracing). */
  requestInfo?: RequestInfo;
  /** The authenticated caller, handed to every message as `extra.authInfo`. */
  authInfo?: AuthInfo;
  /** Ping period to detect dead peers: a peer that misses one pong is terminated. 0 disables. */
  pingIntervalMs?: number;
  /** A peer that lets this many bytes pile up unsent is too slow: its socket is terminated. */
  maxBufferedBytes?: number;
}

const DEFAULT_PING_INTERVAL_MS = 30_000;
/** RFC 6455 close codes. */
const CLOSE_NORMAL = 1000;
/** The peer's credentials no longer admit it: it may reconnect with new ones. */
export const CLOSE_POLICY_VIOLATION = 1008;
const CLOSE_TRY_AGAIN_LATER = 1013;

export class WebSocketServerTransport implements Transport {
  readonly sessionId: string;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined;

  readonly #socket: WebSocket;
  readonly #extra: MessageExtraInfo | undefined;
  readonly #pingIntervalMs: number;
  readonly #maxBufferedBytes: number;
  #started = false;
  #closed = false;
  #pingTimer: NodeJS.Timeout | undefined;
  #awaitingPong = false;

  constructor(socket: WebSocket, options: WebSocketServerTransportOptions = {}) {
    this.#socket = socket;
    this.sessionId = options.sessionId ?? randomUUID();
    this.#pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? MAX_UNSENT_BYTES;
    const extra: MessageExtraInfo = {};
    if (options.requestInfo) extra.requestInfo = options.requestInfo;
    if (options.authInfo) extra.authInfo = options.authInfo;
    this.#extra = extra.requestInfo || extra.authInfo ? extra : undefined;
  }

  async start(): Promise<void> {
    if (this.#started) {
      throw new GatewayError(ErrorCode.Internal, "WebSocketServerTransport already started", {
        data: { sessionId: this.sessionId },
      });
    }
    this.#started = true;
    const socket = this.#socket;
    socket.on("message", (data, isBinary) => this.#receive(data, isBinary));
    socket.on("error", (err) =>
      this.onerror?.(this.#connectionError(`WebSocket error: ${err.message}`, err)),
    );
    socket.on("pong", () => {
      this.#awaitingPong = false;
    });
    socket.once("close", () => this.#finish());
    if (socket.readyState !== WebSocket.OPEN) {
      // Accepted and lost before we got here: report it the same way as a later close.
      this.#finish();
      return;
    }
    if (this.#pingIntervalMs > 0) {
      this.#pingTimer = setInterval(() => this.#heartbeat(), this.#pingIntervalMs);
      this.#pingTimer.unref();
    }
  }

  send(message: JSONRPCMessage): Promise<void> {
    const socket = this.#socket;
    if (this.#closed || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(this.#connectionError("cannot send: the WebSocket is closed"));
    }
    if (socket.bufferedAmount > this.#maxBufferedBytes) {
      const error = this.#connectionError(
        `the WebSocket peer is not reading (over ${this.#maxBufferedBytes} bytes unsent): closing it`,
      );
      socket.close(CLOSE_TRY_AGAIN_LATER, "too slow");
      socket.terminate();
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      socket.send(JSON.stringify(message), (err) => {
        if (err) reject(this.#connectionError(`WebSocket send failed: ${err.message}`, err));
        else resolve();
      });
    });
  }

  /**
   * Resolves once the socket is closed; `ws` bounds the closing handshake (30 s, then it terminates). `code`
   * and `reason` (at most 123 bytes) tell the peer why.
   */
  async close(code = CLOSE_NORMAL, reason?: string): Promise<void> {
    const socket = this.#socket;
    if (this.#closed || socket.readyState === WebSocket.CLOSED) {
      this.#finish();
      return;
    }
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.close(code, reason);
    await closed;
    this.#finish();
  }

  #receive(data: RawData, isBinary: boolean): void {
    if (isBinary) {
      this.#reject(RpcCode.InvalidRequest, "binary frames are not MCP: send JSON-RPC as text frames");
      return;
    }
    const parsed = parseMessage(textOf(data), "frame");
    if (parsed instanceof Refusal) this.#reject(parsed.rpcCode, parsed.message, parsed.id);
    else this.onmessage?.(parsed, this.#extra);
  }

  /**
   * A bad frame is reported to `onerror` and answered with a JSON-RPC error; the session stays up.
   * MCP's schema has no `id: null`: an error about an unidentifiable message carries no id.
   */
  #reject(rpcCode: number, message: string, id?: string | number): void {
    this.onerror?.(
      new GatewayError(ErrorCode.InvalidRequest, `WebSocket session ${this.sessionId}: ${message}`, {
        rpcCode,
      }),
    );
    if (this.#socket.readyState !== WebSocket.OPEN) return;
    const reply = { jsonrpc: "2.0", ...(id === undefined ? {} : { id }), error: { code: rpcCode, message } };
    this.#socket.send(JSON.stringify(reply), () => {});
  }

  #heartbeat(): void {
    if (this.#awaitingPong) {
      this.onerror?.(this.#connectionError(`no pong within ${this.#pingIntervalMs} ms: terminating`));
      this.#socket.terminate();
      return;
    }
    this.#awaitingPong = true;
    this.#socket.ping();
  }

  #connectionError(message: string, cause?: unknown): GatewayError {
    return new GatewayError(ErrorCode.ConnectionLost, `WebSocket session ${this.sessionId}: ${message}`, {
      cause,
    });
  }

  /** Runs once, whichever side closed first. */
  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pingTimer);
    this.onclose?.();
  }
}

function textOf(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.isBuffer(data) ? data.toString("utf8") : Buffer.from(data).toString("utf8");
}
