/**
 * A lean HTTP/1.1 front for the gateway's listener (issue 15): a `net.Server` that parses requests itself and
 * serves the one hot case, a POST to the MCP path with a Content-Length body, without node:http. A node:http
 * server answering a small POST cost about twice the CPU per request of a hand-written one (91 vs 42 µs hot,
 * 218-233 vs 128-147 µs with cold caches): IncomingMessage and its Readable, ServerResponse and its header
 * bookkeeping, llhttp's callbacks into JS. The upstream side made the same move (upstreams/http1.ts).
 *
 * - Served here: `POST <path>` or `POST <path>?…` over HTTP/1.1 with Host, one valid Content-Length, no
 *   Transfer-Encoding, Expect or Upgrade, no repeated header name, at most MAX_HEADERS headers and a head of
 *   at most MAX_HEAD bytes. Everything else (other methods and paths, GET streams, HTTP/1.0, chunked bodies,
 *   100-continue, WebSocket upgrades, anything malformed) is handed over, with the bytes already read, to
 *   the node:http server `fallback` for the rest of the connection's life (the httpolyglot pattern), which
 *   answers as it always did, errors (400, 431, …) included. A request is only ever served here if node would
 *   have accepted it and parsed it the same way; when in doubt, node decides.
 * - Requests on a connection are answered in order: while one is being answered, what follows is held (the
 *   socket is paused past MAX_HELD) and parsed once its response ended.
 * - The handler gets an `Http1Request` (headers as node gives them, the body already read) and an
 *   `Http1Response`, the subset of ServerResponse the MCP code uses (`HttpRequestLike`, `HttpResponseLike`).
 *   A response with a known length (`end(body)`, or a content-length header) leaves in one socket write, head
 *   and body; one that streams (`write`, `flushHeaders`) uses chunked encoding. 'close' fires once, after the
 *   response ended or when the connection closed first (how a client's disconnect cancels its call).
 * - Limits and timers as node's defaults, read from `fallback` (keepAliveTimeout, headersTimeout): one timer
 *   per connection, refreshed when a response ends, closes it after keepAliveTimeout idle, and answers 408 to
 *   a request whose head and body did not arrive within headersTimeout. A body over `maxBodyBytes` is not
 *   read: the request goes to the handler without it (it answers 413) and the connection closes after.
 */
import type { IncomingHttpHeaders, Server as NodeHttpServer, OutgoingHttpHeaders } from "node:http";
import { STATUS_CODES } from "node:http";
import net from "node:net";

/** What the MCP code reads of a request: node's IncomingMessage, or the front's own. */
export interface HttpRequestLike {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  /** Lower-case names, values as node gives them. */
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string | undefined };
}

/** What the MCP code does with a response: node's ServerResponse, or the front's own. */
export interface HttpResponseLike {
  /** The status written, or to be written (200 until writeHead). */
  readonly statusCode: number;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  /** Bytes written and not yet handed to the network (a client that does not read makes it grow). */
  readonly writableLength: number;
  writeHead(status: number, headers?: OutgoingHttpHeaders): this;
  write(chunk: string): boolean;
  end(chunk?: string): this;
  flushHeaders(): void;
  destroy(): void;
  on(event: "close", listener: () => void): this;
  once(event: "close", listener: () => void): this;
  off(event: "close", listener: () => void): this;
}

/** Largest request head served here: node's default maxHeaderSize (a larger one goes to node: 431). */
const MAX_HEAD = 16 * 1024;
/** More headers than this: node decides (it keeps only the first 1000 name/value pairs). */
const MAX_HEADERS = 100;
/** Bytes held behind a request being answered (pipelined requests) before the socket is paused. */
const MAX_HELD = 64 * 1024;
/** Content-Length digits accepted here (node's parser takes more, up to 2^64; such bodies are refused). */
const MAX_LENGTH_DIGITS = 15;

const CRLF2 = Buffer.from("\r\n\r\n");
const VERSION = Buffer.from(" HTTP/1.1\r\n");
const RESPONSE_408 = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n";

