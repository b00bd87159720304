/**
 * One client transport per configured upstream transport. The transports are the SDK's own; this file maps
 * config to their options, turns a stdio child's stderr into log lines, and gives Streamable HTTP a leaner
 * `fetch` (see upstreamFetch).
 */
import http from "node:http";
import https from "node:https";
import type { Stream } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
import type { FetchLike, Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { McpTransportConfig } from "../config/load.ts";
import { assertNever } from "../errors.ts";
import { UnsendableMessageError } from "./request-error.ts";

export interface TransportHooks {
  /** One line of a stdio child's stderr (without the newline). */
  onStderr(line: string): void;
  /** A configuration the transport cannot honour (e.g. headers on WebSocket). */
  onWarning?(message: string): void;
  /** OAuth client of a protected http/sse upstream: the SDK adds its token and handles 401/403. */
  authProvider?: (OAuthClientProvider & { observeFetch(fetch: FetchLike): FetchLike }) | undefined;
}

/** Longest stderr line kept; a child writing megabytes without a newline must not grow memory. */
const MAX_STDERR_LINE = 8 * 1024;

export function createTransport(config: McpTransportConfig, hooks: TransportHooks): Transport {
  return markUnsendable(deliverResponsesLast(createSdkTransport(config, hooks)));
}

/**
 * Every SDK transport serializes inside `send`, so a message that cannot be serialized (a stack overflow on
 * deep nesting, a string too long, a cycle) rejects there like a dead socket would. Tell them apart here, on
 * the failure path only: a RangeError never comes from a socket, and a message that does not stringify now
 * never got written. Such a failure belongs to the message, not to the connection.
 */
function markUnsendable(transport: Transport): Transport {
  const send = transport.send.bind(transport);
  transport.send = (message, options) =>
    send(message, options).catch((err: unknown) => {
      throw err instanceof RangeError || !serializable(message) ? new UnsendableMessageError(err) : err;
    });
  return transport;
}

function serializable(message: unknown): boolean {
  try {
    JSON.stringify(message);
    return true;
  } catch {
    return false;
  }
}

/**
 * The SDK's Protocol runs a notification handler one microtask late but settles a response at once, so a
 * progress update read together with its response (one stdio chunk: "100%, then the result") finds its
 * handler gone and is dropped. Delivering responses one microtask later keeps them behind the
 * notifications that arrived before them. Protocol.connect sets `onmessage` right before `start()`.
 */
function deliverResponsesLast(transport: Transport): Transport {
  const start = transport.start.bind(transport);
  transport.start = () => {
    const deliver = transport.onmessage;
    if (deliver) {
      transport.onmessage = (message, extra) => {
        if ("method" in message) deliver(message, extra);
        else queueMicrotask(() => deliver(message, extra));
      };
    }
    return start();
  };
  return transport;
}

function createSdkTransport(config: McpTransportConfig, hooks: TransportHooks): Transport {
  switch (config.type) {
    case "stdio": {
      const transport = new StdioClientTransport({
        command: config.command,
        args: config.args,
        env: { ...getDefaultEnvironment(), ...config.env },
        cwd: config.cwd,
        stderr: "pipe",
      });
      // The SDK hands out the stderr stream before start(), so no early output is lost.
      const stderr = transport.stderr;
      if (stderr) pipeLines(stderr, hooks.onStderr);
      return transport;
    }
    case "http":
      return new StreamableHTTPClientTransport(new URL(config.url), {
        requestInit: { headers: config.headers },
        fetch: hooks.authProvider ? hooks.authProvider.observeFetch(upstreamFetch) : upstreamFetch,
        ...(hooks.authProvider && { authProvider: hooks.authProvider }),
      });
    case "sse":
      return new SSEClientTransport(new URL(config.url), {
        requestInit: { headers: config.headers },
        ...(hooks.authProvider && { authProvider: hooks.authProvider }),
      });
    case "ws":
      if (Object.keys(config.headers).length > 0) {
        hooks.onWarning?.(
          `headers are configured for WebSocket ${config.url}, but a WebSocket client cannot send them; ` +
            "put credentials in the url or use the http transport",
        );
      }
      return new WebSocketClientTransport(new URL(config.url));
    default:
      return assertNever(config);
  }
}

function pipeLines(stream: Stream, onLine: (line: string) => void): void {
  const decoder = new StringDecoder("utf8");
  let buffer = "";
  stream.on("data", (chunk: Buffer) => {
    buffer += decoder.write(chunk);
    let newline = buffer.indexOf("\n");
    while (newline !== -1) {
      emit(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf("\n");
    }
    if (buffer.length > MAX_STDERR_LINE) {
      emit(buffer);
      buffer = "";
    }
  });
  stream.on("end", () => {
    buffer += decoder.end();
    if (buffer) emit(buffer);
    buffer = "";
  });
  function emit(line: string): void {
    const trimmed = line.replace(/\r$/, "").slice(0, MAX_STDERR_LINE);
    if (trimmed.trim()) onLine(trimmed);
  }
}

const agents = {
  "http:": new http.Agent({ keepAlive: true }),
  "https:": new https.Agent({ keepAlive: true }),
};

/**
 * `fetch` for StreamableHTTPClientTransport on node:http with keep-alive. Two savings per call over the global
 * fetch: (1) its abort listener leaves the transport's one shared AbortSignal when the exchange ends (undici's
 * leaves only when its Request is garbage collected, so the listener list, scanned on every add, grows with
 * the call rate); (2) a POST answered with an SSE stream holding nothing but the JSON-RPC response (the usual
 * tools/call) is handed to the SDK as an `application/json` Response, which spares a Web stream, a
 * TextDecoderStream and an SSE parser per call. Any other stream (progress first, a priming event, more than
 * one event) is passed through as it arrives. Failures reject like fetch: `TypeError("fetch failed")` with the
 * socket error as `cause`, or the signal's reason when aborted.
 */
export function upstreamFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  // MCP messages are strings; anything else (the OAuth client's form bodies) takes the platform's fetch.
  if (init.body != null && typeof init.body !== "string") return fetch(input, init);
  const url = input instanceof URL ? input : new URL(input instanceof Request ? input.url : input);
  return nodeFetch(url, init, false);
}

function nodeFetch(url: URL, init: RequestInit, retry: boolean): Promise<Response> {
  const signal = init.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const headers: Record<string, string> = {};
  const given = init.headers instanceof Headers ? init.headers : new Headers(init.headers);
  given.forEach((value, key) => {
    headers[key] = value;
  });
  const method = init.method ?? "GET";
  const client = url.protocol === "https:" ? https : http;
  const agent = url.protocol === "https:" ? agents["https:"] : agents["http:"];
  return new Promise<Response>((resolve, reject) => {
    let answered = false;
    const request = client.request(url, { method, headers, agent }, (res) => {
      answered = true;
      res.once("close", done);
      readResponse(res, method, typeof init.body === "string" ? init.body : undefined, resolve, reject);
    });
    const onAbort = () => request.destroy(signal?.reason);
    function done() {
      signal?.removeEventListener("abort", onAbort);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    request.on("error", (err: NodeJS.ErrnoException) => {
      done();
      if (signal?.aborted) return reject(signal.reason);
      // A pooled connection the server closed while idle: the request never reached it. Retry once afresh.
      if (!answered && !retry && request.reusedSocket && err.code === "ECONNRESET") {
        return resolve(nodeFetch(url, init, true));
      }
      reject(new TypeError("fetch failed", { cause: err }));
    });
    request.end(typeof init.body === "string" ? init.body : undefined);
  });
}

function readResponse(
  res: http.IncomingMessage,
  method: string,
  requestBody: string | undefined,
  resolve: (response: Response) => void,
  reject: (err: unknown) => void,
): void {
  const status = res.statusCode ?? 502;
  const headers: Array<[string, string]> = [];
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i] as string, raw[i + 1] as string]);
  const init = { status, statusText: res.statusMessage ?? "", headers };
  if (status === 202 || status === 204 || status === 304 || method === "HEAD") {
    res.resume();
    resolve(new TextResponse("", init));
    return;
  }
  const chunks: Buffer[] = [];
  if (res.headers["content-type"]?.startsWith("text/event-stream")) {
    if (method !== "POST") {
      resolve(new Response(followStream(res, chunks), init));
      return;
    }
    const decoder = new StringDecoder("utf8");
    let text = "";
    let decided = false;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      // Look for the end of the first event only in what is new (plus a possibly split "\r\n\r\n").
      EVENT_END.lastIndex = Math.max(0, text.length - 3);
      text += decoder.write(chunk);
      const end = EVENT_END.exec(text)?.index;
      if (end === undefined) return;
      decided = true;
      res.off("data", onData);
      const response = responseEvent(text.slice(0, end));
      if (response === undefined) return resolve(new Response(followStream(res, chunks, requestBody), init));
      // The answer to the POST's one request: what may follow is the end of the stream.
      res.resume();
      const json = headers.filter(([k]) => k.toLowerCase() !== "content-type");
      json.push(["content-type", "application/json"]);
      resolve(new TextResponse(response.data, { ...init, headers: json }, response.message));
    };
    res.on("data", onData);
    res.once("end", () => {
      if (decided) return;
      // The stream ended before one whole event: nothing will answer the POST's requests.
      const events = Buffer.concat(chunks).toString();
      // A real body: the SDK reads an event stream from `body`, which a TextResponse does not have.
      resolve(new Response(events + unansweredEvents(requestBody, answeredIds(events)), init));
    });
  } else {
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.once("end", () => resolve(new TextResponse(Buffer.concat(chunks).toString(), init)));
  }
  res.on("error", (err) => reject(new TypeError("fetch failed", { cause: err })));
}

