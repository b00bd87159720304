/**
 * A small HTTP/1.1 client on net/tls sockets: the one HTTP path of the upstream Streamable HTTP transport
 * (http-transport.ts). Node's http client cost 15-20 % of the gateway's CPU per proxied call (ClientRequest,
 * the Agent's bookkeeping, IncomingMessage and its Readable, header objects and validation on every request);
 * a hand-written exchange on kept-alive sockets costs about half of node:http or undici, and the whole transport
 * on this client 0.56-0.82× the CPU per call of a bare node:http exchange (bench/http-transport.ts, 2026-12-02).
 *
 * - A pool per origin (scheme, host, port) of kept-alive sockets, one request at a time per socket (no
 *   pipelining), as many in use as asked for, at most MAX_IDLE idle ones; idle sockets are unref'd and are
 *   not reused past the server's `Keep-Alive: timeout=N` less a second (Node's Agent does the same), or past
 *   DEFAULT_IDLE_MS without a hint. https verifies the certificate (default CA), with SNI and ALPN http/1.1.
 * - A request head is validated and serialized once (`RequestHead`); each request writes head, Content-Length
 *   and body in one `socket.write`.
 * - Responses are parsed on Buffers: status line, headers (no obs-fold), a 64 KiB head limit, 1xx skipped,
 *   Transfer-Encoding chunked (extensions ignored, trailers dropped), Content-Length, or a body until close.
 *   Anything malformed fails the exchange with an error whose `code` names it (HPE_*, as llhttp's) and
 *   destroys the socket. A socket goes back to the pool only once its response was read to the end, framed
 *   by length or chunks, without `Connection: close` and without bytes after it.
 * - The body goes to one consumer (`read`), chunk by chunk as it arrives; parts that came before it asked
 *   are held (the socket is paused past HIGH_WATER). No stream or emitter per response.
 * - A request sent on a reused socket that fails before any byte of its answer (ECONNRESET, EPIPE or a clean
 *   close: the server closed the idle socket as the request went out) is sent once more on a fresh socket.
 * Errors before the head reach `onFail` as the socket's own (with its `code`); the caller wraps them.
 */
import net from "node:net";
import { StringDecoder } from "node:string_decoder";
import tls from "node:tls";

/** Largest response head (status line and headers), and largest trailer section. */
const MAX_HEAD = 64 * 1024;
/** Largest chunk-size line (size and extensions). */
const MAX_CHUNK_LINE = 4096;
const MAX_IDLE = 256;
/** How long an idle socket is reused without a `Keep-Alive: timeout` hint (undici's default). */
const DEFAULT_IDLE_MS = 4000;
const MAX_IDLE_MS = 600_000;
/** Body bytes held for a consumer that has not asked yet, before the socket is paused. */
const HIGH_WATER = 1024 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Characters node:http refuses in a request header value (it writes values as latin1). */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Values are checked by BAD_VALUE, names are tokens, the path and Host come from a URL. */
const NON_ASCII = /[\x80-\xff]/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const BAD_FIELD_VALUE = /[\0\r\n]/;
const CLOSE = /(?:^|,)\s*close\s*(?:,|$)/i;
const KEEP_ALIVE = /(?:^|,)\s*keep-alive\s*(?:,|$)/i;
const TIMEOUT_HINT = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i;
const DIGITS = /^\d{1,15}$/;
/** A chunk-size line: hex size, then optional whitespace and extensions (ignored). */
const CHUNK_SIZE_LINE = /^([0-9a-fA-F]{1,13})[\t ]*(?:;.*)?$/;
const CRLF2 = Buffer.from("\r\n\r\n");

export interface BodySink {
  data(chunk: Buffer): void;
  /** The body was read to its end (undefined), or failed. Called once. */
  end(error: Error | undefined): void;
}

/** Where requests go: the origin's pool, the request target and the Host header, made once per URL. */
export class Http1Target {
  readonly origin: Origin;
  readonly path: string;
  readonly host: string;
  /** `Authorization: Basic` from the URL's userinfo (as node:http's `auth` option). */
  readonly basicAuth: string | undefined;

