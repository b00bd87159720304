/**
 * The client side of a legacy HTTP+SSE upstream (protocol 2024-11-05, still served by many servers): a GET
 * event stream whose first `endpoint` event names where to POST messages; the answers come back on the
 * stream. It replaces the SDK's SSEClientTransport, on toolgate's own HTTP/1.1 client (http1.ts) and SSE
 * parser (sse-parser.ts), for what that one could not do: fail a request at once when the event answering it
 * breaks the JSON-RPC envelope (the SDK reported such an event to `onerror` without its id, and the request
 * waited for its timeout), and bound an event at 64 MiB in bytes as every other transport bounds an answer.
 * Like the SDK's, it sends the OAuth token and runs the SDK's auth() flow on a 401 (to the GET or a POST),
 * follows redirects within the origin, and reports a stream that ends or breaks as an `SseError`: a legacy
 * session lives on its stream, so the 2025 connection above reconnects (the SDK's EventSource reopened the
 * stream itself, into a new session that knew none of the requests in flight).
 */
import {
  extractWWWAuthenticateParams,
  type OAuthClientProvider,
} from "@modelcontextprotocol/sdk/client/auth.js";
import { SseError } from "@modelcontextprotocol/sdk/client/sse.js";
import {
  createFetchWithInit,
  type FetchLike,
  type Transport,
} from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { InFlightSet } from "../in-flight.ts";
import { EventLength, EventTooLargeError } from "./http-client.ts";
import { authorize } from "./http-transport.ts";
import {
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
/** How much of a refused request's body is read to quote it. */
const MAX_ERROR_BODY = 64 * 1024;

export interface SseTransportOptions {
  /** Configured headers, sent on every request (they win over the transport's own, as in the SDK). */
  headers?: Record<string, string> | undefined;
  /** OAuth client of a protected upstream: its token on every request; 401 runs the SDK's auth() flow. */
  authProvider?: OAuthClientProvider | undefined;
  /** The fetch the OAuth flow (metadata discovery, token requests) runs on. */
  fetch: FetchLike;
}

export class SseClientTransport implements Transport {
  onmessage?: ((message: JSONRPCMessage) => void) | undefined;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  /** Set by the 2025 connection: a request whose answer broke the envelope fails at once. */
  onmalformed?: OnMalformed | undefined;
  readonly #url: URL;
  readonly #headers: Record<string, string>;
  readonly #auth: OAuthClientProvider | undefined;
  /** The fetch auth() runs on: the configured headers added to each of its requests (as the SDK's). */
  readonly #authFetch: FetchLike;
  #protocolVersion: string | undefined;
  /** Where messages are POSTed, from the stream's `endpoint` event. */
  #endpoint: Http1Target | undefined;
  #started = false;
  #closed = false;
  /** The event stream and the POSTs in flight: destroyed on close. */
  readonly #live = new InFlightSet<Exchange>();
  readonly #untrack = (exchange: Exchange) => {
    this.#live.delete(exchange);
  };
  #resourceMetadataUrl: URL | undefined;
  #scope: string | undefined;

  constructor(url: URL, options: SseTransportOptions) {
    this.#url = url;
    this.#headers = configuredHeaders(options.headers);
    this.#auth = options.authProvider;
    this.#authFetch = createFetchWithInit(options.fetch, { headers: options.headers ?? {} });
  }

  setProtocolVersion(version: string): void {
    this.#protocolVersion = version;
  }

  /** Opens the event stream; resolves once its `endpoint` event arrived. */
  async start(): Promise<void> {
    if (this.#started) throw new Error("SseClientTransport already started");
    this.#started = true;
    let res = await this.#get();
    if (res.status === 401 && this.#auth) {
      res.discard();
      this.#learnChallenge(res);
      await this.#authorize();
      res = await this.#get();
    }
    if (res.status < 200 || res.status >= 300) {
      const body = excerpt(await res.text(MAX_ERROR_BODY).catch(() => ""));
      const said = `Non-200 status code (${res.status})${body && `: ${body}`}${this.#unfollowed(res)}`;
      throw streamError(res.status, said);
    }
    const type = res.header("content-type")?.split(";", 1)[0]?.trim().toLowerCase();
    if (type !== "text/event-stream") {
      res.discard();
      throw streamError(res.status, `Invalid content type ${type}, expected "text/event-stream"`);
    }
    return new Promise((resolve, reject) => this.#readStream(res, resolve, reject));
  }

  /**
   * Reads the stream to its end: the `endpoint` event settles `start`, each `message` event is delivered.
   * An end or a break after the endpoint is reported once, as an SseError.
   */
  #readStream(res: Exchange, resolve: () => void, reject: (err: Error) => void): void {
    let opened = false;
    const onEvent = (event: SseEvent) => {
      if (event.event === "endpoint") {
        if (opened) return;
        try {
          this.#endpoint = this.#endpointOf(event.data);
        } catch (err) {
          reject(err as Error);
          return res.destroy(err as Error);
        }
        opened = true;
        return resolve();
      }
      if (event.event === undefined || event.event === "message") this.#deliver(event.data);
    };
    const parser = new SseParser(onEvent);
    const decoder = new Utf8Chunks();
    const length = new EventLength();
    res.read({
      data: (bytes) => {
        // Bytes, as every other answer is bounded (the parser's own bound counts characters).
        if (!length.add(bytes)) return void res.destroy(new EventTooLargeError(MAX_ANSWER_BYTES));
        parser.feed(decoder.text(bytes));
      },
      end: (failure) => {
        if (this.#closed) return;
        const why = failure ? failure.message : "the server ended the stream";
        if (!opened) return reject(streamError(undefined, `${why} before its endpoint event`));
        // The owner says "the event stream broke: " before the message.
        this.onerror?.(streamError(undefined, why));
      },
    });
  }

  /** The `endpoint` event's URL, resolved against the configured one; another origin is refused (as the SDK). */
  #endpointOf(data: string): Http1Target {
    const endpoint = new URL(data, this.#url);
    if (endpoint.origin !== this.#url.origin) {
      throw new Error(`Endpoint origin does not match connection origin: ${endpoint.origin}`);
    }
    return new Http1Target(endpoint);
  }

  #deliver(data: string): void {
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      message = data;
    }
    if (isJsonRpcMessage(message)) return void this.onmessage?.(message);
    const invalid = describeInvalid(message);
    const id = answeredId(message);
    if (id !== undefined && this.onmalformed) return void this.onmalformed(id, notAResponse(invalid));
    this.onerror?.(new Error(`the upstream sent an invalid JSON-RPC message: ${invalid}`));
  }

  async send(message: JSONRPCMessage): Promise<void> {
    try {
      await this.#post(JSON.stringify(message), false);
    } catch (err) {
      this.onerror?.(err as Error);
      throw err;
    }
  }

  async #post(body: string, authorized: boolean): Promise<void> {
    const endpoint = this.#endpoint;
    if (!endpoint || this.#closed) throw new Error("Not connected");
    const headers = await this.#commonHeaders();
    headers["content-type"] = "application/json";
    const res = await this.#exchange(new RequestHead(endpoint, "POST", headers), body);
    const status = res.status;
    if (status >= 200 && status < 300) return res.discard();
    const text = await res.text(MAX_ERROR_BODY).catch(() => "");
    if (status === 401 && this.#auth && !authorized) {
      this.#learnChallenge(res, text);
      await this.#authorize();
      return this.#post(body, true);
    }
    throw new Error(`Error POSTing to endpoint (HTTP ${status}): ${excerpt(text)}${this.#unfollowed(res)}`);
  }

  /** The GET of the event stream, following redirects within the origin. */
  async #get(): Promise<Exchange> {
    const headers = await this.#commonHeaders();
    headers.accept = "text/event-stream";
    let url = this.#url;
    for (let redirects = 0; ; redirects++) {
      const res = await this.#exchange(new RequestHead(new Http1Target(url), "GET", headers));
      const target = redirectTarget(res, url);
      if (!target || target.origin !== url.origin || redirects === MAX_REDIRECTS) return res;
      res.discard();
      url = target;
    }
  }

  #exchange(head: RequestHead, body?: string): Promise<Exchange> {
    if (this.#closed) return Promise.reject(new Error("Not connected"));
    return new Promise((resolve, reject) => {
      const onFail = (err: Error) => reject(new TypeError("fetch failed", { cause: err }));
      this.#live.add(request(head, body, resolve, onFail, this.#untrack));
    });
  }

  /** A 401's `WWW-Authenticate` tells where the resource's metadata is and which scope to ask for. */
  #learnChallenge(res: Exchange, text: string | null = null): void {
    const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(webResponse(res, text));
    this.#resourceMetadataUrl = resourceMetadataUrl;
    this.#scope = scope;
  }

  #authorize(): Promise<void> {
    const challenge = { resourceMetadataUrl: this.#resourceMetadataUrl, scope: this.#scope };
    return authorize(this.#auth as OAuthClientProvider, this.#url, challenge, this.#authFetch);
  }

  /** The headers of every request (the SDK's _commonHeaders): token, protocol version, configured. */
  async #commonHeaders(): Promise<Record<string, string>> {
    const headers: Record<string, string> = {};
    const tokens = this.#auth ? await this.#auth.tokens() : undefined;
    if (tokens) headers.authorization = `Bearer ${tokens.access_token}`;
    if (this.#protocolVersion) headers["mcp-protocol-version"] = this.#protocolVersion;
    return Object.assign(headers, this.#headers);
  }

  /** A redirect answer's target, said when it was not followed ("" for any other answer). */
  #unfollowed(res: Exchange): string {
    const target = redirectTarget(res, this.#url);
    if (!target) return "";
    target.username = target.password = target.search = target.hash = "";
    return `; redirect to ${target.href} not followed (POSTs are not redirected, a GET only within its origin)`;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#endpoint = undefined;
    for (const exchange of this.#live) {
      this.#live.delete(exchange);
      exchange.destroy(new Error("the transport was closed"));
    }
    this.onclose?.();
  }
}

/** The SDK's error for a failed event stream, which request-error.ts and the 2025 connection know. */
function streamError(code: number | undefined, message: string): SseError {
  // Its third argument is the SDK EventSource's ErrorEvent, which this transport has none of.
  return new SseError(code, message, undefined as never);
}
