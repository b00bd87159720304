/**
 * The lean HTTP/1.1 front of the gateway's listener (src/server/http1-server.ts), on real sockets: what it
 * serves itself (POST /mcp with a Content-Length body) and how (framing split at every byte, keep-alive,
 * pipelining in order, Connection: close, one write per answer, chunked streams read by node's client, 'close'
 * on a disconnect, timeouts, shutdown), and what it hands over to node:http with the bytes already read,
 * which then answers as it always did (a body, or 400 / 431 for what it refuses).
 */
import { once } from "node:events";
import { Agent, createServer, type IncomingMessage, request } from "node:http";
import type net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Http1Front, type Http1Request, type Http1Response } from "../../../src/server/http1-server.ts";
import { post, RawClient } from "../../helpers/raw-http.ts";

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

type Handler = (req: Http1Request, res: Http1Response) => void;

/** Answers with the target and the body, with its length. */
const echo: Handler = (req, res) => {
  const text = `lean ${req.url} ${req.body?.toString() ?? "-"}`;
  res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) }).end(text);
};

interface Options {
  handle?: Handler;
  maxBodyBytes?: number;
  keepAliveTimeout?: number;
  headersTimeout?: number;
}

/** A front on 127.0.0.1 with a node:http fallback that answers `node <method> <url> <body>`. */
async function start(options: Options = {}) {
  const fallback = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      const text = `node ${req.method} ${req.url} ${body}`;
      res.writeHead(200, { "x-served-by": "node", "content-length": Buffer.byteLength(text) }).end(text);
    });
  });
  if (options.keepAliveTimeout !== undefined) fallback.keepAliveTimeout = options.keepAliveTimeout;
  if (options.headersTimeout !== undefined) fallback.headersTimeout = options.headersTimeout;
  const served: Http1Request[] = [];
  const front = new Http1Front({
    fallback,
    path: "/mcp",
    maxBodyBytes: options.maxBodyBytes ?? 4096,
    handle: (req, res) => {
      served.push(req);
      (options.handle ?? echo)(req, res);
    },
  });
  /** The server side of each connection, when each closed, and how many bytes they read in all. */
  const sockets: net.Socket[] = [];
  let bytesRead = 0;
  let wake: (() => void) | undefined;
  const serverClosed: Array<Promise<unknown>> = [];
  front.server.on("connection", (socket: net.Socket) => {
    sockets.push(socket);
    serverClosed.push(new Promise((resolve) => socket.on("close", resolve)));
    socket.on("data", (data: Buffer) => {
      bytesRead += data.length;
      wake?.();
    });
  });
  front.server.listen(0, "127.0.0.1");
  await once(front.server, "listening");
  closers.push(() => front.close());
  const port = (front.server.address() as AddressInfo).port;
  const clients: RawClient[] = [];
  const connect = async () => {
    const client = await RawClient.connect(port);
    clients.push(client);
    closers.push(() => client.socket.destroy());
    return client;
  };
  /** Resolves once the front's sockets read `total` bytes in all. */
  const read = async (total: number) => {
    while (bytesRead < total) await new Promise<void>((resolve) => (wake = resolve));
  };
  return { front, fallback, port, served, sockets, serverClosed, connect, read };
}

