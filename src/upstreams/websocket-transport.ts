/**
 * The client side of a WebSocket upstream (subprotocol `mcp`, one JSON-RPC message per text frame), on `ws`.
 * It replaces the SDK's WebSocketClientTransport for what that one cannot do: send the configured headers on
 * the upgrade request (the WHATWG WebSocket it uses has no headers), and fail a request whose answer breaks
 * the JSON-RPC envelope at once (it reported such a frame to `onerror` without its id, and the request waited
 * for its timeout). A frame is `JSON.parse`d and its envelope checked, as on stdio and Streamable HTTP.
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { type RawData, WebSocket } from "ws";
import {
  answeredId,
  describeInvalid,
  isJsonRpcMessage,
  notAResponse,
  type OnMalformed,
} from "./message-shape.ts";

const SUBPROTOCOL = "mcp";

export class WebSocketTransport implements Transport {
  onmessage?: ((message: JSONRPCMessage) => void) | undefined;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  /** Set by the 2025 connection: a request whose answer broke the envelope fails at once. */
  onmalformed?: OnMalformed | undefined;
  readonly #url: URL;
  readonly #headers: Record<string, string>;
  #socket: WebSocket | undefined;

  constructor(url: URL, headers: Record<string, string> = {}) {
    this.#url = url;
    this.#headers = headers;
  }

  start(): Promise<void> {
    if (this.#socket) return Promise.reject(new Error("WebSocketTransport already started"));
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.#url, SUBPROTOCOL, { headers: this.#headers });
      this.#socket = socket;
      let open = false;
      socket.on("open", () => {
        open = true;
        resolve();
      });
      // Before 'open', a refused upgrade (a status other than 101, a wrong subprotocol) or a refused connection.
      socket.on("error", (err) => {
        if (!open) reject(err);
        this.onerror?.(err);
      });
      socket.on("close", () => {
        this.#socket = undefined;
        this.onclose?.();
      });
      socket.on("message", (data, isBinary) => this.#deliver(data, isBinary));
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const socket = this.#socket;
    if (socket?.readyState !== WebSocket.OPEN) return Promise.reject(new Error("Not connected"));
    return new Promise((resolve, reject) =>
      socket.send(JSON.stringify(message), (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Starts the closing handshake; `onclose` follows when it ends (as the SDK's transport). */
  async close(): Promise<void> {
    this.#socket?.close();
  }

  #deliver(data: RawData, isBinary: boolean): void {
    const text = Buffer.isBuffer(data)
      ? data.toString()
      : Array.isArray(data)
        ? Buffer.concat(data).toString()
        : Buffer.from(data).toString();
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      message = undefined;
    }
    if (isJsonRpcMessage(message)) return void this.onmessage?.(message);
    const id = answeredId(message);
    if (id !== undefined && this.onmalformed)
      return void this.onmalformed(id, notAResponse(describeInvalid(message)));
    const what = isBinary ? "a binary frame" : "a frame that is not a JSON-RPC message";
    this.onerror?.(new Error(`the server sent ${what}: ${describeInvalid(message ?? text)}`));
  }
}