/** Bytes by class, so the parser needs no regex: header name (tchar), field value, request target. */
const TOKEN = new Uint8Array(256);
const VALUE = new Uint8Array(256);
const TARGET = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  TOKEN[c] = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(ch) ? 1 : 0;
  // HTAB, SP, visible ASCII and obs-text (node reads them as latin1); no CR, LF or other controls.
  VALUE[c] = c === 9 || (c >= 0x20 && c !== 0x7f) ? 1 : 0;
  // Visible ASCII only: anything else in a target is node's to accept or refuse.
  TARGET[c] = c > 0x20 && c < 0x7f ? 1 : 0;
}

/** Response header names and values node:http would refuse (it throws; so does this front). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const NOT_ASCII_VALUE = /[^\t\x20-\x7e]/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

export interface Http1FrontOptions {
  /** The node:http server that takes over every connection the front does not serve itself. */
  fallback: NodeHttpServer;
  /** The path whose POSTs are served here (with or without a query string), e.g. `/mcp`. */
  path: string;
  /** Bodies larger than this are not read (the request reaches the handler without one). */
  maxBodyBytes: number;
  handle(req: Http1Request, res: Http1Response): void;
}

/** What every connection of one front shares. */
interface Shared {
  readonly options: Http1FrontOptions;
  /** `POST <path>`, the bytes a served request starts with. */
  readonly prefix: Buffer;
  readonly connections: Set<Connection>;
}

/** The listener: a net.Server whose connections are served here or handed over to `fallback`. */
export class Http1Front {
  readonly server: net.Server;
  readonly #shared: Shared;

  constructor(options: Http1FrontOptions) {
    this.#shared = {
      options,
      prefix: Buffer.from(`POST ${options.path}`, "latin1"),
      connections: new Set(),
    };
    // allowHalfOpen and noDelay as node:http's own listener: handed-over sockets behave as they always did.
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      this.#shared.connections.add(new Connection(this.#shared, socket));
    });
    // node:http starts its connection tracking (headersTimeout and requestTimeout checks, closeAllConnections)
    // when it starts listening; it never listens itself here, so it is told when the front does.
    this.server.on("listening", () => options.fallback.emit("listening"));
  }

  /** Connections served here now (handed-over ones are node's). */
  get connectionCount(): number {
    return this.#shared.connections.size;
  }

  /**
   * Stops accepting and destroys every connection, served here or handed over (node's closeAllConnections,
   * as the gateway shut down before). Resolves once the listener is closed and its connections are gone.
   */
  close(): Promise<void> {
    const { fallback } = this.#shared.options;
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const conn of this.#shared.connections) conn.socket.destroy();
      fallback.close();
      fallback.closeAllConnections();
    });
  }
}

/** A request served here: method, target, headers, and the body read whole. */
export class Http1Request implements HttpRequestLike {
  readonly method = "POST";
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly socket: net.Socket;
  /** Its Content-Length. */
  readonly length: number;
  /** The body; undefined when it is longer than maxBodyBytes (then it is not read, see readBody). */
  body: Buffer | undefined;

  constructor(url: string, headers: IncomingHttpHeaders, socket: net.Socket, length: number) {
    this.url = url;
    this.headers = headers;
    this.socket = socket;
    this.length = length;
  }
}

/** The body as text, or undefined when it is over `max` bytes (node's readBody does the same for its own). */
export function leanBody(req: Http1Request, max: number): string | undefined {
  const body = req.body;
  return body === undefined || body.length > max ? undefined : body.toString();
}

// Connection states.
/** Reading a request head (or waiting for one). */
const HEAD = 0;
/** Reading a body of known length. */
const BODY = 1;
/** A request is being answered: what arrives is held. */
const BUSY = 2;
/** The last response was sent and the socket ended: what arrives is dropped until the client closes. */
const CLOSING = 3;
/** Closed, or handed over to node. */
const GONE = 4;