describe("http1 front: requests served here", () => {
  it("serves POST /mcp with its headers as node gives them, the body read, and a framed answer", async () => {
    const { connect, served } = await start();
    const client = await connect();
    client.write(
      'POST /mcp?x=1 HTTP/1.1\r\nHost: a\r\nX-Mixed-Case:  \tv a \t\r\nEmpty:\r\nLatin: caf\xe9\r\nContent-Length: 7\r\n\r\n{"a":1}',
    );
    const [res] = await client.responsesOf(1);
    expect(res?.status).toBe(200);
    expect(res?.body).toBe('lean /mcp?x=1 {"a":1}');
    expect(res?.headers["content-length"]).toBe(String(Buffer.byteLength('lean /mcp?x=1 {"a":1}')));
    expect(res?.headers.connection).toBe("keep-alive");
    expect(res?.headers["keep-alive"]).toBe("timeout=5");
    expect(new Date(res?.headers.date ?? "").getTime()).not.toBeNaN();
    expect(res?.headers["x-served-by"]).toBeUndefined();
    const req = served[0] as Http1Request;
    expect(req.method).toBe("POST");
    expect(req.headers).toEqual({
      host: "a",
      "x-mixed-case": "v a",
      empty: "",
      latin: "café",
      "content-length": "7",
    });
    expect(req.socket.remoteAddress).toBe("127.0.0.1");
  });

  it("reads a request split at every byte boundary of its head and body", async () => {
    const { connect, read, served } = await start();
    const client = await connect();
    const one = Buffer.from(post('{"jsonrpc":"2.0","id":1,"method":"tools/list"}', "/mcp?s=1"), "latin1");
    let total = 0;
    for (let at = 1; at < one.length; at++) {
      client.write(one.subarray(0, at));
      total += at;
      await read(total); // the front read the first part alone
      client.write(one.subarray(at));
      total += one.length - at;
      const responses = await client.responsesOf(at);
      expect(responses[at - 1]?.body).toBe('lean /mcp?s=1 {"jsonrpc":"2.0","id":1,"method":"tools/list"}');
    }
    expect(served).toHaveLength(one.length - 1);
    expect(new Set(served.map((r) => r.socket)).size).toBe(1);
  });

  it("answers pipelined requests in order, one at a time, on one kept-alive connection", async () => {
    const waiting: Array<{ req: Http1Request; res: Http1Response }> = [];
    const { connect, read, served } = await start({ handle: (req, res) => waiting.push({ req, res }) });
    const client = await connect();
    const bytes = post("1") + post("22") + post("333");
    client.write(bytes);
    await read(bytes.length);
    await new Promise(setImmediate);
    // Everything arrived, yet only the first is being served while its answer is due.
    expect(served).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      while (waiting.length <= i) await new Promise(setImmediate);
      const { req, res } = waiting[i] as { req: Http1Request; res: Http1Response };
      echo(req, res);
    }
    const responses = await client.responsesOf(3);
    expect(responses.map((r) => r.body)).toEqual(["lean /mcp 1", "lean /mcp 22", "lean /mcp 333"]);
    expect(client.closed).toBe(false);
  });

  it("holds at most a bounded amount behind a request being answered: the socket is paused, then resumed", async () => {
    let first: Http1Response | undefined;
    const { connect, sockets, served } = await start({
      maxBodyBytes: 1 << 20,
      handle: (req, res) => {
        if (!first) first = res;
        else echo(req, res);
      },
    });
    const client = await connect();
    client.write(post("first"));
    while (!first) await new Promise(setImmediate);
    const big = "x".repeat(100_000);
    client.write(post(big) + post(big) + post("last"));
    await expect.poll(() => sockets[0]?.isPaused()).toBe(true);
    expect(served).toHaveLength(1);
    first.writeHead(200, { "content-length": 5 }).end("first");
    const responses = await client.responsesOf(4);
    expect(responses.map((r) => r.body.length)).toEqual([5, 100_000 + 10, 100_000 + 10, 14]);
  });

  it("closes after the answer when the client sends Connection: close, and says so", async () => {
    const { connect, served } = await start();
    const client = await connect();
    client.write(post("a", "/mcp", "Connection: close\r\n") + post("b"));
    await client.whenClosed();
    const responses = client.responses;
    expect(responses).toHaveLength(1);
    expect(responses[0]?.headers.connection).toBe("close");
    expect(responses[0]?.headers["keep-alive"]).toBeUndefined();
    expect(served).toHaveLength(1);
  });

  it("writes a JSON answer with its length as one write of head and body", async () => {
    const { connect, sockets } = await start();
    const client = await connect();
    client.write(post("warm"));
    await client.responsesOf(1);
    const socket = sockets[0] as net.Socket;
    const writes: string[] = [];
    const write = socket.write.bind(socket) as (chunk: string) => boolean;
    socket.write = ((chunk: string) => {
      writes.push(String(chunk));
      return write(chunk);
    }) as net.Socket["write"];
    client.write(post('{"é":1}'));
    const responses = await client.responsesOf(2);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nlean \/mcp \{"é":1\}$/);
    expect(responses[1]?.body).toBe('lean /mcp {"é":1}');
  });

  it("gives an answer ended with a body but no length its length, not chunks", async () => {
    const { connect } = await start({
      handle: (_req, res) => res.writeHead(202, { "x-a": "1" }).end("héllo"),
    });
    const client = await connect();
    client.write(post("x"));
    const [res] = await client.responsesOf(1);
    expect(res?.status).toBe(202);
    expect(res?.headers["content-length"]).toBe("6");
    expect(res?.headers["transfer-encoding"]).toBeUndefined();
    expect(res?.body).toBe("héllo");
  });

  it("streams an answer without a length as valid chunked encoding, which node's client reads, then reuses the connection", async () => {
    const { port, served } = await start({
      handle: (req, res) => {
        if (req.body?.toString() === "plain") return echo(req, res);
        res.writeHead(200, { "content-type": "text/event-stream", connection: "keep-alive" });
        res.flushHeaders();
        res.write("event: message\ndata: 1\n\n");
        res.write("");
        setImmediate(() => {
          res.write("data: é\n\n");
          res.end("data: end\n\n");
        });
      },
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    closers.push(() => agent.destroy());
    const send = (body: string) =>
      new Promise<{ res: IncomingMessage; text: string }>((resolve, reject) => {
        const req = request({ port, host: "127.0.0.1", method: "POST", path: "/mcp", agent }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
          });
          res.on("end", () => resolve({ res, text }));
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end(body);
      });
    const stream = await send("stream");
    expect(stream.res.headers["transfer-encoding"]).toBe("chunked");
    expect(stream.res.headers.connection).toBe("keep-alive");
    expect(stream.text).toBe("event: message\ndata: 1\n\ndata: é\n\ndata: end\n\n");
    const plain = await send("plain");
    expect(plain.text).toBe("lean /mcp plain");
    expect(served[0]?.socket).toBe(served[1]?.socket);
  });

  it("fires 'close' once when the client disconnects mid-answer, and ignores what the handler writes after", async () => {
    let res: Http1Response | undefined;
    const { connect } = await start({ handle: (_req, r) => (res = r) });
    const client = await connect();
    client.write(post("hang"));
    while (!res) await new Promise(setImmediate);
    const answer = res;
    let closes = 0;
    answer.on("close", () => closes++);
    answer.once("close", () => closes++);
    const dropped = () => closes++;
    answer.on("close", dropped);
    answer.off("close", dropped);
    client.socket.destroy();
    await new Promise<void>((resolve) => answer.on("close", resolve));
    expect(closes).toBe(2);
    expect(answer.destroyed).toBe(true);
    expect(answer.writableFinished).toBe(false);
    answer.writeHead(200, { "content-length": 2 }).end("ok");
    expect(answer.write("more")).toBe(false);
    await new Promise(setImmediate);
    expect(closes).toBe(2);
  });

  it("fires 'close' when the client half-closes mid-answer, as node's server does (it ends the connection)", async () => {
    let res: Http1Response | undefined;
    const { connect } = await start({ handle: (_req, r) => (res = r) });
    const client = await connect();
    client.write(post("hang"));
    while (!res) await new Promise(setImmediate);
    const answer = res;
    const gone = new Promise<void>((resolve) => answer.on("close", resolve));
    client.socket.end();
    await gone;
    await client.whenClosed();
    expect(answer.writableFinished).toBe(false);
  });

  it("fires 'close' after the answer ended, on a later tick, and keeps the socket for the next request", async () => {
    const events: string[] = [];
    const { connect } = await start({
      handle: (req, res) => {
        res.on("close", () => events.push(`close ${req.body}`));
        echo(req, res);
        events.push(`ended ${req.body}`);
        res.destroy(); // after the end: the connection is not the response's any more
      },
    });
    const client = await connect();
    client.write(post("a"));
    await client.responsesOf(1);
    client.write(post("b"));
    await client.responsesOf(2);
    expect(events).toEqual(["ended a", "close a", "ended b", "close b"]);
    expect(client.closed).toBe(false);
  });

  it("refuses a body over maxBodyBytes unread: the handler gets no body, the connection closes after", async () => {
    const { connect, served } = await start({
      maxBodyBytes: 10,
      handle: (req, res) => {
        if (req.body !== undefined) return echo(req, res);
        res.writeHead(413, { "content-type": "application/json", "content-length": 2 }).end("{}");
      },
    });
    const client = await connect();
    client.write(post("x".repeat(11)) + post("next"));
    await client.whenClosed();
    const responses = client.responses;
    expect(responses.map((r) => r.status)).toEqual([413]);
    expect(responses[0]?.headers.connection).toBe("close");
    expect(served).toHaveLength(1);
    expect(served[0]?.body).toBeUndefined();
  });

  it("keeps answers of a length that does not match the body from poisoning the connection", async () => {
    const { connect } = await start({
      handle: (_req, res) => res.writeHead(200, { "content-length": 10 }).end("short"),
    });
    const client = await connect();
    client.write(post("a"));
    await client.whenClosed();
    expect(client.received).toMatch(/\r\n\r\nshort$/);
  });

  it("closes an idle connection after the keep-alive time", async () => {
    const { connect, front, serverClosed } = await start({ keepAliveTimeout: 30 });
    const client = await connect();
    client.write(post("a"));
    const [res] = await client.responsesOf(1);
    expect(res?.headers["keep-alive"]).toBe("timeout=0");
    await client.whenClosed();
    expect(client.responses).toHaveLength(1);
    await serverClosed[0];
    expect(front.connectionCount).toBe(0);
  });

  it("answers 408 and closes when a head or a body does not arrive within headersTimeout", async () => {
    const { connect } = await start({ keepAliveTimeout: 20, headersTimeout: 60 });
    const head = await connect();
    head.write("POST /mcp HTTP/1.1\r\nHost: a\r\n");
    const body = await connect();
    body.write("POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345");
    await Promise.all([head.whenClosed(), body.whenClosed()]);
    expect(head.responses.map((r) => r.status)).toEqual([408]);
    expect(body.responses.map((r) => r.status)).toEqual([408]);
  });

  it("rejects response headers node would refuse", async () => {
    const errors: unknown[] = [];
    const { connect } = await start({
      handle: (_req, res) => {
        try {
          res.writeHead(200, { "x-a": "1\r\nx-b: 2" }).end("no");
        } catch (err) {
          errors.push(err);
          res.writeHead(500, { "content-length": 0 });
          res.end();
        }
      },
    });
    const client = await connect();
    client.write(post("a"));
    const [res] = await client.responsesOf(1);
    expect(res?.status).toBe(500);
    expect(String(errors[0])).toMatch(/invalid character/);
  });
});

