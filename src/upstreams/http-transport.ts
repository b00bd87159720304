/**
 * The Streamable HTTP client transport of 2025-11-25 upstreams, on toolgate's own HTTP/1.1 client (http1.ts:
 * kept-alive net/tls sockets, a Buffer parser, one write per request; node:http's ClientRequest, Agent and
 * IncomingMessage machinery were 15-20 % of the gateway's CPU per proxied call). Every request goes through
 * it: the POSTs (whose head is built once per session and protocol version), the GET streams and the DELETE.
 * Each message is one POST whose answer (JSON, or an SSE stream read by a small incremental parser) is
 * delivered as it arrives, without Web streams, a fetch Response or a schema parse per message. Failures look
 * as fetch's did: a connection that fails before the answer rejects with `TypeError("fetch failed")` and the
 * socket error (with its `code`) as `cause`; a request sent on a kept-alive socket the server had just closed
 * is sent once more on a fresh one by the client. It follows the SDK v1
 * StreamableHTTPClientTransport (1.32) step by step and throws its error classes (StreamableHTTPError,
 * UnauthorizedError), so request-error.ts classifies failures as before. Where it differs, on purpose:
 * - A POST stream that ends without answering and cannot be resumed (no event id) answers each of its
 *   requests with a JSON-RPC error at once (the SDK would wait for them until a timeout). A resumable POST
 *   stream cut by the network is resumed like one the server ended, without an `onerror` (which the legacy
 *   client would take for a broken connection).
 * - Messages are checked by shape (JSON-RPC 2.0 request, notification or response), not by the SDK's zod
 *   schema: the v1 Protocol above checks them again, and the lean engine needs no more than the shape.
 * - An error response ends a stream's need to resume just like a result does.
 * - A JSON answer that is not JSON-RPC, or holds no response to its request, fails that request with a
 *   StreamableHTTPError (as a wrong content type does), which leaves the connection up; an event that breaks
 *   the envelope but names its request fails that one (`onmalformed`), where the SDK leaves it to its timeout.
 * - An event's `id` counts even when the event carries no `data` line (the SSE spec; the SDK's parser
 *   drops such events, so a bare `id:` priming event did not make a stream resumable).
 * - `close()` ends the session with a DELETE (best effort, not awaited), as the spec asks of a client that
 *   leaves; the SDK transport only does so when `terminateSession()` is called.
 * - Redirects are followed within the same origin only (scheme, host and port), as the SDK's default
 *   'same-origin' policy does, without its http->https upgrade case.
 */
import {
  auth,
  extractWWWAuthenticateParams,
  type OAuthClientProvider,
  UnauthorizedError,
} from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  createFetchWithInit,
  type FetchLike,
  type Transport,
  type TransportSendOptions,
} from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { InFlightSet } from "../in-flight.ts";
import {
  BodyTooLargeError,
  configuredHeaders,
  type Exchange,
  excerpt,
  Http1Target,
  RequestHead,
  redirectTarget,
  request,
  webResponse,
} from "./http1.ts";
import {
  answeredId,
  describeInvalid,
  isJsonRpcMessage,
  MAX_ANSWER_BYTES,
  notAResponse,
  type OnMalformed,
} from "./message-shape.ts";
import { type SseEvent, SseParser, Utf8Chunks } from "./sse-parser.ts";

const MAX_REDIRECTS = 5;
/** How long the DELETE that ends a session (sent on close) may take. */
const DELETE_TIMEOUT_MS = 5000;
/** The SDK's default reconnection options of a cut stream. */
const RECONNECT = { initialDelay: 1000, maxDelay: 30000, growFactor: 1.5, maxRetries: 2 };

export type HttpAuthProvider = OAuthClientProvider & { observeFetch(fetch: FetchLike): FetchLike };

export interface HttpTransportOptions {
  /** Configured headers, sent on every request (they win over the transport's own, as in the SDK). */
  headers?: Record<string, string> | undefined;
  /** OAuth client of a protected upstream: its token on every request; 401 runs the SDK's auth() flow. */
  authProvider?: HttpAuthProvider | undefined;
  /** The fetch the OAuth flow (metadata discovery, token requests) runs on. */
  fetch: FetchLike;
}

