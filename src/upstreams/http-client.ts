/**
 * The `fetch` toolgate gives the v2 SDK's Streamable HTTP client transport (2026-era upstreams) and the OAuth
 * flows, on node:http with keep-alive (2025-era and legacy SSE upstreams have their own transports,
 * http-transport.ts and sse-transport.ts). SSE is parsed by eventsource-parser. A stream's events are bounded
 * at 64 MiB: the SDK's parser after it keeps an event whole without bound. Two savings
 * per call over the global fetch: (1) its abort listener leaves the transport's one shared AbortSignal when
 * the exchange ends (undici's leaves only when its Request is garbage collected, so the listener list,
 * scanned on every add, grows with the call rate); (2) a POST answered with an SSE stream holding nothing
 * but the JSON-RPC response (the usual tools/call) is handed to the SDK as an `application/json` Response,
 * which spares a Web stream, a TextDecoderStream and an SSE parser per call. Any other stream (progress
 * first, a priming event, more than one event) is passed through as it arrives.
 *
 * A POST stream that ends without answering its requests: when the server made it resumable (an event with
 * an `id`), it ends as is and the SDK resumes it with GET + `Last-Event-ID` after the server's `retry:` delay;
 * otherwise nothing will answer, and each unanswered request gets a JSON-RPC error event at once. Failures
 * reject like fetch: `TypeError("fetch failed")` with the socket error as `cause`, or the signal's reason.
 */
import http from "node:http";
import https from "node:https";
import { StringDecoder } from "node:string_decoder";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { BodyTooLargeError } from "./http1.ts";
import { MAX_ANSWER_BYTES } from "./message-shape.ts";

const agents = {
  "http:": new http.Agent({ keepAlive: true }),
  "https:": new https.Agent({ keepAlive: true }),
};

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
    const watch = new StreamWatch(requestBody);
    let decided = false;
    let bytes = 0;
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_ANSWER_BYTES) return void res.destroy(new BodyTooLargeError(MAX_ANSWER_BYTES));
      chunks.push(chunk);
      const first = watch.feed(chunk);
      if (first === undefined) return;
      decided = true;
      res.off("data", onData);
      const response = first.id ? undefined : watch.firstResponse;
      if (response === undefined) {
        resolve(new Response(followStream(res, chunks, watch), init));
        return;
      }
      // The answer to the POST's one request: what may follow is the end of the stream.
      res.resume();
      const json = headers.filter(([k]) => k.toLowerCase() !== "content-type");
      json.push(["content-type", "application/json"]);
      resolve(new TextResponse(first.data, { ...init, headers: json }, response));
    };
    res.on("data", onData);
    res.once("end", () => {
      if (decided) return;
      // The stream ended before one whole event: nothing will answer the POST's requests.
      const events = Buffer.concat(chunks).toString();
      // A real body: the SDK reads an event stream from `body`, which a TextResponse does not have.
      resolve(new Response(events + watch.unansweredEvents(), init));
    });
  } else {
    let bytes = 0;
    res.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_ANSWER_BYTES) return void res.destroy(new BodyTooLargeError(MAX_ANSWER_BYTES));
      chunks.push(chunk);
    });
    res.once("end", () => resolve(new TextResponse(Buffer.concat(chunks).toString(), init)));
  }
  res.on("error", (err) => reject(new TypeError("fetch failed", { cause: err })));
}

/**
 * Watches a POST's event stream: which of its requests were answered, and whether the server made the
 * stream resumable (an event carried an `id`). `feed` returns the first complete event, once.
 */
