/**
 * JSON-RPC over any SDK-shaped `Transport` (toolgate's stdio, HTTP, SSE and WebSocket transports): the
 * request/response bookkeeping of a 2025-11-25 client connection and nothing else. It replaces the v1 SDK's
 * Protocol/Client on the call path, which validated every message and result with zod, kept three maps and
 * a timer record per request and ran each notification a microtask late. Here messages are handled
 * synchronously in arrival order (a progress update read with its response reaches `onprogress` first), a
 * result is handed on as it arrived, and failures are the SDK's own error classes (request-error.ts
 * classifies them): `McpError` for an error answer, a timeout (-32001) and a closed connection (-32000),
 * `Error("Not connected")` before start or after close, the transport's own error when a send fails.
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { ErrorCode, type JSONRPCMessage, McpError } from "@modelcontextprotocol/sdk/types.js";
import { InFlightTable } from "../in-flight.ts";
import { MalformedAnswerError, type OnMalformed } from "./message-shape.ts";
import { sendFailure } from "./transports.ts";

type Params = Record<string, unknown>;
type RequestId = string | number;

export interface Progress {
  progress: number;
  total?: number;
  message?: string;
}

export interface RequestOptions {
  signal?: AbortSignal | undefined;
  /** Asks the peer for progress (`_meta.progressToken`); updates arrive here until the answer. */
  onprogress?: ((progress: Progress) => void) | undefined;
  /**
   * Milliseconds until the request fails with RequestTimeout; progress does not extend it (as the SDK).
   * NO_TIMEOUT (2^31-1, setTimeout's largest delay, ~24.8 days) or more arms no timer: the caller's own
   * limit (the gateway's timeout policy, which aborts `signal`) bounds the call.
   */
  timeout: number;
}

export interface ConnectionHandlers {
  /** A request from the peer. Its result is the answer; a thrown error's code, message and data are. */
  onRequest(method: string, params: Params | undefined, signal: AbortSignal): Promise<Params>;
  /** A notification other than progress and cancellation (which the connection handles itself). */
  onNotification(method: string, params: Params | undefined): void;
  /** The transport closed; every pending request has failed with ConnectionClosed right after this. */
  onClose(): void;
  onError(error: Error): void;
}

/** The largest delay setTimeout accepts: a request with this timeout (or more) arms no timer. */
export const NO_TIMEOUT = 2 ** 31 - 1;

/** One request in flight. */
interface Call {
  resolve(result: Params): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Whether giving up tells the peer: clients must not cancel `initialize` (MCP lifecycle). */
  cancellable: boolean;
}

export class JsonRpcConnection {
  readonly #transport: Transport;
  readonly #handlers: ConnectionHandlers;
  #open = false;
  /** Why the connection was dropped, when its owner said (close(reason)). */
  #closeReason: string | undefined;
  #nextId = 0;
  readonly #calls = new InFlightTable<Call>();
  /** By progress token (the request's id). A task's creation keeps its token until the connection ends. */
  readonly #progress = new InFlightTable<(progress: Progress) => void>();
  /** The peer's requests being answered, to stop on its `notifications/cancelled`. */
  readonly #serving = new Map<RequestId, AbortController>();

  constructor(transport: Transport, handlers: ConnectionHandlers) {
    this.#transport = transport;
    this.#handlers = handlers;
  }

  async start(): Promise<void> {
    const transport = this.#transport;
    transport.onmessage = (message) => this.#receive(message);
    transport.onclose = () => this.#closed();
    transport.onerror = (error) => this.#handlers.onError(error);
    (transport as { onmalformed?: OnMalformed }).onmalformed = (id, problem) =>
      this.#take(Number(id))?.reject(new MalformedAnswerError(problem));
    this.#open = true;
    await transport.start();
  }

  request(method: string, params: Params | undefined, options: RequestOptions): Promise<Params> {
    if (!this.#open) return Promise.reject(new Error("Not connected"));
    const { signal, onprogress } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#nextId++;
    let sent = params;
    if (onprogress) {
      this.#progress.set(id, onprogress);
      sent = { ...params, _meta: { ...(params?._meta as Params | undefined), progressToken: id } };
    }
    const message = (
      sent ? { jsonrpc: "2.0", id, method, params: sent } : { jsonrpc: "2.0", id, method }
    ) as JSONRPCMessage;
    return new Promise<Params>((resolve, reject) => {
      // Made with the call object, not stored into it afterwards: that kept part of every call alive into the
      // old generation (see policies/timeout.ts).
      const onAbort = signal && (() => this.#cancel(id, signal.reason));
      const call: Call = {
        resolve,
        reject,
        timer:
          options.timeout < NO_TIMEOUT
            ? setTimeout(
                () =>
                  this.#cancel(
                    id,
                    McpError.fromError(ErrorCode.RequestTimeout, "Request timed out", {
                      timeout: options.timeout,
                    }),
                  ),
                options.timeout,
              )
            : undefined,
        signal,
        onAbort,
        cancellable: method !== "initialize",
      };
      if (onAbort) signal?.addEventListener("abort", onAbort); // #take removes it
      this.#calls.set(id, call);
      this.#transport.send(message).then(undefined, (err: unknown) => {
        if (this.#take(id) === call) reject(sendFailure(err, message));
      });
    });
  }

