/**
 * Who may come in: API keys (Bearer and X-API-Key), OAuth access tokens with RFC 9728 metadata, DNS-rebinding
 * protection (Origin/Host), and the refusal to serve a non-loopback address without authentication.
 */
import { spawn } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { createGateway } from "../../src/app.ts";
import { resolveConfig } from "../../src/config/load.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { type InProcessGateway, NODE, ROOT, startGateway, writeConfig } from "../helpers/gateway.ts";
import { BASE_HEADERS, initializeBody, parseMessages, rawPost, rawSession } from "../helpers/raw-mcp.ts";
import { startTestIssuer, type TestIssuer } from "../unit/security/jwks-server.ts";

const KEY = "test-key-0123456789abcdef";
const MODERN = "2026-07-28";

let upstream: RunningFaultServer;

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
});

afterAll(async () => {
  await upstream?.close();
});

/** A raw request with any Host header (fetch does not let a caller choose it). */
function withHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = initializeBody();
    const req = request(url, { method: "POST", headers: { ...BASE_HEADERS, host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once("error", reject);
    req.end(body);
  });
}

describe("API keys", () => {
  let gw: InProcessGateway;

  beforeAll(async () => {
    gw = await startGateway({
      mcpServers: { faults: { type: "http", url: upstream.url } },
      security: { auth: { apiKeys: [{ id: "ci", key: KEY }] } },
    });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it("answers a request without a key with 401 and a Bearer challenge", async () => {
    const reply = await rawPost(gw.url, initializeBody());
    expect(reply.status).toBe(401);
    expect(reply.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(JSON.stringify(reply.messages[0])).toMatch(/authentication required/);
  });

  it("answers a wrong key with 401 invalid_token", async () => {
    const reply = await rawPost(gw.url, initializeBody(), {
      ...BASE_HEADERS,
      authorization: "Bearer not-the-key-at-all",
    });
    expect(reply.status).toBe(401);
    expect(reply.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it.each([
    ["Authorization: Bearer", { authorization: `Bearer ${KEY}` }],
    ["X-API-Key", { "x-api-key": KEY }],
  ])("serves a good key sent as %s", async (_how, header) => {
    const reply = await rawPost(gw.url, initializeBody(), { ...BASE_HEADERS, ...header });
    expect(reply.status).toBe(200);
    expect(reply.headers.get("mcp-session-id")).toBeTruthy();
  });

  it("refuses a foreign Origin with 403 even with a good key", async () => {
    const reply = await rawPost(gw.url, initializeBody(), {
      ...BASE_HEADERS,
      authorization: `Bearer ${KEY}`,
      origin: "http://evil.example",
    });
    expect(reply.status).toBe(403);
    expect(JSON.stringify(reply.messages[0])).toContain("evil.example");
  });

  it("refuses a foreign Host with 403 (DNS rebinding)", async () => {
    expect(await withHost(gw.url, "evil.example")).toBe(403);
    expect(await withHost(gw.url, `127.0.0.1:${new URL(gw.url).port}`)).toBe(401);
  });
});

/** A 2025-11-25 session with its GET stream, and a 2026-07-28 listen stream (request id 7), opened with `auth`. */
async function openStreams(url: string, auth: Record<string, string>) {
  const session = await rawSession(url, auth);
  const get = await fetch(url, { headers: { ...session.headers, accept: "text/event-stream" } });
  expect(get.status).toBe(200);
  const listen = await fetch(url, {
    method: "POST",
    headers: {
      ...BASE_HEADERS,
      ...auth,
      "mcp-protocol-version": MODERN,
      "mcp-method": "subscriptions/listen",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "subscriptions/listen",
      params: {
        notifications: { toolsListChanged: true },
        _meta: {
          "io.modelcontextprotocol/protocolVersion": MODERN,
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      },
    }),
  });
  expect(listen.status).toBe(200);
  return { session, get, listen };
}

describe("a reload that changes security.auth.oauth", () => {
  it("verifies with the new settings from the next request, ends the WebSockets and streams they refuse, and moves the metadata document", async () => {
    const issuer = await startTestIssuer();
    const before = "http://localhost/mcp";
    const after = "http://localhost/v2/mcp";
    const moved = "/.well-known/oauth-protected-resource/v2/mcp";
    const config = (audience: string, resourceMetadataPath?: string) => ({
      mcpServers: { faults: { type: "http", url: upstream.url } },
      security: {
        auth: {
          oauth: {
            issuer: issuer.issuer,
            audience,
            jwksUri: issuer.jwksUri,
            ...(resourceMetadataPath && { resourceMetadataPath }),
          },
        },
      },
    });
    const gw = await startGateway(config(before));
    try {
      const tokenFor = (aud: string) => issuer.sign({ sub: "dana", aud, iss: issuer.issuer });
      const [oldToken, newToken] = [await tokenFor(before), await tokenFor(after)];
      const initialize = (token: string) =>
        rawPost(gw.url, initializeBody(), { ...BASE_HEADERS, authorization: `Bearer ${token}` });
      expect((await initialize(oldToken)).status).toBe(200);
      const auth = { authorization: `Bearer ${oldToken}` };
      const socket = new WebSocket(gw.wsUrl, "mcp", { headers: auth });
      await new Promise<void>((resolve, reject) => {
        socket.once("open", resolve);
        socket.once("error", reject);
      });
      const closed = new Promise<[number, string]>((resolve) =>
        socket.once("close", (code, reason) => resolve([code, reason.toString()])),
      );

      const { get, listen } = await openStreams(gw.url, auth);

      await gw.gateway.reload(resolveConfig(config(after, moved), process.env).config);
      expect(await closed).toEqual([1008, "the credentials it opened with are no longer accepted"]);
      // The streams end too (a hang here is the defect), and the listen request gets its result.
      await get.text();
      expect(parseMessages(await listen.text())).toContainEqual(
        expect.objectContaining({ id: 7, result: expect.objectContaining({ resultType: "complete" }) }),
      );
      const refused = await initialize(oldToken);
      expect(refused.status).toBe(401);
      expect(refused.headers.get("www-authenticate")).toContain(
        `resource_metadata="http://localhost${moved}"`,
      );
      expect((await initialize(newToken)).status).toBe(200);
      const document = await fetch(`${gw.base}${moved}`);
      expect(document.status).toBe(200);
      expect(await document.json()).toMatchObject({
        resource: after,
        authorization_servers: [issuer.issuer],
      });
      expect((await fetch(`${gw.base}/.well-known/oauth-protected-resource`)).status).toBe(404);
    } finally {
      await gw.stop();
      await issuer.close();
    }
  });
});

describe("OAuth access tokens", () => {
  const audience = "http://localhost/mcp";
  let issuer: TestIssuer;
  let gw: InProcessGateway;

  beforeAll(async () => {
    issuer = await startTestIssuer();
    gw = await startGateway({
      mcpServers: { faults: { type: "http", url: upstream.url } },
      security: { auth: { oauth: { issuer: issuer.issuer, audience, jwksUri: issuer.jwksUri } } },
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await issuer?.close();
  });

  it("serves the protected-resource metadata document, to browser clients of any origin too", async () => {
    const response = await fetch(`${gw.base}/.well-known/oauth-protected-resource`);
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(await response.json()).toMatchObject({
      resource: audience,
      authorization_servers: [issuer.issuer],
    });
  });

  it("answers 401 pointing to the metadata document", async () => {
    const reply = await rawPost(gw.url, initializeBody());
    expect(reply.status).toBe(401);
    expect(reply.headers.get("www-authenticate")).toContain(
      'resource_metadata="http://localhost/.well-known/oauth-protected-resource"',
    );
  });

  it("serves a valid token and refuses one for another audience", async () => {
    const good = await issuer.sign({ sub: "carol", aud: audience, iss: issuer.issuer });
    const ok = await rawPost(gw.url, initializeBody(), { ...BASE_HEADERS, authorization: `Bearer ${good}` });
    expect(ok.status).toBe(200);
    const other = await issuer.sign({ sub: "carol", aud: "http://localhost/other", iss: issuer.issuer });
    const refused = await rawPost(gw.url, initializeBody(), {
      ...BASE_HEADERS,
      authorization: `Bearer ${other}`,
    });
    expect(refused.status).toBe(401);
    expect(JSON.stringify(refused.messages[0])).toContain("audience");
  });

  it("ends what outlives its request when the token expires: a WebSocket session, a GET stream, a listen stream", async () => {
    // Accepted within the 30 s clock skew, so for the gateway it expires about 5 s from now.
    const exp = Math.floor(Date.now() / 1000) - 25;
    const token = await issuer.sign({ sub: "carol", aud: audience, iss: issuer.issuer }, { expiresIn: exp });
    const auth = { authorization: `Bearer ${token}` };
    const socket = new WebSocket(gw.wsUrl, "mcp", { headers: auth });
    const socketClosed = new Promise<{ code: number; reason: string }>((resolve, reject) => {
      socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
      socket.once("error", reject);
    });
    const { session, get, listen } = await openStreams(gw.url, auth);

    expect(await socketClosed).toEqual({
      code: 1008,
      reason: "the access token expired: reconnect with a fresh one",
    });
    // Each stream ends (a hang here is the defect) and the listen request gets its result.
    await get.text();
    expect(parseMessages(await listen.text())).toContainEqual(
      expect.objectContaining({ id: 7, result: expect.objectContaining({ resultType: "complete" }) }),
    );
    // What the streams' clients do next meets the guard.
    const again = await fetch(gw.url, { headers: { ...session.headers, accept: "text/event-stream" } });
    expect(again.status).toBe(401);
    expect(Date.now()).toBeGreaterThanOrEqual((exp + 30) * 1000);
  });
});

describe("binding to a public address", () => {
  it("refuses to listen on 0.0.0.0 without authentication and exits 2 with the reason", async () => {
    const file = await writeConfig({ mcpServers: {} });
    const child = spawn(
      NODE,
      [join(ROOT, "src/main.ts"), "serve", "--config", file, "--http", "0", "--host", "0.0.0.0"],
      {
        cwd: ROOT,
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += String(chunk);
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toContain("refusing to listen on 0.0.0.0 without authentication");
  });

  it("rejects a reload that would leave it without authentication, and keeps the keys it has", async () => {
    const keyed = { mcpServers: {}, security: { auth: { apiKeys: [{ id: "ci", key: KEY }] } } };
    const gateway = await createGateway(resolveConfig(keyed, process.env).config, {
      log: silentLogger,
      env: process.env,
    });
    try {
      // Requests go to the loopback address; the listener is a public one's.
      const port = await gateway.serveHttp("0.0.0.0", 0);
      const url = `http://127.0.0.1:${port}/mcp`;
      const open = resolveConfig({ mcpServers: {} }, process.env).config;
      await expect(gateway.reload(open)).rejects.toThrow(
        /refusing to listen on 0.0.0.0 without authentication/,
      );
      expect((await rawPost(url, initializeBody())).status).toBe(401);
      const authed = await rawPost(url, initializeBody(), {
        ...BASE_HEADERS,
        authorization: `Bearer ${KEY}`,
      });
      expect(authed.status).toBe(200);
    } finally {
      await gateway.stop();
    }
  });
});