/** One client connection while the front serves it. */
class Connection {
  readonly socket: net.Socket;
  readonly #shared: Shared;
  #state = HEAD;
  /** Bytes of a head not complete yet. */
  #partial: Buffer | undefined;
  /** The request whose body is being read, its parts so far and the bytes still due. */
  #request: Http1Request | undefined;
  #parts: Buffer[] = [];
  #remaining = 0;
  /** Bytes that arrived behind the request being answered. */
  #held: Buffer[] | undefined;
  #heldBytes = 0;
  /** The response being written. */
  #response: Http1Response | undefined;
  /** Close after the response being written (the client asked, or its body was not read). */
  close = false;
  /** When the request being read began (ms since the epoch); 0 when idle after a response. */
  #since = Date.now();
  readonly #idleMs: number;
  readonly #headersMs: number;
  /** The one timer: keep-alive while idle, the head and body deadline while reading a request. */
  readonly #timer: NodeJS.Timeout | undefined;
  /** `connection` and `keep-alive` lines of a response that keeps the connection. */
  readonly keepAliveLines: string;

  constructor(shared: Shared, socket: net.Socket) {
    this.#shared = shared;
    this.socket = socket;
    const { fallback } = shared.options;
    this.#idleMs = fallback.keepAliveTimeout;
    this.#headersMs = fallback.headersTimeout;
    // As node's server: the client learns how long an idle connection stays open, and reuses it only that long.
    this.keepAliveLines =
      this.#idleMs > 0
        ? `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(this.#idleMs / 1000)}\r\n`
        : "connection: keep-alive\r\n";
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("error", ignore); // 'close' follows
    socket.on("close", this.#onClose);
    const period = this.#idleMs > 0 ? this.#idleMs : this.#headersMs;
    this.#timer = period > 0 ? setTimeout(this.#onTimer, period).unref() : undefined;
  }

  readonly #onData = (chunk: Buffer): void => {
    switch (this.#state) {
      case HEAD:
      case BODY:
        this.#parse(chunk);
        return;
      case BUSY:
        if (this.close) return; // nothing after this request will be served
        if (this.#held) this.#held.push(chunk);
        else this.#held = [chunk];
        this.#heldBytes += chunk.length;
        if (this.#heldBytes > MAX_HELD) this.socket.pause();
        return;
    }
  };

  /** Reads the next request from what arrived; serves it, or hands the connection over. */
  #parse(chunk: Buffer): void {
    let buf = chunk;
    if (this.#state === BODY) return void this.#body(buf, 0);
    // A head in pieces: joined, and searched again only where the new bytes could complete it.
    const before = this.#partial;
    let from = 0;
    if (before) {
      from = before.length;
      buf = Buffer.concat([before, chunk]);
      this.#partial = undefined;
    }
    const end = buf.indexOf(CRLF2, Math.max(0, from - 3));
    if (end === -1) {
      if (buf.length > MAX_HEAD || !this.#plausible(buf, from)) return void this.#handOver(buf);
      if (!before) this.#since = Date.now(); // a request began
      this.#partial = buf;
      return;
    }
    if (end + 4 > MAX_HEAD) return void this.#handOver(buf);
    const req = this.#head(buf, end);
    if (!req) return void this.#handOver(buf);
    const start = end + 4;
    if (req.length > this.#shared.options.maxBodyBytes) {
      // Not read: the handler refuses it (413), and the connection closes after (what follows is dropped).
      this.close = true;
      return void this.#dispatch(req);
    }
    if (buf.length - start >= req.length) {
      req.body = buf.subarray(start, start + req.length);
      if (buf.length > start + req.length) this.#hold(buf.subarray(start + req.length));
      return void this.#dispatch(req);
    }
    if (!before) this.#since = Date.now();
    this.#state = BODY;
    this.#request = req;
    this.#parts = [];
    this.#remaining = req.length;
    this.#body(buf, start);
  }

  /** Body bytes from `pos`; the request is served once they are all here. */
  #body(buf: Buffer, pos: number): void {
    const take = Math.min(this.#remaining, buf.length - pos);
    if (take > 0) this.#parts.push(pos === 0 && take === buf.length ? buf : buf.subarray(pos, pos + take));
    this.#remaining -= take;
    if (this.#remaining > 0) return;
    const req = this.#request as Http1Request;
    const parts = this.#parts;
    this.#request = undefined;
    this.#parts = [];
    req.body = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    if (pos + take < buf.length) this.#hold(buf.subarray(pos + take));
    this.#dispatch(req);
  }

  /**
   * Whether an incomplete head may still be one served here: it starts as `POST <path>` followed by a space or
   * `?`, and has no bare LF (node refuses those at once; waiting for more would only delay its answer).
   */
  #plausible(buf: Buffer, from: number): boolean {
    const prefix = this.#shared.prefix;
    const n = Math.min(buf.length, prefix.length);
    for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return false;
    if (buf.length > n && buf[n] !== 32 && buf[n] !== 63) return false;
    for (let lf = buf.indexOf(10, from); lf !== -1; lf = buf.indexOf(10, lf + 1)) {
      if (lf === 0 || buf[lf - 1] !== 13) return false;
    }
    return true;
  }

  /**
   * The request whose head is `buf[0, end)` (then CRLF CRLF), or undefined when it is not one served here:
   * not `POST <path>[?query] HTTP/1.1`, no Host, no valid Content-Length, Transfer-Encoding, Expect, Upgrade,
   * a repeated header name, a malformed line.
   */
  #head(buf: Buffer, end: number): Http1Request | undefined {
    const { prefix, options } = this.#shared;
    let i = 0;
    for (; i < prefix.length; i++) if (buf[i] !== prefix[i]) return undefined;
    let url = options.path;
    if (buf[i] === 63) {
      while (TARGET[buf[i] as number] === 1) i++;
      url = buf.toString("latin1", 5, i);
    }
    for (let v = 0; v < VERSION.length; v++, i++) if (buf[i] !== VERSION[v]) return undefined;
    const headers: IncomingHttpHeaders = {};
    let length = -1;
    let host = false;
    let count = 0;
    let close = false;
    // Each line: a token, a colon, optional whitespace, the value (trimmed), CRLF. The last ends at `end`.
    while (i < end + 2) {
      const nameStart = i;
      while (TOKEN[buf[i] as number] === 1) i++;
      if (i === nameStart || buf[i] !== 58) return undefined;
      const nameEnd = i++;
      while (buf[i] === 32 || buf[i] === 9) i++;
      const valueStart = i;
      while (VALUE[buf[i] as number] === 1) i++;
      if (buf[i] !== 13 || buf[i + 1] !== 10) return undefined;
      let valueEnd = i;
      while (valueEnd > valueStart && (buf[valueEnd - 1] === 32 || buf[valueEnd - 1] === 9)) valueEnd--;
      i += 2;
      if (++count > MAX_HEADERS) return undefined;
      const name = buf.toString("latin1", nameStart, nameEnd).toLowerCase();
      // Repeated names are joined, or dropped, by rules of node's: those requests are node's.
      if (headers[name] !== undefined) return undefined;
      const value = buf.toString("latin1", valueStart, valueEnd);
      headers[name] = value;
      switch (name) {
        case "host":
          host = true;
          break;
        case "content-length":
          length = digits(buf, valueStart, valueEnd);
          if (length === -1) return undefined;
          break;
        case "connection": {
          const wants = connectionClose(value);
          if (wants === undefined) return undefined;
          close = wants;
          break;
        }
        case "transfer-encoding":
        case "expect":
        case "upgrade":
          return undefined;
      }
    }
    // Without Host node answers 400; without Content-Length the body is empty, a request for node too.
    if (!host || length === -1) return undefined;
    if (close) this.close = true;
    return new Http1Request(url, headers, this.socket, length);
  }

  #hold(rest: Buffer): void {
    this.#held = [rest];
    this.#heldBytes = rest.length;
  }

  #dispatch(req: Http1Request): void {
    this.#state = BUSY;
    const res = new Http1Response(this);
    this.#response = res;
    try {
      this.#shared.options.handle(req, res);
    } catch {
      // The handler's own failures are its to answer; one that escapes leaves nothing sane on this socket.
      this.socket.destroy();
    }
  }

