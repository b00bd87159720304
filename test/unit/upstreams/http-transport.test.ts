/**
 * The lean Streamable HTTP client transport (src/upstreams/http-transport.ts) against a raw node:http server
 * on 127.0.0.1 that writes exactly the bytes each case needs, and its SSE parser on split, CRLF and
 * multi-line input. Sessions, protocol headers, 202/405/404, cut and resumable streams, close with DELETE.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { upstreamFetch } from "../../../src/upstreams/http-client.ts";
import { HttpClientTransport } from "../../../src/upstreams/http-transport.ts";
import { SseParser } from "../../../src/upstreams/sse-parser.ts";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}
type Script = (res: ServerResponse, seen: Seen) => void;

let script: Script = (res) => res.writeHead(500).end();
const seen: Seen[] = [];
let connections = 0;
let base = "";
const server = createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => {
    body += chunk;
  });
  req.once("end", () => {
    const entry = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body };
    seen.push(entry);
    script(res, entry);
  });
});
server.on("connection", () => connections++);

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const open: HttpClientTransport[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
  seen.length = 0;
});

/** A started transport that records what it delivers. */
async function transport(headers?: Record<string, string>) {
  const t = new HttpClientTransport(new URL(base), { headers, fetch: upstreamFetch });
  const messages: JSONRPCMessage[] = [];
  const errors: Error[] = [];
  t.onmessage = (m) => messages.push(m);
  t.onerror = (e) => errors.push(e);
  await t.start();
  open.push(t);
  return { t, messages, errors };
}

const call = (id: number): JSONRPCMessage => ({
  jsonrpc: "2.0",
  id,
  method: "tools/call",
  params: { name: "x" },
});
const result = (id: number) => JSON.stringify({ jsonrpc: "2.0", id, result: { content: [] } });
const progress = JSON.stringify({
  jsonrpc: "2.0",
  method: "notifications/progress",
  params: { progressToken: 1, progress: 1 },
});
const sse = (res: ServerResponse) => res.writeHead(200, { "content-type": "text/event-stream" });