interface StreamOptions {
  /** Last-Event-ID to resume from (GET). */
  resumptionToken?: string | undefined;
  onresumptiontoken?: ((token: string) => void) | undefined;
  /** The request a resumed stream answers: its responses take this id. */
  replayMessageId?: string | number | undefined;
  /** Ids of the requests a POST stream must answer. */
  requests?: Array<string | number> | undefined;
}

export class HttpClientTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  /** Set by the 2025 connection: a request whose answer broke the envelope fails at once. */
  onmalformed?: OnMalformed | undefined;

  readonly #url: URL;
  /** #url's pool, path and Host, made once. */
  readonly #target: Http1Target;
  readonly #headers: Record<string, string>;
  readonly #auth: HttpAuthProvider | undefined;
  readonly #fetch: FetchLike;
  /** The fetch auth() runs on: the configured headers added to each of its requests (the SDK's fetchWithInit). */
  readonly #authFetch: FetchLike;
  #sessionId: string | undefined;
  #protocolVersion: string | undefined;
  /**
   * The head of a POST without OAuth (request line and headers, checked and serialized), rebuilt when the
   * session or the protocol version changes: a call builds no header object and no header text.
   */
  #postHead: RequestHead | undefined;
  #started = false;
  #closed = false;
  /** Requests in flight (streams included): destroyed on close. */
  readonly #live = new InFlightSet<Exchange>();
  readonly #untrack = (exchange: Exchange) => {
    this.#live.delete(exchange);
  };
  #reconnectTimer: NodeJS.Timeout | undefined;
  #serverRetryMs: number | undefined;
  #resourceMetadataUrl: URL | undefined;
  #scope: string | undefined;
  /** Circuit breaker: a 401 right after a completed auth flow is not retried. */
  #authCompleted = false;
  #lastUpscopingHeader: string | undefined;

  constructor(url: URL, options: HttpTransportOptions) {
    this.#url = url;
    this.#target = new Http1Target(url);
    this.#headers = configuredHeaders(options.headers);
    this.#auth = options.authProvider;
    this.#fetch = options.authProvider ? options.authProvider.observeFetch(options.fetch) : options.fetch;
    this.#authFetch = createFetchWithInit(this.#fetch, { headers: options.headers ?? {} });
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  get protocolVersion(): string | undefined {
    return this.#protocolVersion;
  }

  setProtocolVersion(version: string): void {
    this.#protocolVersion = version;
    this.#postHead = undefined;
  }

  async start(): Promise<void> {
    if (this.#started) {
      throw new Error(
        "StreamableHTTPClientTransport already started! If using Client class, note that connect() calls start() automatically.",
      );
    }
    this.#started = true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Best effort, not awaited: the server may free the session now rather than when it expires.
    if (this.#sessionId) this.#terminate().catch(() => {});
    clearTimeout(this.#reconnectTimer);
    for (const exchange of this.#live) {
      this.#live.delete(exchange);
      exchange.destroy(abortError());
    }
    this.onclose?.();
  }

  async send(message: JSONRPCMessage | JSONRPCMessage[], options?: TransportSendOptions): Promise<void> {
    try {
      if (options?.resumptionToken) {
        const replayMessageId = !Array.isArray(message) && isRequest(message) ? message.id : undefined;
        this.#openStream({ resumptionToken: options.resumptionToken, replayMessageId }).catch(
          (err: unknown) => this.onerror?.(asError(err)),
        );
        return;
      }
      if (this.#closed) throw new Error("Not connected");
      await this.#post(message, JSON.stringify(message), options?.onresumptiontoken);
    } catch (err) {
      this.onerror?.(asError(err));
      throw err;
    }
  }

  /** Ends the session on the server (DELETE); a 405 means the server does not end sessions on request. */
  async terminateSession(): Promise<void> {
    try {
      await this.#terminate();
    } catch (err) {
      this.onerror?.(asError(err));
      throw err;
    }
  }

  async #terminate(): Promise<void> {
    if (!this.#sessionId) return;
    const res = await this.#request("DELETE", await this.#commonHeaders());
    res.discard();
    const status = res.status;
    if (!ok(status) && status !== 405) {
      throw new StreamableHTTPError(
        status,
        `Failed to terminate session: ${this.#unfollowed(res) ?? res.statusText}`,
      );
    }
    this.#sessionId = undefined;
    this.#postHead = undefined;
  }

  async #post(
    message: JSONRPCMessage | JSONRPCMessage[],
    body: string,
    onresumptiontoken: ((token: string) => void) | undefined,
  ): Promise<void> {
    const res = this.#auth
      ? await this.#request("POST", await this.#authHeaders(), body)
      : await this.#exchange(this.#plainPostHead(), body, true);
    const sessionId = res.header("mcp-session-id");
    if (sessionId && sessionId !== this.#sessionId) {
      this.#sessionId = sessionId;
      this.#postHead = undefined;
    }
    const status = res.status;
    if (!ok(status)) {
      const text = await res.text(MAX_ANSWER_BYTES).catch(() => null);
      if (this.#auth && (status === 401 || status === 403)) {
        const retried = await this.#authorizeAfter(res, text);
        if (retried) return this.#post(message, body, onresumptiontoken);
      }
      throw new StreamableHTTPError(
        status,
        `Error POSTing to endpoint: ${this.#unfollowed(res) ?? `HTTP ${status}${text ? `: ${excerpt(text)}` : ""}`}`,
      );
    }
    this.#authCompleted = false;
    this.#lastUpscopingHeader = undefined;
    if (status === 202) {
      res.discard();
      if (!Array.isArray(message) && "method" in message && message.method === "notifications/initialized") {
        // The standalone stream for server-initiated messages, when the server offers one.
        this.#openStream({}).catch((err: unknown) => this.onerror?.(asError(err)));
      }
      return;
    }
    const requests = requestIds(message);
    if (requests.length === 0) {
      res.discard();
      return;
    }
    const contentType = res.header("content-type");
    const type =
      contentType === "text/event-stream" || contentType === "application/json"
        ? contentType
        : contentType?.split(";", 1)[0]?.trim().toLowerCase();
    if (type === "text/event-stream") {
      this.#readStream(res, { onresumptiontoken, requests }, false);
    } else if (type === "application/json") {
      const messages = jsonAnswer(await readAnswer(res));
      for (const received of messages) this.onmessage?.(received);
      const missing = unanswered(requests, messages);
      if (missing !== undefined) throw missing;
    } else {
      res.discard();
      throw new StreamableHTTPError(-1, `Unexpected content type: ${contentType}`);
    }
  }

  /**
   * A 401 or 403 answered a request: run the SDK's auth() flow as its transport does and say whether to send
   * again (true), or throw when the credentials cannot be fixed. False: not an auth matter (403 without
   * insufficient_scope).
   */
  async #authorizeAfter(res: Exchange, text: string | null): Promise<boolean> {
    const provider = this.#auth as HttpAuthProvider;
    const status = res.status;
    const response = webResponse(res, text);
    // The provider watches the transport's responses (a 403 insufficient_scope is remembered for the next login).
    await provider.observeFetch(async () => response)(this.#url);
    const { resourceMetadataUrl, scope, error } = extractWWWAuthenticateParams(response);
    if (status === 401) {
      if (this.#authCompleted) {
        throw new StreamableHTTPError(401, "Server returned 401 after successful authentication");
      }
      this.#resourceMetadataUrl = resourceMetadataUrl;
      this.#scope = scope;
      await this.#authorize(this.#authFetch);
      this.#authCompleted = true;
      return true;
    }
    if (error !== "insufficient_scope") return false;
    const header = response.headers.get("WWW-Authenticate") ?? undefined;
    if (this.#lastUpscopingHeader === header) {
      throw new StreamableHTTPError(403, "Server returned 403 after trying upscoping");
    }
    if (scope) this.#scope = scope;
    if (resourceMetadataUrl) this.#resourceMetadataUrl = resourceMetadataUrl;
    this.#lastUpscopingHeader = header;
    await this.#authorize(this.#fetch);
    return true;
  }

  #authorize(fetchFn: FetchLike): Promise<void> {
    const challenge = { resourceMetadataUrl: this.#resourceMetadataUrl, scope: this.#scope };
    return authorize(this.#auth as HttpAuthProvider, this.#url, challenge, fetchFn);
  }

  /** Opens a GET event stream: the standalone one, or a cut one resumed from `resumptionToken`. */
  async #openStream(options: StreamOptions): Promise<void> {
    const headers = await this.#commonHeaders();
    headers.accept = "text/event-stream";
    if (options.resumptionToken) headers["last-event-id"] = options.resumptionToken;
    const res = await this.#request("GET", headers);
    const status = res.status;
    if (!ok(status)) {
      res.discard();
      if (status === 401 && this.#auth) {
        try {
          await this.#authorize(this.#authFetch);
        } catch (err) {
          this.onerror?.(asError(err));
          throw err;
        }
        return this.#openStream({ resumptionToken: undefined });
      }
      // 405: the server offers no stream at GET.
      if (status === 405) return;
      throw new StreamableHTTPError(
        status,
        `Failed to open SSE stream: ${this.#unfollowed(res) ?? res.statusText}`,
      );
    }
    this.#readStream(res, options, true);
  }

  /**
   * Reads an event stream to its end, delivering each message as it arrives. A stream that ends or breaks
   * before answering is resumed (GET + Last-Event-ID) when it is the standalone stream or carried an event id;
   * a POST stream that cannot be resumed answers its requests with errors instead.
   */
  #readStream(res: Exchange, options: StreamOptions, reconnectable: boolean): void {
    const { onresumptiontoken, replayMessageId, requests } = options;
    let lastEventId: string | undefined;
    let receivedResponse = false;
    /** The last event that was no JSON-RPC message: named when the stream ends without an answer. */
    let invalid: string | undefined;
    const answered = requests && requests.length > 1 ? new Set<unknown>() : undefined;
    /** The one request a POST stream answers (most do). */
    const single = requests?.length === 1 ? requests[0] : undefined;
    const onEvent = (event: SseEvent) => {
      if (event.id !== undefined) {
        lastEventId = event.id;
        onresumptiontoken?.(event.id);
      }
      if (!event.data || (event.event !== undefined && event.event !== "message")) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(event.data);
      } catch {
        parsed = event.data;
      }
      if (!isJsonRpcMessage(parsed)) {
        invalid = describeInvalid(parsed);
        this.onerror?.(new Error(`the upstream sent an invalid JSON-RPC message: ${invalid}`));
        const id = this.onmalformed ? answeredId(parsed) : undefined;
        if (id === undefined) return;
        receivedResponse = true;
        answered?.add(id);
        this.onmalformed?.(replayMessageId ?? id, notAResponse(invalid));
        return;
      }
      const message = parsed;
      if (!("method" in message)) {
        // A response to another id (a confused server) answers nothing of this stream's: its request fails
        // when the stream ends, not at its timeout.
        if (single === undefined || sameId(message.id, single)) receivedResponse = true;
        answered?.add(message.id);
        if (replayMessageId !== undefined) message.id = replayMessageId;
      }
      this.onmessage?.(message);
    };
    // Made at the first chunk that is more than one whole `message` event (the usual answer is just that).
    let parser: SseParser | undefined;
    let started = false;
    const decoder = new Utf8Chunks();
    const data = (bytes: Buffer) => {
      const chunk = decoder.text(bytes);
      if (parser === undefined) {
        const data = SseParser.singleMessage(chunk);
        if (data !== undefined) {
          started = true;
          return onEvent({ id: undefined, event: "message", data });
        }
        const onRetry = (retryMs: number) => {
          this.#serverRetryMs = retryMs;
        };
        parser = new SseParser(onEvent, onRetry, !started);
      }
      started = true;
      if (!parser.feed(chunk)) res.destroy(new Error(`an event exceeded ${MAX_ANSWER_BYTES} characters`));
    };
    const end = (failure: Error | undefined) => {
      if (this.#closed) return;
      // No failure: the server ended the stream (otherwise it broke).
      const ended = failure === undefined;
      const resume = () =>
        this.#scheduleReconnection({ resumptionToken: lastEventId, onresumptiontoken, replayMessageId }, 0);
      const broken = () =>
        this.onerror?.(new Error(`SSE stream disconnected: ${failure ?? "the connection closed"}`));
      if (reconnectable) {
        // The standalone stream (or a resumed one): reported when broken, and opened again.
        if (!ended) broken();
        if (!receivedResponse) resume();
        return;
      }
      const unanswered = (requests ?? []).filter((id) => !(answered ? answered.has(id) : receivedResponse));
      if (unanswered.length === 0) return;
      // A POST stream cut before its answer: resumed quietly when the server made it resumable.
      if (lastEventId !== undefined && !receivedResponse) return resume();
      if (!ended) return broken();
      const message = `the upstream ended its response stream without answering${
        invalid === undefined ? "" : `; it sent an event that is not a JSON-RPC message: ${invalid}`
      }`;
      for (const id of unanswered) {
        const error = { code: -32000, message };
        this.onmessage?.({ jsonrpc: "2.0", id, error });
      }
    };
    res.read({ data, end });
  }

  #scheduleReconnection(options: StreamOptions, attempt: number): void {
    if (attempt >= RECONNECT.maxRetries) {
      this.onerror?.(new Error(`Maximum reconnection attempts (${RECONNECT.maxRetries}) exceeded.`));
      return;
    }
    const delay =
      this.#serverRetryMs ??
      Math.min(RECONNECT.initialDelay * RECONNECT.growFactor ** attempt, RECONNECT.maxDelay);
    this.#reconnectTimer = setTimeout(() => {
      if (this.#closed) return;
      this.#openStream(options).catch((err: unknown) => {
        this.onerror?.(
          new Error(`Failed to reconnect SSE stream: ${err instanceof Error ? err.message : String(err)}`),
        );
        this.#scheduleReconnection(options, attempt + 1);
      });
    }, delay);
  }

  /** One HTTP exchange, following redirects within the origin; resolves with the response head. */
  #request(method: string, headers: Record<string, string>, body?: string): Promise<Exchange> {
    return this.#exchange(new RequestHead(this.#target, method, headers), body, true);
  }

  async #redirected(first: Exchange, head: RequestHead, body: string | undefined): Promise<Exchange> {
    const { method, headers } = head;
    let url = this.#url;
    let res = first;
    for (let redirects = 0; ; redirects++) {
      if (redirects > 0) {
        res = await this.#exchange(new RequestHead(new Http1Target(url), method, headers), body, false);
      }
      const status = res.status;
      if (status < 300 || status >= 400) return res;
      const target = redirectTarget(res, url);
      const keepsMethod = status === 307 || status === 308 || method === "GET";
      if (!target || redirects === MAX_REDIRECTS || !keepsMethod || target.origin !== url.origin) return res;
      if ((target.username || target.password) && target.username !== url.username) return res;
      res.discard();
      url = target;
    }
  }

  /**
   * One exchange, following redirects within the origin when `follow`; resolves with the response head.
   * The client sends a request again once when a reused socket turns out closed (http1.ts).
   */
  #exchange(head: RequestHead, body: string | undefined, follow: boolean): Promise<Exchange> {
    // The session's DELETE goes out after close() and is not cut by it.
    const tracked = head.method !== "DELETE";
    if (this.#closed && tracked) return Promise.reject(abortError());
    return new Promise((resolve, reject) => {
      const onHead = (res: Exchange) => {
        const status = res.status;
        resolve(follow && status >= 300 && status < 400 ? this.#redirected(res, head, body) : res);
      };
      const onFail = (err: Error) => {
        if (this.#closed && tracked) reject(abortError());
        else reject(new TypeError("fetch failed", { cause: err }));
      };
      if (tracked) {
        this.#live.add(request(head, body, onHead, onFail, this.#untrack));
        return;
      }
      // Nothing waits for the DELETE: a server that does not answer it must not hold the socket.
      let timer: NodeJS.Timeout | undefined;
      const exchange = request(head, body, onHead, onFail, () => clearTimeout(timer));
      timer = setTimeout(() => exchange.destroy(abortError()), DELETE_TIMEOUT_MS);
      timer.unref();
    });
  }

  #plainPostHead(): RequestHead {
    if (this.#postHead) return this.#postHead;
    const headers = {
      ...this.#sessionHeaders(),
      ...this.#headers,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    this.#postHead = new RequestHead(this.#target, "POST", headers);
    return this.#postHead;
  }

  async #authHeaders(): Promise<Record<string, string>> {
    return {
      ...(await this.#commonHeaders()),
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
  }

  /** The headers of every request (the SDK's _commonHeaders): token, session, protocol version, configured. */
  async #commonHeaders(): Promise<Record<string, string>> {
    const headers: Record<string, string> = {};
    const tokens = this.#auth ? await this.#auth.tokens() : undefined;
    if (tokens) headers.authorization = `Bearer ${tokens.access_token}`;
    Object.assign(headers, this.#sessionHeaders());
    Object.assign(headers, this.#headers);
    return headers;
  }

  #sessionHeaders(): Record<string, string> {
    const headers: Record<string, string> = {};
    if (this.#sessionId) headers["mcp-session-id"] = this.#sessionId;
    if (this.#protocolVersion) headers["mcp-protocol-version"] = this.#protocolVersion;
    return headers;
  }

  /** Why a redirect answer was not followed, or undefined for any other answer. */
  #unfollowed(res: Exchange): string | undefined {
    const target = redirectTarget(res, this.#url);
    if (!target) return undefined;
    target.username = target.password = target.search = target.hash = "";
    return `Redirect to ${target.href} not followed (redirectPolicy: 'same-origin')`;
  }
}

function ok(status: number): boolean {
  return status >= 200 && status < 300;
}

/**
 * The SDK's auth() flow for `serverUrl` after a 401 or 403 (what its `WWW-Authenticate` said: where the
 * resource's metadata is, which scope to ask for); throws UnauthorizedError when it ends without a token (a
 * person must consent).
 */
export async function authorize(
  provider: OAuthClientProvider,
  serverUrl: URL,
  challenge: { resourceMetadataUrl: URL | undefined; scope: string | undefined },
  fetchFn: FetchLike,
): Promise<void> {
  const result = await auth(provider, { serverUrl, ...challenge, fetchFn });
  if (result !== "AUTHORIZED") throw new UnauthorizedError();
}

function isRequest(message: JSONRPCMessage): message is JSONRPCMessage & { id: string | number } {
  return "method" in message && "id" in message && message.id !== undefined;
}

function requestIds(message: JSONRPCMessage | JSONRPCMessage[]): Array<string | number> {
  if (!Array.isArray(message)) return isRequest(message) ? [message.id] : [];
  const ids: Array<string | number> = [];
  for (const one of message) if (isRequest(one)) ids.push(one.id);
  return ids;
}

/** A JSON answer's text; one over MAX_ANSWER_BYTES fails its request (the socket is dropped, not reused). */
function readAnswer(res: Exchange): Promise<string> {
  return res.text(MAX_ANSWER_BYTES).catch((err: unknown) => {
    if (err instanceof BodyTooLargeError) throw new StreamableHTTPError(-1, err.message);
    throw err;
  });
}

/**
 * The messages of a JSON answer to a POST. A body that is not JSON-RPC fails that request alone (an error of
 * the answer, as a wrong content type is), not the connection: the next request gets its own answer.
 */
function jsonAnswer(text: string): JSONRPCMessage[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new StreamableHTTPError(
      -1,
      text.trim() === "" ? "the JSON answer is empty" : `the answer is not JSON: ${excerpt(text)}`,
    );
  }
  const messages = Array.isArray(data) ? data : [data];
  for (const message of messages) {
    if (!isJsonRpcMessage(message))
      throw new StreamableHTTPError(-1, `the answer is not a JSON-RPC message: ${describeInvalid(message)}`);
  }
  return messages as JSONRPCMessage[];
}

/** A JSON answer is the whole answer: a request it holds no response to will get none (the spec's rule). */
function unanswered(requests: Array<string | number>, messages: JSONRPCMessage[]): Error | undefined {
  // The usual answer, checked without allocating: one response to the one request.
  const [first] = messages;
  if (requests.length === 1 && messages.length === 1 && !("method" in (first as object))) {
    if ((first as { id?: unknown }).id === requests[0]) return undefined;
  }
  const responses = messages.filter((m) => !("method" in m)) as Array<{ id?: unknown; error?: unknown }>;
  const missing = requests.filter((id) => !responses.some((got) => sameId(got.id, id)));
  if (missing.length === 0) return undefined;
  // What came instead: the ids, and an error's words (a server that could not parse the request says so
  // with id null).
  const came = responses.map(({ id, error }) => {
    const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
    return `${JSON.stringify(id ?? null)}${error === undefined ? "" : ` with error ${code}: ${message}`}`;
  });
  return new StreamableHTTPError(
    -1,
    `the JSON answer holds no response to request ${missing.join(", ")}${
      came.length > 0 ? ` (it answered ${came.join(", ")})` : ""
    }`,
  );
}

/** Ids as the server may echo them: the same value, or a number as its string. */
function sameId(a: unknown, b: string | number): boolean {
  return a === b || String(a) === String(b);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function abortError(): Error {
  return new DOMException("This operation was aborted", "AbortError");
}
