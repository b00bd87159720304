/**
 * The HTTP/1.1 client of the upstream transport (src/upstreams/http1.ts) against real node:http servers and
 * raw `net` servers writing exact bytes: framing split at every byte boundary, 1xx, 204, close-delimited
 * bodies, keep-alive reuse and its limits, the stale-socket retry, malformed answers, cancellation, SSE
 * delivered as it arrives, https with a self-signed certificate, IPv6.
 */
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import net, { type AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BodyTooLargeError,
  type Exchange,
  Http1Target,
  RequestHead,
  request,
} from "../../../src/upstreams/http1.ts";

const closers: Array<() => void> = [];
afterEach(() => {
  vi.useRealTimers();
  for (const close of closers.splice(0)) close();
});

interface Sent {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

function send(url: string, sent: Sent = {}): Promise<Exchange> {
  const head = new RequestHead(new Http1Target(new URL(url)), sent.method ?? "GET", sent.headers ?? {});
  return new Promise((resolve, reject) => request(head, sent.body, resolve, reject));
}

/** Sends `head` and waits until the exchange is over; a body nobody read yet stays held for a late reader. */
function settledExchange(head: RequestHead): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    let res: Exchange | undefined;
    request(
      head,
      undefined,
      (r) => (res = r),
      reject,
      () => resolve(res as Exchange),
    );
  });
}

function bodyOf(res: Exchange): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    res.read({
      data: (chunk) => parts.push(chunk),
      end: (error) => (error ? reject(error) : resolve(Buffer.concat(parts).toString())),
    });
  });
}

async function fetchText(url: string, sent?: Sent) {
  const res = await send(url, sent);
  return { res, body: await bodyOf(res) };
}

const failureOf = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (err: unknown) => err as Error & { code?: string },
  );

/** A node:http server on 127.0.0.1; `ports` are the client ports of the requests it served. */
async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const ports: number[] = [];
  const server = createServer((req, res) => {
    ports.push(req.socket.remotePort as number);
    handler(req, res);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  closers.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, ports, server };
}

/**
 * A raw server: reads requests (head and Content-Length body) and lets `answer` write exact bytes.
 * `requests` lists what it read, `sockets` its connections.
 */
