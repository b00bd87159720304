/**
 * The legacy HTTP+SSE client transport (src/upstreams/sse-transport.ts) against a raw node:http server on
 * 127.0.0.1 that writes exactly the bytes each case needs: the endpoint event, redirects, messages split
 * across writes, the headers of a POST, and the stream's failures.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { SseError } from "@modelcontextprotocol/sdk/client/sse.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { upstreamFetch } from "../../../src/upstreams/http-client.ts";
import { SseClientTransport } from "../../../src/upstreams/sse-transport.ts";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** Events arrive when the loop gets to them: no deadline a loaded machine could miss. */
const WAIT = { timeout: 30_000 };

/** What the server does with each request, by method and path. */
let routes: Record<string, (res: ServerResponse) => void> = {};
const seen: Seen[] = [];
let origin = "";
const server = createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => {
    body += chunk;
  });
  req.once("end", () => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
    const route = routes[`${req.method} ${req.url}`];
    if (route) route(res);
    else res.writeHead(404).end();
  });
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const open: SseClientTransport[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
  seen.length = 0;
  routes = {};
});

function transport(path: string, headers?: Record<string, string>) {
  const t = new SseClientTransport(new URL(path, origin), { headers, fetch: upstreamFetch });
  open.push(t);
  const messages: JSONRPCMessage[] = [];
  const errors: Error[] = [];
  t.onmessage = (message) => messages.push(message);
  t.onerror = (error) => errors.push(error);
  return { t, messages, errors };
}

/** Opens an event stream and keeps it: the test writes to it. */
function stream(streams: ServerResponse[], first: string) {
  return (res: ServerResponse) => {
    res.writeHead(200, { "content-type": "text/event-stream" }).write(first);
    streams.push(res);
  };
}

describe("SseClientTransport", () => {
  it("follows a redirect within the origin, posts to the endpoint and reads messages split across writes", async () => {
    const streams: ServerResponse[] = [];
    routes = {
      "GET /sse": (res) => res.writeHead(307, { location: "/sse/" }).end(),
      "GET /sse/": stream(streams, "event: endpoint\ndata: messages?session=1\n\n"),
      // Resolved against the configured URL, as the SDK did.
      "POST /messages?session=1": (res) => res.writeHead(202).end(),
    };
    const { t, messages } = transport("/sse", { "X-Team": "a" });
    await t.start();
    t.setProtocolVersion("2025-11-25");
    await t.send({ jsonrpc: "2.0", id: 1, method: "ping" });
    const post = seen.find((s) => s.method === "POST");
    expect(post?.body).toBe('{"jsonrpc":"2.0","id":1,"method":"ping"}');
    expect(post?.headers).toMatchObject({
      "content-type": "application/json",
      "mcp-protocol-version": "2025-11-25",
      "x-team": "a",
    });
    const answer = stream1(streams);
    answer.write('event: message\ndata: {"jsonrpc":"2.0",');
    answer.write('"id":1,"result":{}}\n\n');
    await vi.waitFor(() => expect(messages).toHaveLength(1), WAIT);
    expect(messages[0]).toEqual({ jsonrpc: "2.0", id: 1, result: {} });
  });

  it("refuses an endpoint on another origin", async () => {
    routes = { "GET /sse": stream([], "event: endpoint\ndata: http://example.com/messages\n\n") };
    await expect(transport("/sse").t.start()).rejects.toThrow(
      /^Endpoint origin does not match connection origin: http:\/\/example\.com$/,
    );
  });

  it("fails the start with the status of a refused GET", async () => {
    const start = transport("/nowhere").t.start();
    await expect(start).rejects.toBeInstanceOf(SseError);
    await expect(start).rejects.toMatchObject({ code: 404, message: "SSE error: Non-200 status code (404)" });
  });

  it("fails the start when the stream ends before its endpoint event", async () => {
    routes = {
      "GET /sse": (res) => res.writeHead(200, { "content-type": "text/event-stream" }).end(": bye\n\n"),
    };
    await expect(transport("/sse").t.start()).rejects.toThrow(
      /^SSE error: the server ended the stream before its endpoint event$/,
    );
  });

  it("reports a stream the server ends as an SseError, and a POST after close as not connected", async () => {
    const streams: ServerResponse[] = [];
    routes = { "GET /sse": stream(streams, "event: endpoint\ndata: /messages\n\n") };
    const { t, errors } = transport("/sse");
    await t.start();
    stream1(streams).end();
    await vi.waitFor(() => expect(errors).toHaveLength(1), WAIT);
    expect(errors[0]).toBeInstanceOf(SseError);
    expect(errors[0]?.message).toBe("SSE error: the server ended the stream");
    await t.close();
    await expect(t.send({ jsonrpc: "2.0", method: "notifications/initialized" })).rejects.toThrow(
      "Not connected",
    );
  });

  it("names a POST the server refused, with its status and body", async () => {
    routes = {
      "GET /sse": stream([], "event: endpoint\ndata: /messages\n\n"),
      "POST /messages": (res) => res.writeHead(400).end("no such\n session"),
    };
    const { t } = transport("/sse");
    await t.start();
    await expect(t.send({ jsonrpc: "2.0", id: 2, method: "ping" })).rejects.toThrow(
      "Error POSTing to endpoint (HTTP 400): no such session",
    );
  });
});

function stream1(streams: ServerResponse[]): ServerResponse {
  const res = streams[0];
  if (!res) throw new Error("no event stream is open");
  return res;
}