  constructor(url: URL) {
    const secure = url.protocol === "https:";
    if (!secure && url.protocol !== "http:") throw new TypeError(`unsupported protocol ${url.protocol}`);
    // An IPv6 literal is bracketed in a URL, not in a host name.
    const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port) || (secure ? 443 : 80);
    const key = `${url.protocol}//${hostname}:${port}`;
    let origin = origins.get(key);
    if (!origin) {
      origin = new Origin(secure, hostname, port);
      origins.set(key, origin);
    }
    this.origin = origin;
    this.path = url.pathname + url.search;
    this.host = url.host;
    this.basicAuth =
      url.username || url.password
        ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`
        : undefined;
  }
}

/** A request line and headers, checked and serialized once (Content-Length is added per request). */
export class RequestHead {
  readonly target: Http1Target;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Everything up to the Content-Length line (or the blank line). */
  readonly text: string;
  readonly ascii: boolean;

  constructor(target: Http1Target, method: string, headers: Readonly<Record<string, string>>) {
    if (!TOKEN.test(method)) throw new TypeError(`invalid HTTP method ${JSON.stringify(method)}`);
    let text = `${method} ${target.path} HTTP/1.1\r\n`;
    let host = false;
    let authorization = false;
    let lines = "";
    for (const name in headers) {
      const value = headers[name] as string;
      checkHeader(name, value);
      const lower = name.toLowerCase();
      if (lower === "host") host = true;
      else if (lower === "authorization") authorization = true;
      lines += `${name}: ${value}\r\n`;
    }
    if (!host) text += `Host: ${target.host}\r\n`;
    if (!authorization && target.basicAuth) text += `Authorization: ${target.basicAuth}\r\n`;
    this.target = target;
    this.method = method;
    this.headers = headers;
    this.text = text + lines;
    this.ascii = !NON_ASCII.test(this.text);
  }
}

/**
 * An upstream's configured headers, names lower-cased, each checked once (so that one that cannot be sent fails
 * at connect, naming it).
 */
export function configuredHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const lowered: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    checkHeader(name, value);
    lowered[name.toLowerCase()] = value;
  }
  return lowered;
}

/**
 * Throws when a header cannot be sent as is (node:http's rules: a token name, no CR, LF or NUL in the value),
 * or is one the client writes itself (the body's framing).
 */
export function checkHeader(name: string, value: string): void {
  if (!TOKEN.test(name)) throw new TypeError(`invalid HTTP header name ${JSON.stringify(name)}`);
  if (BAD_VALUE.test(value)) throw new TypeError(`invalid character in the value of HTTP header ${name}`);
  const lower = name.toLowerCase();
  if (lower === "content-length" || lower === "transfer-encoding") {
    throw new TypeError(`the header ${name} is set by the HTTP client`);
  }
}

/**
 * Sends one request. `onHead` gets the response once its head arrived, `onFail` an error before that
 * (never both), `onSettled` is called when the exchange is over: body read to its end, failed or destroyed.
 * No callback runs before this returns.
 */
export function request(
  head: RequestHead,
  body: string | undefined,
  onHead: (res: Exchange) => void,
  onFail: (err: Error) => void,
  onSettled?: (res: Exchange) => void,
): Exchange {
  const exchange = new Exchange(head, body, onHead, onFail, onSettled);
  const origin = head.target.origin;
  exchange.send(origin.acquire() ?? origin.connect());
  return exchange;
}

/** Where a redirect answer points (301, 302, 303, 307, 308 with a Location), resolved against `from`. */
export function redirectTarget(res: Exchange, from: URL): URL | undefined {
  const status = res.status;
  const location = res.header("location");
  if (![301, 302, 303, 307, 308].includes(status) || !location) return undefined;
  try {
    return new URL(location, from);
  } catch {
    return undefined;
  }
}

/** The answer as a web Response, for the SDK's auth helpers (401/403 only: never on the hot path). */
export function webResponse(res: Exchange, text: string | null): Response {
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i] as string, raw[i + 1] as string);
  return new Response(text, { status: res.status, statusText: res.statusText, headers });
}

/** An error body as one short line: a server's whole HTML error page must not become an upstream's lastError. */
export function excerpt(text: string, max = 200): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** A response body longer than its reader would take: the upstream's fault, and only this request's. */
export class BodyTooLargeError extends Error {
  constructor(maxBytes: number) {
    super(`the answer's body is larger than ${maxBytes} bytes; toolgate read no more of it`);
    this.name = "BodyTooLargeError";
  }
}