  /** The response was written to its end (called by it). */
  responded(res: Http1Response): void {
    this.#response = undefined;
    if (this.close) {
      this.#state = CLOSING;
      this.#held = undefined;
      this.socket.end();
    }
    // The next request is read, and 'close' fires, once the handler that ended this one has returned.
    process.nextTick(afterResponse, this, res);
  }

  /** After a response: idle again (the keep-alive time starts), and any request that came meanwhile is read. */
  next(): void {
    this.#timer?.refresh();
    if (this.#state !== BUSY) return;
    this.#state = HEAD;
    this.#since = 0;
    const held = this.#held;
    if (held) {
      this.#held = undefined;
      this.#heldBytes = 0;
      this.#parse(held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held));
    }
    if ((this.#state === HEAD || this.#state === BODY) && this.socket.isPaused()) this.socket.resume();
  }

  /**
   * From now on node:http serves this socket: the bytes read but not served go back in front of the stream,
   * and node's server takes the socket as if it had accepted it (it then reads the handle itself).
   */
  #handOver(unread: Buffer): void {
    this.#forget();
    const { socket } = this;
    socket.off("data", this.#onData);
    socket.off("end", this.#onEnd);
    socket.off("error", ignore);
    socket.off("close", this.#onClose);
    socket.pause();
    if (unread.length > 0) socket.unshift(unread);
    this.#shared.options.fallback.emit("connection", socket);
    socket.resume();
  }

  #forget(): void {
    this.#state = GONE;
    this.#partial = undefined;
    this.#held = undefined;
    this.#parts = [];
    clearTimeout(this.#timer);
    this.#shared.connections.delete(this);
  }

  /**
   * The client ended its side. node:http's server (httpAllowHalfOpen false) then ends the connection at once,
   * answers still due included: so does the front, and a call in progress sees its response close.
   */
  readonly #onEnd = (): void => {
    if (this.#state === GONE) return;
    if (this.#state === HEAD && this.#partial) return void this.socket.destroy(); // a request cut short
    this.#state = CLOSING;
    this.#partial = undefined;
    this.#held = undefined;
    this.socket.end();
  };

  readonly #onClose = (): void => {
    this.#forget();
    const res = this.#response;
    this.#response = undefined;
    res?.lost();
  };

  readonly #onTimer = (): void => {
    switch (this.#state) {
      case BUSY:
      case GONE:
        return; // armed again when the response ends
      case CLOSING:
        this.socket.destroy(); // the client did not close its side in time
        return;
    }
    if (this.#since === 0 && this.#partial === undefined) {
      if (this.#idleMs > 0)
        this.socket.destroy(); // idle past the keep-alive time
      else this.#timer?.refresh();
      return;
    }
    if (this.#headersMs > 0 && Date.now() - this.#since >= this.#headersMs) {
      // The request (or the first one) did not arrive in time: node's 408, and the connection closes.
      this.#state = CLOSING;
      this.#partial = undefined;
      this.#request = undefined;
      this.#parts = [];
      this.socket.end(RESPONSE_408);
    }
    this.#timer?.refresh();
  };
}

function afterResponse(conn: Connection, res: Http1Response): void {
  res.finished();
  conn.next();
}

function ignore(): void {}

/** A Content-Length value's number, or -1 when it is not 1 to MAX_LENGTH_DIGITS digits. */
function digits(buf: Buffer, start: number, end: number): number {
  if (end === start || end - start > MAX_LENGTH_DIGITS) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  return n;
}

/** Whether a Connection header asks to close; undefined when it asks for an upgrade (node's to serve). */
function connectionClose(value: string): boolean | undefined {
  const lower = value.toLowerCase();
  if (lower === "keep-alive") return false;
  if (lower === "close") return true;
  let close = false;
  for (const token of lower.split(",")) {
    const t = token.trim();
    if (t === "close") close = true;
    else if (t === "upgrade") return undefined;
  }
  return close;
}

/** `HTTP/1.1 <status> <reason>\r\n` by status. */
const statusLines: string[] = [];
function statusLine(status: number): string {
  let line = statusLines[status];
  if (line === undefined) {
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw new RangeError(`invalid HTTP status code ${status}`);
    }
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "unknown"}\r\n`;
    statusLines[status] = line;
  }
  return line;
}

/** The Date header line, made once a second (node's server sends one too). */
let dateLine = "";
let dateUntil = 0;
function date(): string {
  const now = Date.now();
  if (now >= dateUntil) {
    dateUntil = now - (now % 1000) + 1000;
    dateLine = `date: ${new Date(now).toUTCString()}\r\n`;
  }
  return dateLine;
}

/** The response to a request served by the front; see HttpResponseLike. Strings only, written as UTF-8. */
export class Http1Response implements HttpResponseLike {
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  /** The connection while this response is its current one. */
  #conn: Connection | undefined;
  #status = 200;
  /** The handler's header lines (fieldLines). */
  #fields = "";
  #dated = false;
  #chunked = false;
  /** Bytes still due by the content-length header the handler set (undefined: none set). */
  #due: number | undefined;
  /** A status that has no body (204, 304, 1xx). */
  #bodiless = false;
  /** The head has non-ASCII (latin1) bytes: it cannot be joined to a UTF-8 body as one string. */
  #latin1 = false;
  #closed = false;
  #listeners: Array<() => void> | undefined;

  constructor(conn: Connection) {
    this.#conn = conn;
  }

  get statusCode(): number {
    return this.#status;
  }

  get writableLength(): number {
    return this.#conn?.socket.writableLength ?? 0;
  }

  writeHead(status: number, headers?: OutgoingHttpHeaders): this {
    if (this.headersSent) {
      throw Object.assign(new Error("Cannot write headers after they are sent to the client"), {
        code: "ERR_HTTP_HEADERS_SENT",
      });
    }
    statusLine(status); // throws on a bad status, as node's writeHead does
    const fields = fieldLines(headers);
    this.#status = status;
    this.#fields = fields.lines;
    this.#due = fields.length;
    this.#dated = fields.dated;
    this.#latin1 = fields.latin1;
    return this;
  }

  write(chunk: string): boolean {
    const socket = this.#socket();
    if (!socket || this.writableEnded) return false;
    const head = this.headersSent ? "" : this.#head(undefined);
    return this.#send(socket, head, this.#frame(chunk));
  }

  end(chunk = ""): this {
    if (this.writableEnded) return this;
    this.writableEnded = true;
    const socket = this.#socket();
    const conn = this.#conn;
    if (!socket || !conn) return this;
    if (!this.headersSent) {
      // The usual answer: head and whole body, its length counted once.
      const bytes = Buffer.byteLength(chunk);
      const head = this.#head(bytes);
      if (this.#due !== undefined) this.#due -= bytes;
      this.#send(socket, head, this.#bodiless ? "" : chunk);
    } else if (this.#chunked) {
      socket.write(`${this.#frame(chunk)}0\r\n\r\n`);
    } else {
      const body = this.#frame(chunk);
      if (body.length > 0) socket.write(body);
    }
    // A body that does not match its declared length leaves the connection out of step: it is not reused.
    if (this.#due !== undefined && this.#due !== 0) conn.close = true;
    this.writableFinished = true;
    this.#conn = undefined;
    conn.responded(this);
    return this;
  }

  flushHeaders(): void {
    const socket = this.#socket();
    if (socket && !this.headersSent) socket.write(this.#head(undefined), "latin1");
  }

  destroy(): void {
    // Once ended, the socket may carry the next request: only a response still in progress takes it down.
    this.#conn?.socket.destroy();
  }

  on(event: "close", listener: () => void): this {
    if (event === "close" && !this.#closed) {
      if (this.#listeners) this.#listeners.push(listener);
      else this.#listeners = [listener];
    }
    return this;
  }

  /** 'close' fires once: `once` is `on`. */
  once(event: "close", listener: () => void): this {
    return this.on(event, listener);
  }

  off(event: "close", listener: () => void): this {
    const listeners = this.#listeners;
    const at = event === "close" && listeners ? listeners.indexOf(listener) : -1;
    if (at !== -1) listeners?.splice(at, 1);
    return this;
  }

  /** The response ended and its connection moved on: 'close'. */
  finished(): void {
    this.#emitClose();
  }

  /** The connection closed before the response ended: 'close' now. */
  lost(): void {
    this.#conn = undefined;
    this.#emitClose();
  }

  #emitClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.destroyed = true;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }

  #socket(): net.Socket | undefined {
    const conn = this.#conn;
    return conn && !this.destroyed && conn.socket.writable ? conn.socket : undefined;
  }

  /**
   * Body bytes as they go on the wire: a chunk of a chunked body (nothing for an empty one, which would end
   * it), nothing for a status without a body, else the bytes as they are (counted against a declared length).
   */
  #frame(chunk: string): string {
    if (chunk.length === 0 || this.#bodiless) return "";
    if (this.#chunked) return `${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`;
    if (this.#due !== undefined) this.#due -= Buffer.byteLength(chunk);
    return chunk;
  }

  /** Head and body in one write: one string when the head is ASCII, else two writes corked into one. */
  #send(socket: net.Socket, head: string, body: string): boolean {
    if (head === "") return body.length > 0 ? socket.write(body) : true;
    if (!this.#latin1) return socket.write(body.length > 0 ? head + body : head);
    socket.cork();
    socket.write(head, "latin1");
    const ok = body.length > 0 ? socket.write(body) : true;
    socket.uncork();
    return ok;
  }

  /**
   * The head, framed for what follows: `length` bytes (a whole body given to `end`), or a stream (chunked
   * unless the handler set a content-length). Connection management and framing headers are the front's own.
   */
  #head(length: number | undefined): string {
    const conn = this.#conn as Connection;
    this.headersSent = true;
    let head = statusLine(this.#status) + this.#fields;
    if (!this.#dated) head += date();
    head += conn.close ? "connection: close\r\n" : conn.keepAliveLines;
    const status = this.#status;
    if (status === 204 || status === 304 || status < 200) {
      this.#bodiless = true;
      return `${head}\r\n`;
    }
    if (this.#due !== undefined) return `${head}content-length: ${this.#due}\r\n\r\n`;
    if (length !== undefined) return `${head}content-length: ${length}\r\n\r\n`;
    this.#chunked = true;
    return `${head}transfer-encoding: chunked\r\n\r\n`;
  }
}

/**
 * The handler's headers as lines, checked as node checks them (it throws on a bad name or value, so does
 * this). Connection management and framing are the front's own: `connection`, `keep-alive` and
 * `transfer-encoding` are dropped, `content-length` is returned apart.
 */
function fieldLines(headers: OutgoingHttpHeaders | undefined): {
  lines: string;
  length: number | undefined;
  dated: boolean;
  latin1: boolean;
} {
  let lines = "";
  let length: number | undefined;
  let dated = false;
  let latin1 = false;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === "date") dated = true;
        break;
      case 10: {
        const lower = name.toLowerCase();
        if (lower === "connection" || lower === "keep-alive") continue;
        break;
      }
      case 14:
        if (name.toLowerCase() === "content-length") {
          length = Number(value);
          if (!Number.isSafeInteger(length) || length < 0) {
            throw new TypeError(`invalid content-length ${String(value)}`);
          }
          continue;
        }
        break;
      case 17:
        if (name.toLowerCase() === "transfer-encoding") continue;
        break;
    }
    if (!HEADER_NAME.test(name)) throw new TypeError(`invalid HTTP header name ${JSON.stringify(name)}`);
    for (const one of Array.isArray(value) ? value : [value]) {
      const text = String(one);
      if (NOT_ASCII_VALUE.test(text)) {
        if (BAD_VALUE.test(text))
          throw new TypeError(`invalid character in the value of HTTP header ${name}`);
        latin1 = true;
      }
      lines += `${name}: ${text}\r\n`;
    }
  }
  return { lines, length, dated, latin1 };
}