  notify(method: string, params?: Params): Promise<void> {
    if (!this.#open) return Promise.reject(new Error("Not connected"));
    const message = (
      params ? { jsonrpc: "2.0", method, params } : { jsonrpc: "2.0", method }
    ) as JSONRPCMessage;
    return this.#transport.send(message).catch((err: unknown) => {
      throw sendFailure(err, message);
    });
  }

  /** Requests sent and not yet answered. */
  pending(): number {
    return this.#calls.size;
  }

  /**
   * Calls in flight fail with ConnectionClosed, saying `reason` when the owner drops an open connection for
   * one (a broken event stream, a failed health check); a close that follows the transport's own is bare.
   */
  close(reason?: string): Promise<void> {
    if (this.#open) this.#closeReason ??= reason;
    return this.#transport.close();
  }

  /** The call `id`, no longer pending: its timer, abort listener and progress route are gone. */
  #take(id: number): Call | undefined {
    const call = this.#calls.get(id);
    if (!call) return undefined;
    this.#calls.delete(id);
    this.#progress.delete(id);
    if (call.timer !== undefined) clearTimeout(call.timer);
    if (call.onAbort) call.signal?.removeEventListener("abort", call.onAbort);
    return call;
  }

  /** Timed out or aborted: tell the peer, fail the call (an abort reason that is no McpError is wrapped). */
  #cancel(id: number, reason: unknown): void {
    const call = this.#take(id);
    if (!call) return;
    if (call.cancellable)
      this.#transport
        .send({
          jsonrpc: "2.0",
          method: "notifications/cancelled",
          params: { requestId: id, reason: String(reason) },
        })
        .catch(() => {});
    call.reject(reason instanceof McpError ? reason : new McpError(ErrorCode.RequestTimeout, String(reason)));
  }

  #receive(message: JSONRPCMessage): void {
    const m = message as { id?: RequestId; method?: string; params?: Params; result?: Params };
    if (m.method === undefined) {
      // An error without an id (null: the peer could not parse what it got) answers no request of ours.
      if (m.id !== undefined && m.id !== null) this.#answer(m.id, message);
    } else if (m.id !== undefined) {
      this.#serve(m.id, m.method, m.params);
    } else {
      this.#notification(m.method, m.params);
    }
  }

  #answer(rawId: RequestId, message: JSONRPCMessage): void {
    const id = typeof rawId === "number" ? rawId : Number(rawId);
    const progress = this.#progress.get(id);
    const call = this.#take(id);
    if (!call) return;
    if ("result" in message) {
      const result = message.result as Params;
      // A task's creation: its progress keeps coming under the request's token after this answer.
      if (progress && typeof (result.task as { taskId?: unknown } | undefined)?.taskId === "string")
        this.#progress.set(id, progress);
      call.resolve(result);
    } else if ("error" in message) {
      const { code, message: text, data } = message.error;
      call.reject(McpError.fromError(code, text, data));
    }
  }

  #notification(method: string, params: Params | undefined): void {
    try {
      if (method === "notifications/progress") {
        const { progressToken, ...progress } = params ?? {};
        this.#progress.get(Number(progressToken))?.(progress as unknown as Progress);
      } else if (method === "notifications/cancelled") {
        const requestId = params?.requestId as RequestId | undefined;
        if (requestId !== undefined) this.#serving.get(requestId)?.abort(params?.reason);
      } else {
        this.#handlers.onNotification(method, params);
      }
    } catch (err) {
      this.#handlers.onError(new Error(`notification handler failed: ${String(err)}`));
    }
  }

  /** Answer the peer's request (a ping at once); nothing is sent once the peer cancelled it. */
  #serve(id: RequestId, method: string, params: Params | undefined): void {
    if (method === "ping") {
      this.#transport.send({ jsonrpc: "2.0", id, result: {} }).catch(() => {});
      return;
    }
    const controller = new AbortController();
    this.#serving.set(id, controller);
    let answer: Promise<Params>;
    try {
      answer = this.#handlers.onRequest(method, params, controller.signal);
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer
      .then(
        (result) => {
          if (!controller.signal.aborted) return this.#transport.send({ jsonrpc: "2.0", id, result });
        },
        (err: { code?: unknown; message?: string; data?: unknown }) => {
          if (controller.signal.aborted) return;
          const code = Number.isSafeInteger(err?.code) ? (err.code as number) : ErrorCode.InternalError;
          const error = {
            code,
            message: err?.message ?? "Internal error",
            ...(err?.data !== undefined && { data: err.data }),
          };
          return this.#transport.send({ jsonrpc: "2.0", id, error });
        },
      )
      .catch((err: unknown) => this.#handlers.onError(new Error(`failed to send a response: ${String(err)}`)))
      .finally(() => {
        if (this.#serving.get(id) === controller) this.#serving.delete(id);
      });
  }

  #closed(): void {
    if (!this.#open) return;
    this.#open = false;
    const calls = this.#calls.keys().map((id) => this.#take(Number(id)) as Call);
    this.#progress.clear();
    for (const controller of this.#serving.values()) controller.abort();
    this.#serving.clear();
    this.#handlers.onClose();
    const reason = this.#closeReason;
    const error = McpError.fromError(
      ErrorCode.ConnectionClosed,
      `Connection closed${reason ? `: ${reason}` : ""}`,
    );
    for (const call of calls) call.reject(error);
  }
}