const WAITING = 0;
const BODY = 1;
const DONE = 2;
const FAILED = 3;

/** One request and its response. */
export class Exchange {
  status = 0;
  statusText = "";
  /** Response header names (as received) and values, alternating, as node:http's `rawHeaders`. */
  rawHeaders: string[] = [];

  readonly #head: RequestHead;
  readonly #body: string | undefined;
  readonly #onHead: (res: Exchange) => void;
  readonly #onFail: (err: Error) => void;
  readonly #onSettled: ((res: Exchange) => void) | undefined;
  #conn: Connection | undefined;
  #retried = false;
  #state = WAITING;
  #error: Error | undefined;
  /** The consumer until the body ends. */
  #sink: BodySink | undefined;
  #consumed = false;
  /** Body parts that arrived before `read`. */
  #held: Buffer[] | undefined;
  #heldBytes = 0;

  constructor(
    head: RequestHead,
    body: string | undefined,
    onHead: (res: Exchange) => void,
    onFail: (err: Error) => void,
    onSettled: ((res: Exchange) => void) | undefined,
  ) {
    this.#head = head;
    this.#body = body;
    this.#onHead = onHead;
    this.#onFail = onFail;
    this.#onSettled = onSettled;
  }

  get method(): string {
    return this.#head.method;
  }

