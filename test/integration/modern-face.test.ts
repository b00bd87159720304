/**
 * The 2026-07-28 face in detail, over raw HTTP and WebSocket: the envelope and header checks answer with the
 * request's id and the spec's codes, results carry resultType, server identity and caching hints (private
 * once callers authenticate), a client that closes its stream cancels the upstream call, and a stdio-or-
 * WebSocket session serves an enveloped request statelessly beside its own 2025 session.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { resolveConfig } from "../../src/config/load.ts";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { eventually, type InProcessGateway, startGateway } from "../helpers/gateway.ts";
import { BASE_HEADERS, rawPost, rawSession } from "../helpers/raw-mcp.ts";

const VERSION = "2026-07-28";
const KEY = "modern-key-0123456789abcdef";
const META = {
  "io.modelcontextprotocol/protocolVersion": VERSION,
  "io.modelcontextprotocol/clientCapabilities": {},
};

let upstream: RunningFaultServer;
let gw: InProcessGateway;
let authed: InProcessGateway;

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  const mcpServers = { faults: { type: "http", url: upstream.url } };
  gw = await startGateway({ mcpServers, upstreams: { faults: { policies: { retry: { maxAttempts: 1 } } } } });
  authed = await startGateway({ mcpServers, security: { auth: { apiKeys: [{ id: "ci", key: KEY }] } } });
  await eventually(
    () => gw.gateway.catalog.tool("faults__hang") && authed.gateway.catalog.tool("faults__hang"),
  );
});

afterAll(async () => {
  await gw?.stop();
  await authed?.stop();
  await upstream?.close();
});

function modern(
  url: string,
  id: number,
  method: string,
  params: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const name = params.name ?? params.uri;
  return rawPost(url, JSON.stringify({ jsonrpc: "2.0", id, method, params: { ...params, _meta: META } }), {
    ...BASE_HEADERS,
    "mcp-protocol-version": VERSION,
    "mcp-method": method,
    ...(typeof name === "string" && { "mcp-name": name }),
    ...headers,
  });
}

describe("the 2026-07-28 face over HTTP", () => {
  it("serves server/discover with both eras, its identity and caching hints", async () => {
    const reply = await modern(gw.url, 1, "server/discover");
    expect(reply.status).toBe(200);
    expect(reply.headers.get("mcp-session-id")).toBeNull();
    expect(reply.messages[0]).toMatchObject({
      id: 1,
      result: {
        resultType: "complete",
        supportedVersions: expect.arrayContaining([VERSION, "2025-11-25"]),
        _meta: { "io.modelcontextprotocol/serverInfo": { name: "toolgate" } },
        cacheScope: "public",
        ttlMs: expect.any(Number),
      },
    });
  });

  it("answers a header that disagrees with the body with 400 / -32020 and the request's id", async () => {
    const reply = await modern(gw.url, 2, "tools/list", {}, { "mcp-method": "tools/call" });
    expect(reply.status).toBe(400);
    expect(reply.messages[0]).toMatchObject({ id: 2, error: { code: -32020 } });
  });

  it("tells a client that sends a bare request without a session what each era needs", async () => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" });
    const reply = await rawPost(gw.url, body);
    expect(reply.messages[0]).toMatchObject({
      id: 9,
      error: { code: -32602, message: expect.stringContaining("a 2025-11-25 client sends initialize first") },
    });
  });

  it("refuses a body not declared application/json with 415, unread, as a 2025 session does", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
      const reply = await modern(gw.url, 4, "tools/list", {}, { "content-type": type });
      expect(reply.status).toBe(415);
      expect(reply.messages[0]).toMatchObject({
        id: null,
        error: { code: -32600, message: expect.stringContaining("Content-Type") },
      });
    }
    const initialize = {
      protocolVersion: "2025-11-25",
      capabilities: {},
      clientInfo: { name: "c", version: "1" },
    };
    const body = JSON.stringify({ jsonrpc: "2.0", id: 6, method: "initialize", params: initialize });
    const legacy = await rawPost(gw.url, body, { ...BASE_HEADERS, "content-type": "text/plain" });
    expect(legacy.status).toBe(415);
    const charset = await modern(
      gw.url,
      5,
      "tools/list",
      {},
      { "content-type": "application/json; charset=utf-8" },
    );
    expect(charset.status).toBe(200);
  });

  it("answers a removed method with 404 / -32601 naming its replacement", async () => {
    const reply = await modern(gw.url, 3, "logging/setLevel", { level: "info" });
    expect(reply.status).toBe(404);
    expect(reply.messages[0]).toMatchObject({
      id: 3,
      error: { code: -32601, message: expect.stringContaining("logLevel") },
    });
  });

  it("marks lists private once callers authenticate (they may be filtered per principal)", async () => {
    const reply = await modern(authed.url, 4, "tools/list", {}, { authorization: `Bearer ${KEY}` });
    expect(reply.messages[0]).toMatchObject({
      id: 4,
      result: { cacheScope: "private", resultType: "complete" },
    });
  });

  it("cancels the upstream call when the client closes the request's stream", async () => {
    const before = upstream.stats().cancelled.length;
    const calls = upstream.stats().calls.hang ?? 0;
    const abort = new AbortController();
    const pending = fetch(gw.url, {
      method: "POST",
      headers: {
        ...BASE_HEADERS,
        "mcp-protocol-version": VERSION,
        "mcp-method": "tools/call",
        "mcp-name": "faults__hang",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 5,
        method: "tools/call",
        params: { name: "faults__hang", arguments: {}, _meta: META },
      }),
      signal: abort.signal,
    }).catch(() => undefined);
    await eventually(() => (upstream.stats().calls.hang ?? 0) > calls && upstream.stats().inFlight > 0);
    abort.abort();
    await pending;
    await eventually(() => upstream.stats().cancelled.length === before + 1);
  });
});

describe("bounds", () => {
  /** A listen stream for tools list changes, request `id`, with `headers` beside the required ones. */
  const listenAt = (url: string, id: number, headers: Record<string, string> = {}, signal?: AbortSignal) =>
    fetch(url, {
      method: "POST",
      headers: {
        ...BASE_HEADERS,
        ...headers,
        "mcp-protocol-version": VERSION,
        "mcp-method": "subscriptions/listen",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "subscriptions/listen",
        params: { notifications: { toolsListChanged: true }, _meta: META },
      }),
      ...(signal && { signal }),
    });

  it("refuses a listen stream beyond gateway.maxSessions with 503, and serves one again once it closes", async () => {
    const small = await startGateway({
      gateway: { maxSessions: 1 },
      mcpServers: { faults: { type: "http", url: upstream.url } },
    });
    try {
      const listen = (id: number, signal?: AbortSignal) => listenAt(small.url, id, {}, signal);
      const first = new AbortController();
      const open = await listen(1, first.signal);
      expect(open.headers.get("content-type")).toContain("text/event-stream");
      const refused = await listen(2);
      expect(refused.status).toBe(503);
      expect(await refused.json()).toMatchObject({ id: 2, error: { code: -32012 } });
      first.abort();
      await eventually(async () => {
        const again = new AbortController();
        const reply = await listen(3, again.signal);
        again.abort();
        return reply.status === 200;
      });
    } finally {
      await small.stop();
    }
  });

  it("gives a listen stream's place back when a reload refuses its key and ends it with its result", async () => {
    const keys = (...ids: string[]) => ({
      gateway: { maxSessions: 1 },
      mcpServers: { faults: { type: "http", url: upstream.url } },
      security: { auth: { apiKeys: ids.map((id) => ({ id, key: `${id}-key-0123456789abcdef` })) } },
    });
    const small = await startGateway(keys("old", "new"));
    try {
      const listen = (id: number, key: string, signal?: AbortSignal) =>
        listenAt(small.url, id, { authorization: `Bearer ${key}-key-0123456789abcdef` }, signal);
      const open = await listen(1, "old");
      expect(open.headers.get("content-type")).toContain("text/event-stream");
      expect((await listen(2, "new")).status).toBe(503);

      await small.gateway.reload(resolveConfig(keys("new"), process.env).config);
      expect(await open.text()).toContain('"resultType":"complete"');
      const again = new AbortController();
      const reply = await listen(3, "new", again.signal);
      again.abort();
      expect(reply.status).toBe(200);
    } finally {
      await small.stop();
    }
  });
});