async function rawServer(
  answer: (socket: net.Socket, index: number, request: string) => void,
  host = "127.0.0.1",
) {
  const requests: string[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.setNoDelay(true);
    socket.on("error", () => {});
    let pending = "";
    socket.on("data", (data: Buffer) => {
      pending += data.toString("latin1");
      for (;;) {
        const end = pending.indexOf("\r\n\r\n");
        if (end === -1) return;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(pending.slice(0, end))?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        const one = pending.slice(0, end + 4 + length);
        pending = pending.slice(one.length);
        requests.push(one);
        answer(socket, requests.length - 1, one);
      }
    });
  });
  server.listen(0, host);
  await once(server, "listening");
  closers.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  return { url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/mcp`, requests, sockets };
}

const closed = (socket: net.Socket) => (socket.destroyed ? Promise.resolve() : once(socket, "close"));
const tick = (ms = 2) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes `bytes` in two writes cut at `at`, a moment apart (so that they arrive as two reads). */
function writeSplit(socket: net.Socket, bytes: Buffer, at: number): void {
  socket.write(bytes.subarray(0, at));
  setTimeout(() => socket.write(bytes.subarray(at)), 2);
}

describe("http1 client: requests and framing", () => {
  it("sends the head, Host, the caller's headers and Content-Length in one write, and reads the answer", async () => {
    let seen: IncomingMessage | undefined;
    let seenBody = "";
    const { url } = await httpServer((req, res) => {
      seen = req;
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => {
        seenBody += chunk;
      });
      req.on("end", () => res.writeHead(201, "Made", { "x-answer": "yes" }).end("done"));
    });
    const { res, body } = await fetchText(`${url}?q=1`, {
      method: "POST",
      headers: { "content-type": "application/json", "X-Key": "k" },
      body: '{"é":1}',
    });
    expect(res.status).toBe(201);
    expect(res.statusText).toBe("Made");
    expect(res.header("x-answer")).toBe("yes");
    expect(body).toBe("done");
    expect(seen?.url).toBe("/mcp?q=1");
    expect(seen?.headers).toMatchObject({
      host: new URL(url).host,
      "x-key": "k",
      "content-length": String(Buffer.byteLength('{"é":1}')),
    });
    expect(seenBody).toBe('{"é":1}');
  });

  it("refuses header names and values that cannot be sent, and headers the client sets itself", () => {
    const target = new Http1Target(new URL("http://127.0.0.1:1/"));
    expect(() => new RequestHead(target, "GET", { "x-a": "1\r\nx-b: 2" })).toThrow(/invalid character/);
    expect(() => new RequestHead(target, "GET", { "x-a": "nul\0" })).toThrow(/invalid character/);
    expect(() => new RequestHead(target, "GET", { "bad name": "1" })).toThrow(/invalid HTTP header name/);
    expect(() => new RequestHead(target, "GET", { "Content-Length": "1" })).toThrow(/set by the HTTP client/);
  });

  it("turns URL userinfo into Basic authorization unless an authorization header is given", async () => {
    const seen: Array<string | undefined> = [];
    const { url } = await httpServer((req, res) => {
      seen.push(req.headers.authorization);
      res.end();
    });
    const withUser = url.replace("http://", "http://us%40er:p%3Ass@");
    await fetchText(withUser);
    await fetchText(withUser, { headers: { authorization: "Bearer t" } });
    expect(seen).toEqual([`Basic ${Buffer.from("us@er:p:ss").toString("base64")}`, "Bearer t"]);
  });

  it("keeps the socket alive: sequential requests go out on one connection", async () => {
    const { url, ports } = await httpServer((_req, res) => res.end("ok"));
    for (let i = 0; i < 5; i++) expect((await fetchText(url)).body).toBe("ok");
    await fetchText(url, { method: "POST", body: "x" });
    expect(ports).toHaveLength(6);
    expect(new Set(ports).size).toBe(1);
  });

  it("opens a socket per request in flight", async () => {
    const waiting: ServerResponse[] = [];
    const { url, ports } = await httpServer((_req, res) => {
      waiting.push(res);
      if (waiting.length === 3) for (const one of waiting) one.end("ok");
    });
    const bodies = await Promise.all([fetchText(url), fetchText(url), fetchText(url)]);
    expect(bodies.map((b) => b.body)).toEqual(["ok", "ok", "ok"]);
    expect(new Set(ports).size).toBe(3);
  });

  it("reads a Content-Length answer cut at every byte boundary, on one kept-alive socket", async () => {
    const answer = Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world");
    const server = await rawServer((socket, index) => writeSplit(socket, answer, index + 1));
    for (let at = 1; at < answer.length; at++) {
      const { res, body } = await fetchText(server.url);
      expect([res.status, res.header("x-a"), body]).toEqual([200, "b", "hello world"]);
    }
    expect(server.sockets).toHaveLength(1);
  });

  it("reads a chunked answer with extensions and trailers cut at every byte boundary", async () => {
    const answer = Buffer.from(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6 ; a="b"\r\n world\r\n7\r\n é€!\r\n0\r\nX-Trailer: t\r\n\r\n',
    );
    const server = await rawServer((socket, index) => writeSplit(socket, answer, index + 1));
    for (let at = 1; at < answer.length; at++) {
      const { body } = await fetchText(server.url);
      expect(body).toBe("hello world é€!");
    }
    expect(server.sockets).toHaveLength(1);
  });

  it("reads a chunked answer without trailers, whole or in one-byte writes", async () => {
    const answer = Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    const server = await rawServer((socket, index) => {
      if (index === 0) return socket.write(answer);
      let at = 0;
      const next = () => {
        socket.write(answer.subarray(at, at + 1));
        if (++at < answer.length) setTimeout(next, 1);
      };
      next();
    });
    expect((await fetchText(server.url)).body).toBe("abc");
    expect((await fetchText(server.url)).body).toBe("abc");
    expect(server.sockets).toHaveLength(1);
  });

  it("reads a body delimited by the close of the connection, and does not reuse that socket", async () => {
    const server = await rawServer((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc");
      setTimeout(() => socket.end("def"), 2);
    });
    expect((await fetchText(server.url)).body).toBe("abcdef");
    expect((await fetchText(server.url)).body).toBe("abcdef");
    expect(server.sockets).toHaveLength(2);
  });

  it("skips 1xx answers before the final one, and fails on a 101 nobody asked for", async () => {
    const server = await rawServer((socket, index) => {
      if (index === 0) {
        socket.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
        setTimeout(() => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 2);
      } else socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
    });
    const { res, body } = await fetchText(server.url);
    expect([res.status, body]).toEqual([200, "ok"]);
    const err = await failureOf(send(server.url));
    expect(err.code).toBe("HPE_UNEXPECTED_UPGRADE");
  });

  it("reads 204 and 304 as bodiless, whatever their headers say, and reuses the socket", async () => {
    const server = await rawServer((socket, index) => {
      if (index === 0) socket.write("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n");
      else if (index === 1) socket.write("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n");
      else socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz");
    });
    expect((await fetchText(server.url)).body).toBe("");
    expect((await fetchText(server.url)).body).toBe("");
    expect((await fetchText(server.url)).body).toBe("z");
    expect(server.sockets).toHaveLength(1);
  });

  it("takes chunked over Content-Length, and does not reuse such a socket", async () => {
    const server = await rawServer((socket) =>
      socket.write(
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
      ),
    );
    expect((await fetchText(server.url)).body).toBe("hi");
    expect((await fetchText(server.url)).body).toBe("hi");
    expect(server.sockets).toHaveLength(2);
  });

  it("accepts repeated identical Content-Length values", async () => {
    const server = await rawServer((socket) =>
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2, 2\r\n\r\nok"),
    );
    expect((await fetchText(server.url)).body).toBe("ok");
  });

  it("does not reuse a socket after Connection: close, nor after HTTP/1.0 without keep-alive", async () => {
    const answers = [
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
      "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb",
      "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nc",
      "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nd",
    ];
    const server = await rawServer((socket, index) => socket.write(answers[index] as string));
    const bodies = [];
    for (let i = 0; i < answers.length; i++) bodies.push((await fetchText(server.url)).body);
    expect(bodies).toEqual(["a", "b", "c", "d"]);
    // a, b: a socket each; c and d share the third.
    expect(server.sockets).toHaveLength(3);
  });

  it("drops a socket that sent bytes after its answer, or while idle", async () => {
    const server = await rawServer((socket, index) => {
      if (index === 0) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA");
      else socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    expect((await fetchText(server.url)).body).toBe("ok");
    await closed(server.sockets[0] as net.Socket);
    expect((await fetchText(server.url)).body).toBe("ok");
    expect(server.sockets).toHaveLength(2);
    // Now idle and reusable: bytes nobody asked for make it unusable.
    (server.sockets[1] as net.Socket).write("HTTP/1.1 200 OK\r\n\r\n");
    await closed(server.sockets[1] as net.Socket);
    expect((await fetchText(server.url)).body).toBe("ok");
    expect(server.sockets).toHaveLength(3);
  });

  it("reads the body of a discarded answer to its end, so that its socket serves the next request", async () => {
    const { url, ports } = await httpServer((_req, res) => {
      res.write("a".repeat(1000));
      setTimeout(() => res.end("b"), 2);
    });
    const head = new RequestHead(new Http1Target(new URL(url)), "GET", {});
    await new Promise<void>((resolve, reject) => {
      request(
        head,
        undefined,
        (res) => res.discard(),
        reject,
        () => resolve(),
      );
    });
    await fetchText(url);
    expect(ports).toHaveLength(2);
    expect(new Set(ports).size).toBe(1);
  });

  it("holds a large body for a consumer that asks late, and reuses the socket once it is read", async () => {
    // Just over the client's 1 MiB high-water mark: the last read both pauses the socket and ends the body.
    const size = 1024 * 1024 + 1;
    const { url, ports } = await httpServer((_req, res) => res.end(Buffer.alloc(size, 97)));
    const head = new RequestHead(new Http1Target(new URL(url)), "GET", {});
    const res = await settledExchange(head);
    expect((await bodyOf(res)).length).toBe(size);
    expect((await fetchText(url)).body.length).toBe(size);
    expect(ports).toHaveLength(2);
    expect(ports[1]).toBe(ports[0]);
  });
});

describe("http1 client: a body over the reader's bound", () => {
  it("reads up to maxBytes, then fails the text without reusing the socket; the next request is served", async () => {
    const { url, ports } = await httpServer((req, res) => {
      // The first answer streams 4 MiB in 64 KiB pieces; the second is small.
      if (ports.length > 1) return void res.end("small");
      res.writeHead(200, { "content-type": "application/json" });
      let sent = 0;
      const pump = () => {
        while (sent < 64 && res.write(Buffer.alloc(64 * 1024, 120))) sent++;
        if (sent < 64) res.once("drain", pump);
        else res.end();
      };
      req.socket.on("error", () => {});
      pump();
    });
    const head = new RequestHead(new Http1Target(new URL(url)), "GET", {});
    const big = await new Promise<Exchange>((resolve, reject) => request(head, undefined, resolve, reject));
    const err = await failureOf(big.text(1024 * 1024));
    expect(err).toBeInstanceOf(BodyTooLargeError);
    expect(err.message).toBe("the answer's body is larger than 1048576 bytes; toolgate read no more of it");
    const next = await new Promise<Exchange>((resolve, reject) => request(head, undefined, resolve, reject));
    expect(await next.text(1024 * 1024)).toBe("small");
    expect(ports).toHaveLength(2);
    expect(ports[1]).not.toBe(ports[0]);
  });

  it("fails a body that arrived whole before anyone asked, if it is over the bound", async () => {
    const { url } = await httpServer((_req, res) => res.end("x".repeat(100)));
    const head = new RequestHead(new Http1Target(new URL(url)), "GET", {});
    const res = await settledExchange(head);
    await expect(res.text(99)).rejects.toBeInstanceOf(BodyTooLargeError);
    const again = await settledExchange(head);
    expect(await again.text(100)).toBe("x".repeat(100));
  });
});

describe("http1 client: malformed answers", () => {
  const cases: Array<[string, string, string]> = [
    ["a status line that is not HTTP/1.x", "HTTP/2 200 OK\r\n\r\n", "HPE_INVALID_STATUS"],
    ["a four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", "HPE_INVALID_STATUS"],
    ["garbage", "hello there\r\n\r\n", "HPE_INVALID_STATUS"],
    ["a header without a colon", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"],
    ["a space before the colon", "HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"],
    [
      "an obs-fold line",
      "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n",
      "HPE_INVALID_HEADER_TOKEN",
    ],
    ["a bare CR in a value", "HTTP/1.1 200 OK\r\nX-A: b\rc\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"],
    ["a NUL in a value", "HTTP/1.1 200 OK\r\nX-A: b\0\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"],
    [
      "a Content-Length not digits",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HPE_INVALID_CONTENT_LENGTH",
    ],
    [
      "differing Content-Lengths",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "HPE_INVALID_CONTENT_LENGTH",
    ],
    [
      "a chunk size not hex",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HPE_INVALID_CHUNK_SIZE",
    ],
    [
      "a chunk without its CRLF",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
      "HPE_INVALID_CHUNK_SIZE",
    ],
    [
      "a chunk size line with a bare LF",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\nab",
      "HPE_INVALID_CHUNK_SIZE",
    ],
    ["a head over 64 KiB", `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(70_000)}`, "HPE_HEADER_OVERFLOW"],
  ];
  for (const [what, bytes, code] of cases) {
    it(`fails on ${what} with ${code} and destroys the socket`, async () => {
      const server = await rawServer((socket) => socket.write(bytes));
      const settled = send(server.url).then(bodyOf);
      const err = await failureOf(settled);
      expect(err.code).toBe(code);
      expect(err.message).toContain("the upstream sent a malformed HTTP response");
      await closed(server.sockets[0] as net.Socket);
    });
  }

  it("fails on a chunk-size line or a trailer section past its limit", async () => {
    const server = await rawServer((socket, index) => {
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      socket.write(index === 0 ? `1;${"x".repeat(5000)}` : `0\r\nX: ${"t".repeat(70_000)}`);
    });
    expect((await failureOf(send(server.url).then(bodyOf))).code).toBe("HPE_INVALID_CHUNK_SIZE");
    expect((await failureOf(send(server.url).then(bodyOf))).code).toBe("HPE_HEADER_OVERFLOW");
  });

  it("fails when the server closes mid-body, with ECONNRESET", async () => {
    const server = await rawServer((socket) =>
      socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
    );
    const err = await failureOf(send(server.url).then(bodyOf));
    expect(err.code).toBe("ECONNRESET");
  });

  it("fails with the socket's error when nothing listens", async () => {
    const probe = net.createServer().listen(0, "127.0.0.1");
    await once(probe, "listening");
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    await once(probe, "close");
    const err = await failureOf(send(`http://127.0.0.1:${port}/`));
    expect(err.code).toBe("ECONNREFUSED");
  });
});