/**
 * A Response whose whole body is already here: text() and json() answer from the string, without the Web
 * stream a body would need (`body` is null; the SDK only cancels it, which is then a no-op).
 */
class TextResponse extends Response {
  readonly #text: string;
  /** The body already parsed (the SDK reads it once), or undefined. */
  #parsed: unknown;

  constructor(text: string, init: ResponseInit, parsed?: unknown) {
    super(null, init);
    this.#text = text;
    this.#parsed = parsed;
  }

  override async text(): Promise<string> {
    return this.#text;
  }

  override async json(): Promise<unknown> {
    const parsed = this.#parsed ?? JSON.parse(this.#text);
    this.#parsed = undefined;
    return parsed;
  }
}

/**
 * The rest of a response as a Web stream, starting with the chunks read so far. For a POST, the requests the
 * stream ended without answering get a JSON-RPC error event before the end: the SDK would otherwise wait
 * for those answers until a timeout (an upstream restarting gracefully ends its streams this way).
 */
function followStream(
  res: http.IncomingMessage,
  read: Buffer[],
  requestBody?: string,
): ReadableStream<Uint8Array> {
  const decoder = new StringDecoder("utf8");
  const answered = new Set<unknown>();
  let text = "";
  const scan = (chunk: Buffer) => {
    if (requestBody === undefined) return;
    text += decoder.write(chunk);
    const events = text.split(EVENT_END);
    text = events.pop() ?? "";
    for (const event of events) {
      const response = responseEvent(event);
      if (response) answered.add((response.message as { id?: unknown }).id);
    }
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of read) {
        scan(chunk);
        controller.enqueue(chunk);
      }
      res.on("data", (chunk: Buffer) => {
        scan(chunk);
        controller.enqueue(chunk);
      });
      res.once("end", () => {
        const missing = unansweredEvents(requestBody, answered);
        if (missing) controller.enqueue(Buffer.from(missing));
        controller.close();
      });
      res.on("error", (err) => controller.error(err));
    },
    cancel() {
      res.destroy();
    },
  });
}