describe("an enveloped listen on a 2025-11-25 session", () => {
  it("ends with its result when a reload refuses the key the session opened with", async () => {
    const keys = (...ids: string[]) => ({
      mcpServers: { faults: { type: "http", url: upstream.url } },
      security: { auth: { apiKeys: ids.map((id) => ({ id, key: `${id}-key-0123456789abcdef` })) } },
    });
    const keyed = await startGateway(keys("old", "new"));
    try {
      const session = await rawSession(keyed.url, { authorization: "Bearer old-key-0123456789abcdef" });
      const open = await fetch(keyed.url, {
        method: "POST",
        headers: session.headers,
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "subscriptions/listen",
          params: { notifications: { toolsListChanged: true }, _meta: META },
        }),
      });
      expect(open.headers.get("content-type")).toContain("text/event-stream");
      const body = open.text();

      await keyed.gateway.reload(resolveConfig(keys("new"), process.env).config);
      expect(await body).toContain('"resultType":"complete"');
      const refused = await rawPost(
        keyed.url,
        JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" }),
        session.headers,
      );
      expect(refused.status).toBe(401);
    } finally {
      await keyed.stop();
    }
  });
});

describe("an enveloped request on a WebSocket session", () => {
  it("is served statelessly with resultType, next to the session's 2025 traffic", async () => {
    const ws = new WebSocket(gw.wsUrl, "mcp");
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const reply = new Promise<Record<string, unknown>>((resolve) =>
      ws.on("message", (data) => {
        const message = JSON.parse(String(data)) as Record<string, unknown>;
        if (message.id === 6) resolve(message);
      }),
    );
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 6, method: "tools/list", params: { _meta: META } }));
    expect(await reply).toMatchObject({
      id: 6,
      result: { resultType: "complete", cacheScope: "public", tools: expect.any(Array) },
    });
    const errors = new Promise<Array<Record<string, unknown>>>((resolve) => {
      const seen: Array<Record<string, unknown>> = [];
      ws.on("message", (data) => {
        const message = JSON.parse(String(data)) as Record<string, unknown>;
        if (message.id === 7 || message.id === 8) seen.push(message);
        if (seen.length === 2) resolve(seen.sort((a, b) => Number(a.id) - Number(b.id)));
      });
    });
    ws.send(
      JSON.stringify({
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: { name: "no_such_tool", arguments: {}, _meta: META },
      }),
    );
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 8, method: "nope/what", params: { _meta: META } }));
    expect(await errors).toMatchObject([
      { id: 7, error: { code: -32602, message: expect.stringContaining("no_such_tool") } },
      { id: 8, error: { code: -32601 } },
    ]);
    ws.close();
  });
});