describe("http1 front: connections handed over to node:http", () => {
  const cases: Array<[string, string, number, string | RegExp]> = [
    ["GET /mcp", "GET /mcp HTTP/1.1\r\nHost: a\r\n\r\n", 200, "node GET /mcp "],
    ["DELETE /mcp", "DELETE /mcp HTTP/1.1\r\nHost: a\r\n\r\n", 200, "node DELETE /mcp "],
    ["POST to another path", post("x", "/healthz"), 200, "node POST /healthz x"],
    ["POST to a path that starts like it", post("x", "/mcpx"), 200, "node POST /mcpx x"],
    ["HTTP/1.0", "POST /mcp HTTP/1.0\r\nHost: a\r\nContent-Length: 2\r\n\r\nab", 200, "node POST /mcp ab"],
    [
      "a chunked body",
      "POST /mcp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
      200,
      "node POST /mcp abcde",
    ],
    [
      "Upgrade",
      "POST /mcp HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 1\r\n\r\nu",
      200,
      "node POST /mcp u",
    ],
    ["no Content-Length", "POST /mcp HTTP/1.1\r\nHost: a\r\n\r\n", 200, "node POST /mcp "],
    ["a bad Content-Length", "POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\nab", 400, ""],
    ["a negative Content-Length", "POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, ""],
    [
      "two Content-Lengths",
      "POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
      400,
      "",
    ],
    [
      "Content-Length and Transfer-Encoding",
      "POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400,
      "",
    ],
    ["no Host", "POST /mcp HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", 400, ""],
    ["a bare LF", "POST /mcp HTTP/1.1\r\nHost: a\nContent-Length: 2\r\n\r\nab", 400, ""],
    ["a space before the colon", "POST /mcp HTTP/1.1\r\nHost : a\r\nContent-Length: 2\r\n\r\nab", 400, ""],
    ["a folded header", "POST /mcp HTTP/1.1\r\nHost: a\r\n b\r\nContent-Length: 2\r\n\r\nab", 400, ""],
    [
      "a control byte in a value",
      "POST /mcp HTTP/1.1\r\nHost: a\x01\r\nContent-Length: 2\r\n\r\nab",
      400,
      "",
    ],
    ["a head over 16 KiB", post("ab", "/mcp", `X-Big: ${"b".repeat(17_000)}\r\n`), 431, ""],
    ["noise", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, ""],
  ];

  for (const [what, bytes, status, body] of cases) {
    it(`hands over ${what}: node answers ${status}`, async () => {
      const { connect, served } = await start();
      const client = await connect();
      client.write(bytes);
      const [res] = await client.responsesOf(1);
      expect(res?.status).toBe(status);
      if (status === 200) {
        expect(res?.headers["x-served-by"]).toBe("node");
        expect(res?.body).toBe(body);
      }
      expect(served).toHaveLength(0);
    });
  }

  it("hands over Expect: 100-continue: node asks for the body and answers", async () => {
    const { connect } = await start();
    const client = await connect();
    client.write("POST /mcp HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    const [interim] = await client.responsesOf(1);
    expect(interim?.status).toBe(100);
    client.write("ok");
    const responses = await client.responsesOf(2);
    expect(responses[1]?.body).toBe("node POST /mcp ok");
  });

  it("answers a request pipelined into another, then hands the rest of the connection over, bytes read and bytes to come", async () => {
    const { connect, served, read } = await start();
    const client = await connect();
    const first = `${post("one")}GET /x HTTP/1.1\r\nHost: a\r\n\r\n${post("two")}POST /mcp HTTP/1.1\r\nHo`;
    client.write(first);
    await read(first.length);
    await client.responsesOf(3);
    client.write(`st: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n${post("three")}`);
    const responses = await client.responsesOf(5);
    expect(responses.map((r) => r.body)).toEqual([
      "lean /mcp one",
      "node GET /x ",
      "node POST /mcp two",
      "node POST /mcp z",
      "node POST /mcp three",
    ]);
    expect(served).toHaveLength(1);
  });

  it("hands over as soon as the first bytes cannot start a request served here", async () => {
    const { connect, front } = await start();
    const client = await connect();
    client.write("GET /mcp HTTP/1.1\r\n");
    await expect.poll(() => front.connectionCount).toBe(0);
    client.write("Host: a\r\n\r\n");
    const [res] = await client.responsesOf(1);
    expect(res?.body).toBe("node GET /mcp ");
  });
});

describe("http1 front: listening and shutdown", () => {
  it("reports its address and fails to listen on a port in use", async () => {
    const { port } = await start();
    const fallback = createServer();
    const other = new Http1Front({ fallback, path: "/mcp", maxBodyBytes: 1, handle: () => {} });
    other.server.listen(port, "127.0.0.1");
    const [err] = await once(other.server, "error");
    expect((err as NodeJS.ErrnoException).code).toBe("EADDRINUSE");
  });

  it("closes idle, busy and handed-over connections on close, and stops accepting", async () => {
    let busy: Http1Response | undefined;
    const { connect, front, port } = await start({
      handle: (req, res) => {
        if (req.body?.toString() === "hang") busy = res;
        else echo(req, res);
      },
    });
    const idle = await connect();
    idle.write(post("a"));
    await idle.responsesOf(1);
    const waiting = await connect();
    waiting.write(post("hang"));
    while (!busy) await new Promise(setImmediate);
    const answer = busy;
    const node = await connect();
    node.write("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    await node.responsesOf(1);
    const closed = new Promise<void>((resolve) => answer.on("close", resolve));
    await front.close();
    await Promise.all([idle.whenClosed(), waiting.whenClosed(), node.whenClosed(), closed]);
    const refused = await RawClient.connect(port).then(
      () => "connected",
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(refused).toBe("ECONNREFUSED");
  });
});