export class StreamWatch {
  readonly #requests: unknown[];
  readonly #answered = new Set<unknown>();
  readonly #decoder = new StringDecoder("utf8");
  readonly #parser = createParser({
    maxBufferSize: MAX_ANSWER_BYTES,
    onEvent: (event) => this.#onEvent(event),
  });
  #first: EventSourceMessage | undefined;
  /** The JSON-RPC response the first event carries, parsed once. */
  firstResponse: object | undefined;
  #reported = false;
  /** The last event id seen: the stream can be resumed from it. */
  lastEventId: string | undefined;

  constructor(requestBody: string | undefined) {
    this.#requests = requestsOf(requestBody);
  }

  feed(chunk: Buffer): EventSourceMessage | undefined {
    this.#parser.feed(this.#decoder.write(chunk));
    if (this.#reported || this.#first === undefined) return undefined;
    this.#reported = true;
    return this.#first;
  }

  #onEvent(event: EventSourceMessage): void {
    const response = responseOf(event);
    if (this.#first === undefined) {
      this.#first = event;
      this.firstResponse = response;
    }
    if (event.id) this.lastEventId = event.id;
    if (response) this.#answered.add((response as { id?: unknown }).id);
  }

  /** SSE events answering each request of the POST that no event answered with a connection-closed error. */
  unansweredEvents(): string {
    let events = "";
    for (const message of this.#requests) {
      const { id, method } = (message ?? {}) as { id?: unknown; method?: unknown };
      if (id === undefined || typeof method !== "string" || this.#answered.has(id)) continue;
      const error = { code: -32000, message: "the upstream ended its response stream without answering" };
      events += `event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id, error })}\n\n`;
    }
    return events;
  }
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
 * The rest of a response as a Web stream, starting with the chunks read so far. A POST stream that ends (or
 * breaks) without answering is resumable when it carried event ids: it then ends as is and the SDK resumes
 * it. Otherwise each unanswered request gets an error event before the end: the SDK would wait for those
 * answers until a timeout (an upstream restarting gracefully ends its streams this way).
 */
function followStream(
  res: http.IncomingMessage,
  read: Buffer[],
  watch?: StreamWatch,
): ReadableStream<Uint8Array> {
  const event = new EventLength();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of read) {
        event.add(chunk);
        controller.enqueue(chunk);
      }
      res.on("data", (chunk: Buffer) => {
        // The SDK's reader keeps an event whole until its end: bounded here.
        if (!event.add(chunk)) return void res.destroy(new EventTooLargeError(MAX_ANSWER_BYTES));
        watch?.feed(chunk);
        controller.enqueue(chunk);
      });
      res.once("end", () => {
        if (watch && watch.lastEventId === undefined) {
          const missing = watch.unansweredEvents();
          if (missing) controller.enqueue(Buffer.from(missing));
        }
        controller.close();
      });
      res.on("error", (err) => {
        // A resumable stream cut by the network is resumed like one the server ended (not one cut here: the
        // server would send the same event again).
        if (watch?.lastEventId !== undefined && !(err instanceof EventTooLargeError)) controller.close();
        else controller.error(err);
      });
    },
    cancel() {
      res.destroy();
    },
  });
}

export class EventTooLargeError extends Error {
  constructor(maxBytes: number) {
    super(`the upstream sent an event larger than ${maxBytes} bytes; toolgate read no more of it`);
    this.name = "EventTooLargeError";
  }
}

/**
 * The bytes of the event being read: those since the stream's last blank line (two line ends in a row: LF
 * LF, CR CR, or LF CR, which CRLF CRLF holds), a split pair across chunks included.
 */
export class EventLength {
  #bytes = 0;
  #last = 0;

  /** False once the event being read is longer than MAX_ANSWER_BYTES. */
  add(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    const end = Math.max(chunk.lastIndexOf("\n\n"), chunk.lastIndexOf("\r\r"), chunk.lastIndexOf("\n\r"));
    const first = chunk[0];
    if (end !== -1) this.#bytes = chunk.length - end - 2;
    else if ((this.#last === LF && (first === LF || first === CR)) || (this.#last === CR && first === CR))
      this.#bytes = chunk.length - 1;
    else this.#bytes += chunk.length;
    this.#last = chunk[chunk.length - 1] as number;
    return this.#bytes <= MAX_ANSWER_BYTES;
  }
}
const LF = 10;
const CR = 13;

/** The JSON-RPC response an SSE message event carries, or undefined. */
function responseOf(event: EventSourceMessage): object | undefined {
  if ((event.event ?? "message") !== "message" || !event.data) return undefined;
  try {
    const message = JSON.parse(event.data) as unknown;
    return typeof message === "object" &&
      message !== null &&
      !("method" in message) &&
      ("result" in message || "error" in message)
      ? message
      : undefined;
  } catch {
    return undefined;
  }
}

function requestsOf(requestBody: string | undefined): unknown[] {
  if (requestBody === undefined) return [];
  try {
    const sent = JSON.parse(requestBody) as unknown;
    return Array.isArray(sent) ? sent : [sent];
  } catch {
    return [];
  }
}