  /** A response header by its lower-case name (the first of several). */
  header(name: string): string | undefined {
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const key = raw[i] as string;
      if (key.length === name.length && key.toLowerCase() === name) return raw[i + 1];
    }
    return undefined;
  }

  /** Hands the body to `sink` (once): the parts that already arrived at once, the rest as they arrive. */
  read(sink: BodySink): void {
    if (this.#consumed) throw new Error("the response body is already being read");
    this.#consumed = true;
    const held = this.#held;
    this.#held = undefined;
    // Over before the consumer came: it gets the held parts and the end here.
    const over = this.#state >= DONE;
    if (!over) this.#sink = sink;
    if (held) {
      for (const part of held) {
        sink.data(part);
        if (!over && this.#sink !== sink) return; // destroyed meanwhile: the sink got its end
      }
      if (!over && this.#heldBytes > HIGH_WATER) this.#conn?.socket.resume();
    }
    if (over) sink.end(this.#error);
  }

  /**
   * The body as text (UTF-8). Past `maxBytes` no more is read: the exchange is destroyed (its socket is not
   * reused) and the promise rejects with BodyTooLargeError.
   */
  text(maxBytes: number): Promise<string> {
    const held = this.#held;
    if (this.#state === DONE && !this.#consumed && (!held || held.length === 1)) {
      // The usual answer: whole in one read before anyone asked.
      const whole = held?.[0];
      if (whole && whole.length > maxBytes) return Promise.reject(new BodyTooLargeError(maxBytes));
      this.#consumed = true;
      this.#held = undefined;
      return Promise.resolve(whole ? whole.toString() : "");
    }
    return new Promise((resolve, reject) => {
      const decoder = new StringDecoder("utf8");
      let text = "";
      let bytes = 0;
      this.read({
        data: (chunk) => {
          bytes += chunk.length;
          if (bytes > maxBytes) return void this.destroy(new BodyTooLargeError(maxBytes));
          text += decoder.write(chunk);
        },
        end(error) {
          if (error) reject(error);
          else resolve(text + decoder.end());
        },
      });
    });
  }

  /** Reads the body to its end and drops it, so that the socket can serve another request. */
  discard(): void {
    if (!this.#consumed) this.read(DISCARD);
  }

  /** Ends the exchange (a no-op once it is over): its socket is destroyed, the error goes to its consumer. */
  destroy(error: Error = new Error("the HTTP exchange was destroyed")): void {
    if (this.#state >= DONE) return;
    const conn = this.#conn;
    this.#conn = undefined;
    if (conn) conn.abandon();
    this.#fail(error);
  }

  /** Writes the request on `conn`. */
  send(conn: Connection): void {
    this.#conn = conn;
    conn.begin(this);
    const { text, ascii } = this.#head;
    const body = this.#body;
    const socket = conn.socket;
    if (body === undefined) {
      socket.write(ascii ? `${text}\r\n` : Buffer.from(`${text}\r\n`, "latin1"));
    } else if (ascii) {
      socket.write(`${text}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    } else {
      const bytes = Buffer.from(body);
      socket.write(
        Buffer.concat([Buffer.from(`${text}Content-Length: ${bytes.length}\r\n\r\n`, "latin1"), bytes]),
      );
    }
  }

  // Called by the connection.

  headArrived(status: number, statusText: string, rawHeaders: string[]): void {
    this.status = status;
    this.statusText = statusText;
    this.rawHeaders = rawHeaders;
    this.#state = BODY;
    this.#onHead(this);
  }

  bodyArrived(chunk: Buffer): void {
    const sink = this.#sink;
    if (sink) {
      sink.data(chunk);
      return;
    }
    if (this.#held) this.#held.push(chunk);
    else this.#held = [chunk];
    this.#heldBytes += chunk.length;
    if (this.#heldBytes > HIGH_WATER) this.#conn?.socket.pause();
  }

  completed(): void {
    if (this.#state >= DONE) return;
    this.#conn = undefined;
    this.#state = DONE;
    const sink = this.#sink;
    if (sink) {
      this.#sink = undefined;
      sink.end(undefined);
    }
    this.#onSettled?.(this);
  }

  /** The connection failed; `stale`: it was a reused one and no byte of the answer came (the keep-alive race). */
  connectionFailed(error: Error, stale: boolean): void {
    const conn = this.#conn;
    this.#conn = undefined;
    if (stale && !this.#retried && conn) {
      this.#retried = true;
      this.send(conn.origin.connect());
      return;
    }
    this.#fail(error);
  }

  #fail(error: Error): void {
    if (this.#state >= DONE) return;
    const waiting = this.#state === WAITING;
    this.#state = FAILED;
    this.#error = error;
    if (waiting) this.#onFail(error);
    else {
      const sink = this.#sink;
      this.#sink = undefined;
      sink?.end(error);
    }
    this.#onSettled?.(this);
  }
}

const DISCARD: BodySink = { data() {}, end() {} };

/** The kept-alive sockets of one origin. */
class Origin {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  /** Idle connections, the most recently used last. */
  readonly idle: Connection[] = [];

  constructor(secure: boolean, host: string, port: number) {
    this.secure = secure;
    this.host = host;
    this.port = port;
  }

  /** An idle connection still within its keep-alive time, or undefined. */
  acquire(): Connection | undefined {
    const now = Date.now();
    for (let conn = this.idle.pop(); conn; conn = this.idle.pop()) {
      if (conn.expires > now) {
        conn.socket.ref();
        return conn;
      }
      conn.socket.destroy();
    }
    return undefined;
  }

  connect(): Connection {
    const { host, port } = this;
    const socket = this.secure
      ? tls.connect({
          host,
          port,
          servername: net.isIP(host) ? undefined : host,
          ALPNProtocols: ["http/1.1"],
        })
      : net.connect({ host, port });
    return new Connection(this, socket);
  }

  release(conn: Connection, keepAliveMs: number): void {
    const idle = this.idle;
    const now = Date.now();
    // The oldest idle ones first: past their time they would only be destroyed at the next acquire.
    while (idle.length > 0 && (idle[0] as Connection).expires <= now) idle.shift()?.socket.destroy();
    if (keepAliveMs <= 0 || idle.length >= MAX_IDLE) {
      conn.socket.destroy();
      return;
    }
    conn.expires = now + keepAliveMs;
    conn.socket.unref();
    idle.push(conn);
  }

  forget(conn: Connection): void {
    const at = this.idle.indexOf(conn);
    if (at !== -1) this.idle.splice(at, 1);
  }
}

const origins = new Map<string, Origin>();

// Parser states.
const HEAD = 0;
const FIXED = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_END = 4;
const TRAILERS = 5;
const UNTIL_CLOSE = 6;
const IDLE = 7;

/** A socket and the parser of the response to the one request it carries. */
class Connection {
  readonly origin: Origin;
  readonly socket: net.Socket;
  /** The idle connection may not be used from this time on (ms since the epoch). */
  expires = 0;
  #exchange: Exchange | undefined;
  /** It served an exchange before the current one. */
  #reused = false;
  /** No byte of the current answer arrived yet. */
  #quiet = true;
  #state = IDLE;
  /** Bytes of an unfinished head, chunk-size line or trailer section. */
  #partial: Buffer | undefined;
  #remaining = 0;
  /** The current response leaves the socket reusable (keep-alive, framed). */
  #reusable = true;
  #keepAliveMs = DEFAULT_IDLE_MS;

  constructor(origin: Origin, socket: net.Socket) {
    this.origin = origin;
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 1000);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => this.#onEnd());
    socket.on("error", (err: Error) => this.#lost(err));
    socket.on("close", () => {
      if (this.#exchange) this.#lost(hangUp());
      else this.origin.forget(this);
    });
  }

  begin(exchange: Exchange): void {
    this.#exchange = exchange;
    this.#quiet = true;
    this.#state = HEAD;
    this.#reusable = true;
    this.#keepAliveMs = DEFAULT_IDLE_MS;
  }

  /** The exchange gave up on this socket. */
  abandon(): void {
    this.#exchange = undefined;
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    const exchange = this.#exchange;
    if (!exchange) {
      // Bytes nobody asked for: the socket cannot be trusted with another request.
      this.origin.forget(this);
      this.socket.destroy();
      return;
    }
    this.#quiet = false;
    try {
      this.#parse(exchange, chunk);
    } catch (err) {
      // A malformed answer, or the consumer's own failure while the body was in flight: the exchange fails.
      // Thrown once the exchange was over, it is the consumer's, and not this socket's to hide.
      if (this.#exchange !== exchange) throw err;
      this.#exchange = undefined;
      this.socket.destroy();
      exchange.connectionFailed(err as Error, false);
    }
  }

  #onEnd(): void {
    const exchange = this.#exchange;
    if (exchange && this.#state === UNTIL_CLOSE) {
      this.#exchange = undefined;
      this.#state = IDLE;
      this.socket.destroy();
      exchange.completed();
      return;
    }
    this.#lost(hangUp());
  }

  /** The socket failed or closed: gone from the pool; the exchange on it fails (or is sent again). */
  #lost(error: Error): void {
    this.origin.forget(this);
    this.socket.destroy();
    const exchange = this.#exchange;
    if (!exchange) return;
    this.#exchange = undefined;
    const code = (error as NodeJS.ErrnoException).code;
    const stale = this.#reused && this.#quiet && (code === "ECONNRESET" || code === "EPIPE");
    exchange.connectionFailed(error, stale);
  }

  /** Parses what arrived for `exchange`; throws on a malformed response. */
  #parse(exchange: Exchange, chunk: Buffer): void {
    let buf = chunk;
    let pos = 0;
    while (pos < buf.length) {
      if (this.#exchange !== exchange) return; // destroyed by a consumer
      switch (this.#state) {
        case HEAD: {
          if (this.#partial) {
            buf = Buffer.concat([this.#partial, buf.subarray(pos)]);
            pos = 0;
            this.#partial = undefined;
          }
          const end = buf.indexOf(CRLF2, pos);
          if (end === -1 ? buf.length - pos > MAX_HEAD : end - pos > MAX_HEAD) {
            throw malformed("HPE_HEADER_OVERFLOW", `a head over ${MAX_HEAD} bytes`);
          }
          if (end === -1) {
            this.#partial = buf.subarray(pos);
            return;
          }
          this.#head(exchange, buf.toString("latin1", pos, end));
          pos = end + 4;
          break;
        }
        case FIXED: {
          const take = Math.min(this.#remaining, buf.length - pos);
          this.#remaining -= take;
          const part = take === buf.length ? buf : buf.subarray(pos, pos + take);
          pos += take;
          exchange.bodyArrived(part);
          if (this.#remaining === 0 && this.#exchange === exchange)
            this.#complete(exchange, pos < buf.length);
          break;
        }
        case CHUNK_SIZE: {
          const line = this.#line(buf, pos, MAX_CHUNK_LINE);
          if (line === undefined) return;
          pos = line.next;
          const match = CHUNK_SIZE_LINE.exec(line.text);
          if (!match) throw malformed("HPE_INVALID_CHUNK_SIZE", `chunk size line ${quote(line.text)}`);
          const size = Number.parseInt(match[1] as string, 16);
          this.#state = size === 0 ? TRAILERS : CHUNK_DATA;
          this.#remaining = size;
          break;
        }
        case CHUNK_DATA: {
          const take = Math.min(this.#remaining, buf.length - pos);
          this.#remaining -= take;
          const part = buf.subarray(pos, pos + take);
          pos += take;
          if (this.#remaining === 0) {
            this.#state = CHUNK_END;
            this.#remaining = 2;
          }
          exchange.bodyArrived(part);
          break;
        }
        case CHUNK_END: {
          const expected = this.#remaining === 2 ? 13 : 10;
          if (buf[pos] !== expected) throw malformed("HPE_INVALID_CHUNK_SIZE", "a chunk not ended by CRLF");
          pos++;
          if (--this.#remaining === 0) this.#state = CHUNK_SIZE;
          break;
        }
        case TRAILERS: {
          // Dropped: the section ends at an empty line (right away, or after trailer fields).
          if (this.#partial) {
            buf = Buffer.concat([this.#partial, buf.subarray(pos)]);
            pos = 0;
            this.#partial = undefined;
          }
          let end = -1;
          if (buf.length - pos >= 2 && buf[pos] === 13 && buf[pos + 1] === 10) end = pos + 2;
          else if (buf.length - pos >= 2) {
            const at = buf.indexOf(CRLF2, pos);
            if (at !== -1) end = at + 4;
          }
          if (end === -1 ? buf.length - pos > MAX_HEAD : end - pos > MAX_HEAD) {
            throw malformed("HPE_HEADER_OVERFLOW", `trailers over ${MAX_HEAD} bytes`);
          }
          if (end === -1) {
            this.#partial = buf.subarray(pos);
            return;
          }
          pos = end;
          this.#complete(exchange, pos < buf.length);
          break;
        }
        case UNTIL_CLOSE: {
          const part = pos === 0 ? buf : buf.subarray(pos);
          pos = buf.length;
          exchange.bodyArrived(part);
          break;
        }
        default:
          // Bytes after the response: the exchange is over, the socket was destroyed in #complete.
          return;
      }
    }
  }

  /** A line ended by CRLF from `pos` (joined with what came before), or undefined when it is not whole yet. */
  #line(buf: Buffer, pos: number, limit: number): { text: string; next: number } | undefined {
    const lf = buf.indexOf(10, pos);
    if (this.#partial) {
      if (lf === -1) {
        this.#partial = Buffer.concat([this.#partial, buf.subarray(pos)]);
        if (this.#partial.length > limit)
          throw malformed("HPE_INVALID_CHUNK_SIZE", "a chunk size line too long");
        return undefined;
      }
      const joined = Buffer.concat([this.#partial, buf.subarray(pos, lf + 1)]);
      this.#partial = undefined;
      return this.#lineOf(joined, 0, joined.length - 1, lf + 1, limit);
    }
    if (lf === -1) {
      if (buf.length - pos > limit) throw malformed("HPE_INVALID_CHUNK_SIZE", "a chunk size line too long");
      this.#partial = buf.subarray(pos);
      return undefined;
    }
    return this.#lineOf(buf, pos, lf, lf + 1, limit);
  }

  #lineOf(buf: Buffer, start: number, lf: number, next: number, limit: number) {
    if (lf === start || buf[lf - 1] !== 13)
      throw malformed("HPE_INVALID_CHUNK_SIZE", "a line not ended by CRLF");
    if (lf - start > limit) throw malformed("HPE_INVALID_CHUNK_SIZE", "a chunk size line too long");
    return { text: buf.toString("latin1", start, lf - 1), next };
  }

  /** Reads a response head: a 1xx is skipped, a final one is handed to the exchange and sets the framing. */
  #head(exchange: Exchange, text: string): void {
    const lines = text.split("\r\n");
    const status = STATUS_LINE.exec(lines[0] as string);
    if (!status) throw malformed("HPE_INVALID_STATUS", `status line ${quote(lines[0] as string)}`);
    const code = Number(status[2]);
    if (code < 100) throw malformed("HPE_INVALID_STATUS", `status ${status[2]}`);
    const raw: string[] = [];
    let length: number | undefined;
    let chunked: boolean | undefined;
    let close = status[1] === "0";
    let keepAliveMs = DEFAULT_IDLE_MS;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(":");
      const name = colon > 0 ? line.slice(0, colon) : "";
      if (!TOKEN.test(name)) throw malformed("HPE_INVALID_HEADER_TOKEN", `header line ${quote(line)}`);
      let start = colon + 1;
      let end = line.length;
      while (start < end && isBlank(line.charCodeAt(start))) start++;
      while (end > start && isBlank(line.charCodeAt(end - 1))) end--;
      const value = line.slice(start, end);
      if (BAD_FIELD_VALUE.test(value)) throw malformed("HPE_INVALID_HEADER_TOKEN", `header ${name}'s value`);
      raw.push(name, value);
      switch (name.length) {
        case 10: {
          const lower = name.toLowerCase();
          if (lower === "connection") {
            if (CLOSE.test(value)) close = true;
            else if (status[1] === "0" && KEEP_ALIVE.test(value)) close = false;
          } else if (lower === "keep-alive") {
            const hint = TIMEOUT_HINT.exec(value);
            if (hint) keepAliveMs = Math.min(Number(hint[1]) * 1000 - 1000, MAX_IDLE_MS);
          }
          break;
        }
        case 14:
          if (name.toLowerCase() === "content-length") {
            // Repeated identical values (as `2, 2` or as several headers) are one length.
            for (const one of DIGITS.test(value) ? [value] : value.split(",")) {
              const digits = one.trim();
              if (!DIGITS.test(digits) || (length !== undefined && length !== Number(digits))) {
                throw malformed("HPE_INVALID_CONTENT_LENGTH", `Content-Length ${quote(value)}`);
              }
              length = Number(digits);
            }
          }
          break;
        case 17:
          if (name.toLowerCase() === "transfer-encoding") {
            // The last coding decides; several headers add up.
            const codings = value.split(",");
            chunked = (codings[codings.length - 1] as string).trim().toLowerCase() === "chunked";
          }
          break;
      }
    }
    if (code < 200) {
      if (code === 101)
        throw malformed("HPE_UNEXPECTED_UPGRADE", "a 101 switch of protocols nobody asked for");
      return; // an interim answer: the final one follows
    }
    this.#reusable = !close;
    this.#keepAliveMs = keepAliveMs;
    exchange.headArrived(code, status[3] ?? "", raw);
    if (this.#exchange !== exchange) return;
    if (code === 204 || code === 304 || exchange.method === "HEAD") {
      this.#state = FIXED;
      this.#remaining = 0;
      this.#complete(exchange, false);
    } else if (chunked !== undefined) {
      // With Content-Length as well, chunked wins, and the socket is not trusted again.
      if (length !== undefined) this.#reusable = false;
      if (chunked) this.#state = CHUNK_SIZE;
      else {
        this.#state = UNTIL_CLOSE;
        this.#reusable = false;
      }
    } else if (length !== undefined) {
      this.#state = FIXED;
      this.#remaining = length;
      if (length === 0) this.#complete(exchange, false);
    } else {
      this.#state = UNTIL_CLOSE;
      this.#reusable = false;
    }
  }

  /** The response was read to its end: the socket goes back to the pool (or away), then the exchange ends. */
  #complete(exchange: Exchange, more: boolean): void {
    this.#exchange = undefined;
    this.#state = IDLE;
    this.#partial = undefined;
    this.#reused = true;
    // Paused for a consumer that had not asked for the body yet (the last read may both pause and complete).
    if (this.socket.isPaused()) this.socket.resume();
    if (this.#reusable && !more) this.origin.release(this, this.#keepAliveMs);
    else this.socket.destroy();
    exchange.completed();
  }
}

function isBlank(code: number): boolean {
  return code === 32 || code === 9;
}

function malformed(code: string, what: string): Error {
  return Object.assign(new Error(`the upstream sent a malformed HTTP response: ${what}`), { code });
}

function hangUp(): Error {
  return Object.assign(new Error("the upstream closed the connection before the response was complete"), {
    code: "ECONNRESET",
  });
}

function quote(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}