/** Resolves once `check` holds, polling on the event loop (no wall-clock margin). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe("HttpClientTransport", () => {
  it("keeps the session id, sends protocol version and configured headers, on one kept-alive connection", async () => {
    script = (res, s) => {
      const id = (JSON.parse(s.body) as { id: number }).id;
      res.writeHead(200, { "content-type": "application/json", "mcp-session-id": "s-1" });
      res.end(result(id));
    };
    const before = connections;
    const { t, messages } = await transport({ "X-Api-Key": "k" });
    await t.send(call(1));
    t.setProtocolVersion("2025-11-25");
    for (let id = 2; id <= 5; id++) await t.send(call(id));
    expect(messages.map((m) => (m as { id: number }).id)).toEqual([1, 2, 3, 4, 5]);
    expect(t.sessionId).toBe("s-1");
    expect(seen[0]?.headers["mcp-session-id"]).toBeUndefined();
    expect(seen[1]?.headers).toMatchObject({
      "mcp-session-id": "s-1",
      "mcp-protocol-version": "2025-11-25",
      "x-api-key": "k",
      accept: "application/json, text/event-stream",
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(seen[1]?.body ?? "")),
    });
    expect(seen[1]?.headers["transfer-encoding"]).toBeUndefined();
    expect(connections - before).toBe(1);
  });

  it("delivers an SSE answer split across chunks, CRLF pairs cut in two, progress first", async () => {
    script = (res) => {
      sse(res);
      const text = `: comment\r\nevent: message\r\ndata: ${progress}\r\n\r\ndata: ${result(7)}\r\n\r\n`;
      const cuts = [9, text.indexOf("\n", 40), text.length - 1];
      let at = 0;
      const next = () => {
        const cut = cuts.shift();
        if (cut === undefined) return res.end(text.slice(at));
        res.write(text.slice(at, cut));
        at = cut;
        setImmediate(next);
      };
      next();
    };
    const { t, messages, errors } = await transport();
    await t.send(call(7));
    await until(() => messages.length === 2);
    expect(messages[0]).toMatchObject({ method: "notifications/progress" });
    expect(messages[1]).toMatchObject({ id: 7, result: { content: [] } });
    expect(errors).toEqual([]);
  });

  it("answers a request whose stream ends without an answer or event ids with an error at once", async () => {
    script = (res) => {
      sse(res);
      res.end(`data: ${progress}\n\n`);
    };
    const { t, messages } = await transport();
    await t.send(call(3));
    await until(() => messages.length === 2);
    expect(messages[1]).toMatchObject({
      id: 3,
      error: { code: -32000, message: "the upstream ended its response stream without answering" },
    });
  });

  it("resumes a stream cut after an event id with GET + Last-Event-ID after the server's retry delay", async () => {
    script = (res, s) => {
      sse(res);
      if (s.method === "POST") {
        res.write("id: ev-1\nretry: 10\ndata: \n\n");
        setImmediate(() => res.destroy());
      } else {
        res.end(`id: ev-2\ndata: ${result(4)}\n\n`);
      }
    };
    const { t, messages, errors } = await transport();
    await t.send(call(4));
    await until(() => messages.length === 1);
    expect(messages[0]).toMatchObject({ id: 4, result: {} });
    const get = seen.find((s) => s.method === "GET");
    expect(get?.headers["last-event-id"]).toBe("ev-1");
    expect(errors).toEqual([]);
  });

  it("opens the standalone stream after notifications/initialized and takes 405 as none offered", async () => {
    script = (res, s) => res.writeHead(s.method === "GET" ? 405 : 202).end();
    const { t, errors } = await transport();
    await t.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    await until(() => seen.some((s) => s.method === "GET"));
    expect(seen.find((s) => s.method === "GET")?.headers.accept).toBe("text/event-stream");
    expect(errors).toEqual([]);
  });

  it("delivers server-initiated messages from the standalone stream", async () => {
    const ping = JSON.stringify({ jsonrpc: "2.0", id: "s1", method: "ping" });
    script = (res, s) => {
      if (s.method === "POST") return res.writeHead(202).end();
      sse(res);
      res.write(`data: ${ping}\n\n`);
    };
    const { t, messages } = await transport();
    await t.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    await until(() => messages.length === 1);
    expect(messages[0]).toMatchObject({ id: "s1", method: "ping" });
  });

  it("throws StreamableHTTPError with the status: 404 (session gone) and 500 with the body", async () => {
    const { t, errors } = await transport();
    script = (res) => res.writeHead(404).end("no such session");
    const gone = await t.send(call(1)).catch((err: unknown) => err);
    expect(gone).toBeInstanceOf(StreamableHTTPError);
    expect((gone as StreamableHTTPError).code).toBe(404);
    script = (res) => res.writeHead(500).end("boom");
    const failed = await t.send(call(2)).catch((err: unknown) => err);
    expect((failed as StreamableHTTPError).code).toBe(500);
    expect((failed as Error).message).toBe(
      "Streamable HTTP error: Error POSTing to endpoint: HTTP 500: boom",
    );
    script = (res) => res.writeHead(502).end(`<html>\n  <body>${"x".repeat(400)}</body>\n</html>`);
    const page = await t.send(call(3)).catch((err: unknown) => err);
    expect((page as Error).message).toBe(
      `Streamable HTTP error: Error POSTing to endpoint: HTTP 502: <html> <body>${"x".repeat(187)}…`,
    );
    expect(errors).toHaveLength(3);
  });

  it("follows a 307 within the origin, and names a redirect elsewhere instead of following it", async () => {
    script = (res, s) => {
      if (s.url === "/mcp") return res.writeHead(307, { location: "/moved" }).end();
      if (s.url === "/moved") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(result(1));
      }
      res.writeHead(404).end();
    };
    const { t, messages } = await transport();
    await t.send(call(1));
    expect(messages).toEqual([JSON.parse(result(1))]);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(["POST /mcp", "POST /moved"]);
    script = (res) => res.writeHead(307, { location: "http://other.example/mcp?k=secret" }).end();
    const err = await t.send(call(2)).catch((e: unknown) => e);
    expect((err as StreamableHTTPError).code).toBe(307);
    expect((err as Error).message).toContain("Redirect to http://other.example/mcp not followed");
  });

  it("drops a message that is not JSON-RPC with an error, and delivers the valid one after it", async () => {
    script = (res) => {
      sse(res);
      res.end(`data: {"jsonrpc":"2.0","id":1}\n\ndata: not json\n\ndata: ${result(1)}\n\n`);
    };
    const { t, messages, errors } = await transport();
    await t.send(call(1));
    await until(() => messages.length === 1);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringContaining("invalid JSON-RPC message"),
      expect.stringContaining("JSON"),
    ]);
  });

  it("ends the session with DELETE on close, and refuses to send afterwards", async () => {
    script = (res, s) => {
      if (s.method === "DELETE") return res.writeHead(200).end();
      res.writeHead(200, { "content-type": "application/json", "mcp-session-id": "s-9" });
      res.end(result(1));
    };
    const { t } = await transport();
    let closed = false;
    t.onclose = () => {
      closed = true;
    };
    await t.send(call(1));
    await t.close();
    expect(closed).toBe(true);
    await until(() => seen.some((s) => s.method === "DELETE"));
    expect(seen.find((s) => s.method === "DELETE")?.headers["mcp-session-id"]).toBe("s-9");
    await expect(t.send(call(2))).rejects.toThrow("Not connected");
  });

  it("cuts the streams in flight on close, and still ends the session with DELETE", async () => {
    const cut: string[] = [];
    script = (res, s) => {
      if (s.method === "DELETE") return res.writeHead(200).end();
      res.on("close", () => cut.push(s.method));
      res.writeHead(200, { "content-type": "text/event-stream", "mcp-session-id": "s-cut" });
      res.write(`event: message\ndata: ${progress}\n\n`);
    };
    const { t, messages, errors } = await transport();
    await t.send(call(1));
    await until(() => messages.length === 1);
    await t.close();
    await until(() => cut.length === 1 && seen.some((x) => x.method === "DELETE"));
    expect(cut).toEqual(["POST"]);
    expect(seen.find((x) => x.method === "DELETE")?.headers["mcp-session-id"]).toBe("s-cut");
    // Closing is not a failure of the stream.
    expect(errors).toEqual([]);
  });

  it("rejects like fetch when nothing listens: TypeError with the socket error as cause", async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const t = new HttpClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), { fetch: upstreamFetch });
    await t.start();
    const err = await t.send(call(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as { cause?: { code?: string } }).cause?.code).toBe("ECONNREFUSED");
    await t.close();
  });
  it("delivers whole one-event writes in turn, then a split event after them, and UTF-8 cut mid-character", async () => {
    const text = JSON.stringify({
      jsonrpc: "2.0",
      id: 8,
      result: { content: [{ type: "text", text: "é€😀" }] },
    });
    const bytes = Buffer.from(`event: message\ndata: ${text}\n\n`);
    script = (res) => {
      sse(res);
      // Two whole events in their own writes, then the answer in two pieces cut inside the four-byte emoji.
      res.write(`event: message\ndata: ${progress}\n\n`);
      setImmediate(() => {
        res.write(`event: message\ndata: ${progress}\n\n`);
        const cut = bytes.indexOf(Buffer.from("😀")) + 2;
        setImmediate(() => {
          res.write(bytes.subarray(0, cut));
          setImmediate(() => res.end(bytes.subarray(cut)));
        });
      });
    };
    const { t, messages, errors } = await transport();
    await t.send(call(8));
    await until(() => messages.length === 3);
    expect(messages.slice(0, 2)).toMatchObject([
      { method: "notifications/progress" },
      { method: "notifications/progress" },
    ]);
    expect(messages[2]).toEqual(JSON.parse(text));
    expect(errors).toEqual([]);
  });
});

describe("SseParser", () => {
  function parse(chunks: string[]) {
    const events: Array<{ id?: string | undefined; event?: string | undefined; data: string }> = [];
    const retries: number[] = [];
    const parser = new SseParser(
      (e) => events.push(e),
      (ms) => retries.push(ms),
    );
    for (const chunk of chunks) parser.feed(chunk);
    return { events, retries };
  }

  it("joins multi-line data, skips comments, reads event, id and retry", () => {
    const { events, retries } = parse([": hi\nevent: note\nid: 5\nretry: 250\ndata: a\ndata:b\ndata\n\n"]);
    expect(events).toEqual([{ id: "5", event: "note", data: "a\nb\n" }]);
    expect(retries).toEqual([250]);
  });

  it("reads LF, CR and CRLF line ends alike, also when a CRLF pair is split between chunks", () => {
    const { events } = parse(["data: 1\r", "\n\r", "\ndata: 2\r\rdata: 3\n", "\n"]);
    expect(events.map((e) => e.data)).toEqual(["1", "2", "3"]);
  });

  it("dispatches an event with an id and no data (a priming event), ignores one with neither", () => {
    const { events } = parse(["id: p-1\n\nevent: x\n\n"]);
    expect(events).toEqual([{ id: "p-1", event: undefined, data: "" }]);
  });

  it("reads a whole one-message event at once, and leaves anything else to the line parser", () => {
    const data = '{"jsonrpc":"2.0","id":1,"result":{}}';
    expect(SseParser.singleMessage(`event: message\ndata: ${data}\n\n`)).toBe(data);
    for (const other of [
      `event: message\ndata: ${data}\n`, // not ended yet
      `event: message\ndata: ${data}\n\nevent: message\ndata: ${data}\n\n`, // two events
      `event: message\ndata: a\ndata: b\n\n`, // multi-line data
      `event: message\r\ndata: ${data}\r\n\r\n`, // CRLF
      `event: message\ndata: ${data}\r\n\n`,
      `id: 4\nevent: message\ndata: ${data}\n\n`, // an id to keep
      `event: other\ndata: ${data}\n\n`,
      `data: ${data}\n\n`,
    ]) {
      expect(SseParser.singleMessage(other)).toBeUndefined();
    }
  });

  it("strips a BOM only at the start of the stream", () => {
    const events: string[] = [];
    const midStream = new SseParser((e) => events.push(e.data), undefined, false);
    midStream.feed("\uFEFFdata: x\n\ndata: y\n\n");
    expect(events).toEqual(["y"]);
  });

  it("keeps a line split across many chunks, and drops a leading BOM", () => {
    const { events } = parse(["\uFEFFda", "ta: he", "llo", "\n", "\n"]);
    expect(events.map((e) => e.data)).toEqual(["hello"]);
  });
});
