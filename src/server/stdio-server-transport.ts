/**
 * MCP over stdio, server side (`toolgate serve --stdio`): one JSON-RPC message per line on stdin and stdout.
 * Where the SDK's StdioServerTransport drops a bad line (it only reports it to `onerror`), this one answers
 * it as the WebSocket face answers a bad frame: -32700 for a line that is not JSON, -32600 for one that is not
 * a JSON-RPC 2.0 message or is longer than `gateway.maxBodyBytes`, with the request's id when it has one. The
 * session stays up.
 */
import type { Readable, Writable } from "node:stream";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { ErrorCode, GatewayError, RpcCode } from "../errors.ts";
import { idAtEdges, LineReader } from "../protocol/lines.ts";
import { parseMessage, Refusal } from "./jsonrpc-message.ts";
import { dropReason, fellBehind } from "./slow-reader.ts";

export class StdioServerTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: ((message: JSONRPCMessage) => void) | undefined;

  readonly #input: Readable;
  readonly #output: Writable;
  readonly #lines: LineReader;
  #started = false;
  /** Notifications are being dropped for a client that does not read (see send). */
  #behind = false;

  constructor(input: Readable, output: Writable, maxLineBytes: number) {
    this.#input = input;
    this.#output = output;
    this.#lines = new LineReader(maxLineBytes, this.#receive, (edges) =>
      this.#reject(
        RpcCode.InvalidRequest,
        `a line is longer than ${maxLineBytes} bytes (gateway.maxBodyBytes): it was dropped`,
        idAtEdges(edges),
      ),
    );
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error("StdioServerTransport already started");
    this.#started = true;
    this.#input.on("data", this.#onData);
    this.#input.on("error", this.#onError);
  }

  /**
   * A client that stops reading stdout cannot be cut off without ending the session: while more than
   * MAX_UNSENT_BYTES wait for it, notifications are dropped (said once per such stretch); responses still go.
   */
  send(message: JSONRPCMessage): Promise<void> {
    if (!("result" in message || "error" in message) && fellBehind(this.#output)) {
      if (!this.#behind) {
        this.#behind = true;
        this.onerror?.(new Error(dropReason()));
      }
      return Promise.resolve();
    }
    this.#behind = false;
    return new Promise((resolve) => {
      if (this.#output.write(`${JSON.stringify(message)}\n`)) resolve();
      else this.#output.once("drain", resolve);
    });
  }

  async close(): Promise<void> {
    this.#input.off("data", this.#onData);
    this.#input.off("error", this.#onError);
    // Paused only when no one else reads it.
    if (this.#input.listenerCount("data") === 0) this.#input.pause();
    this.#lines.clear();
    this.onclose?.();
  }

  readonly #onData = (chunk: Buffer): void => this.#lines.push(chunk);

  readonly #onError = (error: Error): void => this.onerror?.(error);

  readonly #receive = (line: string): void => {
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    if (text.trim() === "") return;
    const parsed = parseMessage(text, "line");
    if (parsed instanceof Refusal) this.#reject(parsed.rpcCode, parsed.message, parsed.id);
    else this.onmessage?.(parsed);
  };

  /** MCP's schema has no `id: null`: an error about an unidentifiable message carries no id. */
  #reject(rpcCode: number, message: string, id?: string | number): void {
    this.onerror?.(new GatewayError(ErrorCode.InvalidRequest, `stdio: ${message}`, { rpcCode }));
    const reply = { jsonrpc: "2.0", ...(id === undefined ? {} : { id }), error: { code: rpcCode, message } };
    this.#output.write(`${JSON.stringify(reply)}\n`);
  }
}