describe("http1 client: reused sockets and their limits", () => {
  const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

  for (const how of ["a clean close", "a reset"]) {
    it(`sends a request again once on a fresh socket when a reused one was closed (${how})`, async () => {
      const server = await rawServer((socket, index) => {
        // The second request arrives on the kept-alive socket: the server has just given up on it.
        if (index === 1) {
          if (how === "a reset") socket.resetAndDestroy();
          else socket.end();
        } else socket.write(ok);
      });
      expect((await fetchText(server.url, { method: "POST", body: "1" })).body).toBe("ok");
      expect((await fetchText(server.url, { method: "POST", body: "2" })).body).toBe("ok");
      expect(server.requests.map((r) => r.slice(-1))).toEqual(["1", "2", "2"]);
      expect(server.sockets).toHaveLength(2);
    });
  }

  it("sends it again only once, and never on a fresh socket", async () => {
    const server = await rawServer((socket, index) => (index === 0 ? socket.write(ok) : socket.end()));
    await fetchText(server.url);
    const err = await failureOf(send(server.url));
    expect(err.code).toBe("ECONNRESET");
    // The reused socket, then one fresh one.
    expect(server.requests).toHaveLength(3);
    expect(server.sockets).toHaveLength(2);
  });

  it("does not send again once a byte of the answer arrived", async () => {
    const server = await rawServer((socket, index) => {
      if (index === 0) socket.write(ok);
      else {
        socket.write("HTTP/1.1 200");
        setTimeout(() => socket.destroy(), 2);
      }
    });
    await fetchText(server.url);
    const err = await failureOf(send(server.url));
    expect(err.code).toBe("ECONNRESET");
    expect(server.requests).toHaveLength(2);
  });

  it("does not reuse a socket idle past the server's Keep-Alive timeout less a second", async () => {
    const { url, ports, server } = await httpServer((_req, res) => res.end("ok"));
    server.keepAliveTimeout = 3000; // sends Keep-Alive: timeout=3
    vi.useFakeTimers({ toFake: ["Date"] });
    await fetchText(url);
    vi.setSystemTime(Date.now() + 1900);
    await fetchText(url);
    expect(ports[1]).toBe(ports[0]);
    vi.setSystemTime(Date.now() + 2100);
    await fetchText(url);
    expect(ports[2]).not.toBe(ports[1]);
  });

  it("does not reuse a socket idle for more than 4 s without a hint", async () => {
    const server = await rawServer((socket) => socket.write(ok));
    vi.useFakeTimers({ toFake: ["Date"] });
    await fetchText(server.url);
    vi.setSystemTime(Date.now() + 3900);
    await fetchText(server.url);
    expect(server.sockets).toHaveLength(1);
    vi.setSystemTime(Date.now() + 4100);
    await fetchText(server.url);
    expect(server.sockets).toHaveLength(2);
  });

  it("does not hold the process open with an idle socket", async () => {
    const { url, server } = await httpServer((_req, res) => res.end("ok"));
    server.keepAliveTimeout = 0; // the server never closes an idle socket
    const client = new URL("../../../src/upstreams/http1.ts", import.meta.url).href;
    const script = `import { Http1Target, RequestHead, request } from ${JSON.stringify(client)};
      const head = new RequestHead(new Http1Target(new URL(${JSON.stringify(url)})), "GET", {});
      request(head, undefined, (res) => res.text().then((t) => console.log(t)), (e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    const [code] = await once(child, "exit");
    expect([code, out.trim()]).toEqual([0, "ok"]);
  });

  it("drops an idle socket the server closed", async () => {
    const server = await rawServer((socket) => socket.write(ok));
    await fetchText(server.url);
    (server.sockets[0] as net.Socket).end();
    await closed(server.sockets[0] as net.Socket);
    await fetchText(server.url);
    expect(server.requests).toHaveLength(2);
    expect(server.sockets).toHaveLength(2);
  });
});

describe("http1 client: streaming and cancellation", () => {
  it("delivers an event stream as it arrives, before the server ends it", async () => {
    let stream: ServerResponse | undefined;
    const { url } = await httpServer((_req, res) => {
      stream = res;
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("event: message\ndata: 1\n\n");
    });
    const res = await send(url);
    const parts: string[] = [];
    let ended = false;
    let first: () => void = () => {};
    const gotFirst = new Promise<void>((resolve) => {
      first = resolve;
    });
    const done = new Promise<void>((resolve) => {
      res.read({
        data: (chunk) => {
          parts.push(chunk.toString());
          first();
        },
        end: () => {
          ended = true;
          resolve();
        },
      });
    });
    await gotFirst;
    expect(parts).toEqual(["event: message\ndata: 1\n\n"]);
    expect(ended).toBe(false);
    stream?.end("event: message\ndata: 2\n\n");
    await done;
    expect(parts.join("")).toBe("event: message\ndata: 1\n\nevent: message\ndata: 2\n\n");
  });

  it("destroys the socket when the exchange is destroyed mid-body; the consumer gets the error", async () => {
    const server = await rawServer((socket) =>
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"),
    );
    const res = await send(server.url);
    const failure = new Error("cancelled");
    const outcome = new Promise<Error | undefined>((resolve) => {
      res.read({ data: () => res.destroy(failure), end: resolve });
    });
    expect(await outcome).toBe(failure);
    await closed(server.sockets[0] as net.Socket);
    // The next request needs a new socket.
    (await send(server.url)).destroy();
    expect(server.sockets).toHaveLength(2);
  });

  it("gives a consumer that comes after the failure the parts that arrived, then the error", async () => {
    const server = await rawServer((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
      setTimeout(() => socket.destroy(), 2);
    });
    const head = new RequestHead(new Http1Target(new URL(server.url)), "GET", {});
    const res = await settledExchange(head);
    const parts: string[] = [];
    const error = await new Promise<Error | undefined>((resolve) =>
      res.read({ data: (chunk) => parts.push(chunk.toString()), end: resolve }),
    );
    expect(parts).toEqual(["abc"]);
    expect((error as Error & { code?: string }).code).toBe("ECONNRESET");
    expect(() => res.read({ data() {}, end() {} })).toThrow(/already being read/);
  });

  it("fails a request destroyed before its answer with the given error", async () => {
    const server = await rawServer(() => {});
    const head = new RequestHead(new Http1Target(new URL(server.url)), "GET", {});
    let settled = 0;
    const failed = new Promise<Error>((resolve) => {
      const exchange = request(
        head,
        undefined,
        () => {},
        resolve,
        () => settled++,
      );
      void until(() => server.requests.length === 1).then(() => exchange.destroy(new Error("stop")));
    });
    expect((await failed).message).toBe("stop");
    expect(settled).toBe(1);
    await closed(server.sockets[0] as net.Socket);
  });
});

async function until(check: () => boolean): Promise<void> {
  while (!check()) await tick(2);
}

describe("http1 client: https and IPv6", () => {
  const hasOpenssl = (() => {
    try {
      execFileSync("openssl", ["version"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasOpenssl)(
    "verifies the certificate, sends SNI and ALPN http/1.1, and reuses the TLS socket (needs the openssl CLI)",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "http1-tls-"));
      closers.push(() => rmSync(dir, { recursive: true, force: true }));
      execFileSync(
        "openssl",
        [
          ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"],
          ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
          ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
        ],
        { stdio: "ignore" },
      );
      const cert = readFileSync(join(dir, "cert.pem"), "utf8");
      const seen: Array<{ servername: unknown; alpn: unknown; port: number | undefined }> = [];
      const server = createHttpsServer(
        { key: readFileSync(join(dir, "key.pem")), cert, ALPNProtocols: ["http/1.1"] },
        (req, res) => {
          const socket = req.socket as tls.TLSSocket;
          seen.push({ servername: socket.servername, alpn: socket.alpnProtocol, port: socket.remotePort });
          res.end("secure");
        },
      );
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      closers.push(() => {
        server.closeAllConnections();
        server.close();
      });
      const port = (server.address() as AddressInfo).port;
      const err = await failureOf(send(`https://localhost:${port}/`));
      expect(err.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);

      const defaults = tls.getCACertificates("default");
      tls.setDefaultCACertificates([...defaults, cert]);
      closers.push(() => tls.setDefaultCACertificates(defaults));
      expect((await fetchText(`https://localhost:${port}/`)).body).toBe("secure");
      expect((await fetchText(`https://localhost:${port}/`)).body).toBe("secure");
      expect((await fetchText(`https://127.0.0.1:${port}/`)).body).toBe("secure");
      expect(seen[0]).toMatchObject({ servername: "localhost", alpn: "http/1.1" });
      expect(seen[1]?.port).toBe(seen[0]?.port);
      // No SNI for an IP literal.
      expect(seen[2]?.servername).toBeFalsy();
    },
  );

  const hasIpv6 = (() => {
    try {
      return Object.values(networkInterfaces())
        .flat()
        .some((one) => one?.address === "::1");
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasIpv6)("talks to an IPv6 literal host, with a bracketed Host header (needs ::1)", async () => {
    const server = await rawServer((socket, _index, req) => {
      const host = /\r\nhost: ([^\r]*)/i.exec(req)?.[1] ?? "";
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${host.length}\r\n\r\n${host}`);
    }, "::1");
    const { body } = await fetchText(server.url);
    expect(body).toBe(new URL(server.url).host);
    expect(body.startsWith("[::1]:")).toBe(true);
  });
});