const EVENT_END = /\r?\n\r?\n/g;

/** One SSE event's data and its parse, when it is a message holding a JSON-RPC response; else undefined. */
function responseEvent(event: string): { data: string; message: object } | undefined {
  const data: string[] = [];
  for (const line of event.split(/\r?\n/)) {
    if (line.startsWith("data:")) data.push(line.slice(line[5] === " " ? 6 : 5));
    else if (line.startsWith("event:") && line.slice(6).trim() !== "message") return undefined;
  }
  if (data.length === 0) return undefined;
  const body = data.join("\n");
  try {
    const message = JSON.parse(body) as unknown;
    const response =
      typeof message === "object" &&
      message !== null &&
      !("method" in message) &&
      ("result" in message || "error" in message);
    return response ? { data: body, message } : undefined;
  } catch {
    return undefined;
  }
}

/** Ids of the JSON-RPC responses among complete SSE events. */
function answeredIds(events: string): Set<unknown> {
  const ids = new Set<unknown>();
  for (const event of events.split(EVENT_END)) {
    const response = responseEvent(event);
    if (response) ids.add((response.message as { id?: unknown }).id);
  }
  return ids;
}

/** SSE events answering each request of a POST body that `answered` lacks with a connection-closed error. */
function unansweredEvents(requestBody: string | undefined, answered: Set<unknown>): string {
  if (requestBody === undefined) return "";
  let sent: unknown;
  try {
    sent = JSON.parse(requestBody);
  } catch {
    return "";
  }
  let events = "";
  for (const message of Array.isArray(sent) ? sent : [sent]) {
    const { id, method } = (message ?? {}) as { id?: unknown; method?: unknown };
    if (id === undefined || typeof method !== "string" || answered.has(id)) continue;
    const error = { code: -32000, message: "the upstream ended its response stream without answering" };
    events += `event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id, error })}\n\n`;
  }
  return events;
}
