/**
 * Raw HTTP/1.1 over a socket, for tests of the gateway's listener (src/server/http1-server.ts): exact request
 * bytes out, the responses read back from the bytes received (Content-Length, chunked, or until close).
 */
import { once } from "node:events";
import net from "node:net";

export interface RawResponse {
  status: number;
  /** Lower-case names; a repeated one keeps its last value. */
  headers: Record<string, string>;
  body: string;
  /** The whole response as received. */
  raw: string;
}

/**
 * The complete responses at the start of `bytes` (latin1 text). `closed`: the connection ended, so a body
 * without framing runs to the end. What is left is an incomplete response, or bytes that are not one.
 */
export function parseResponses(text: string, closed: boolean): { responses: RawResponse[]; rest: string } {
  const responses: RawResponse[] = [];
  let pos = 0;
  for (;;) {
    const end = text.indexOf("\r\n\r\n", pos);
    if (end === -1) break;
    const lines = text.slice(pos, end).split("\r\n");
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] as string);
    if (!status) break;
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    let next = end + 4;
    let body = "";
    const code = Number(status[1]);
    if (code < 200 || code === 204 || code === 304) {
      // no body
    } else if (headers["transfer-encoding"] === "chunked") {
      let at = next;
      let done = false;
      for (;;) {
        const lineEnd = text.indexOf("\r\n", at);
        if (lineEnd === -1) break;
        const size = Number.parseInt(text.slice(at, lineEnd), 16);
        if (Number.isNaN(size))
          throw new Error(`bad chunk size line ${JSON.stringify(text.slice(at, lineEnd))}`);
        if (size === 0) {
          if (text.startsWith("\r\n", lineEnd + 2)) {
            at = lineEnd + 4;
            done = true;
          }
          break;
        }
        if (text.length < lineEnd + 2 + size + 2) break;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        if (text.slice(lineEnd + 2 + size, lineEnd + 4 + size) !== "\r\n")
          throw new Error("chunk not ended by CRLF");
        at = lineEnd + 4 + size;
      }
      if (!done) break;
      next = at;
    } else if (headers["content-length"] !== undefined) {
      const length = Number(headers["content-length"]);
      if (text.length < next + length) break;
      body = text.slice(next, next + length);
      next += length;
    } else {
      if (!closed) break;
      body = text.slice(next);
      next = text.length;
    }
    responses.push({
      status: code,
      headers,
      body: Buffer.from(body, "latin1").toString(),
      raw: text.slice(pos, next),
    });
    pos = next;
  }
  return { responses, rest: text.slice(pos) };
}

/** A client connection that collects what it receives. */
export class RawClient {
  readonly socket: net.Socket;
  received = "";
  closed = false;
  readonly #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (data: Buffer) => {
      this.received += data.toString("latin1");
      this.#wake();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect(port, "127.0.0.1");
    await once(socket, "connect");
    return new RawClient(socket);
  }

  write(bytes: string | Buffer): void {
    this.socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes);
  }

  get responses(): RawResponse[] {
    return parseResponses(this.received, this.closed).responses;
  }

  /** Resolves once `n` complete responses arrived (rejects if the connection closes before). */
  async responsesOf(n: number): Promise<RawResponse[]> {
    for (;;) {
      const { responses } = parseResponses(this.received, this.closed);
      if (responses.length >= n) return responses;
      if (this.closed) {
        throw new Error(
          `closed after ${responses.length} of ${n} responses: ${JSON.stringify(this.received)}`,
        );
      }
      await this.#change();
    }
  }

  /** Resolves once the server closed the connection. */
  async whenClosed(): Promise<void> {
    while (!this.closed) await this.#change();
  }

  #change(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** A POST with a Content-Length body: the request the front serves itself. */
export function post(body: string, path = "/mcp", extra = ""): string {
  const bytes = Buffer.byteLength(body);
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}Content-Length: ${bytes}\r\n\r\n${Buffer.from(body).toString("latin1")}`;
}
