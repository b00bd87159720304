/**
 * CORS on `/mcp` over real HTTP: granted to the origins listed in `gateway.allowedOrigins` only (preflight,
 * answers, a 401's challenge readable), never to loopback origins by default, and never on the hot path of
 * clients that send no Origin. test/e2e/browser-client.test.ts has a real browser obey it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InProcessGateway, startGateway } from "../helpers/gateway.ts";
import { BASE_HEADERS, initializeBody, rawPost } from "../helpers/raw-mcp.ts";

const LISTED = "https://app.example.com";
const LOOPBACK = "http://localhost:3000";
const KEY = "cors-key-0123456789abcdef";

let open: InProcessGateway;
let authed: InProcessGateway;

beforeAll(async () => {
  const gateway = { allowedOrigins: [LISTED] };
  open = await startGateway({ gateway, mcpServers: {} });
  authed = await startGateway({
    gateway,
    mcpServers: {},
    security: { auth: { apiKeys: [{ id: "k", key: KEY }] } },
  });
});

afterAll(async () => {
  await open?.stop();
  await authed?.stop();
});

const preflight = (url: string, origin: string) =>
  fetch(url, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type, mcp-protocol-version, mcp-method, authorization",
    },
  });

describe("CORS on /mcp", () => {
  it("answers a listed origin's preflight with the methods, its headers and what it may read", async () => {
    const res = await preflight(open.url, LISTED);
    expect(res.status).toBe(204);
    expect(Object.fromEntries(res.headers)).toMatchObject({
      "access-control-allow-origin": LISTED,
      "access-control-allow-methods": "GET, POST, DELETE",
      "access-control-allow-headers": "content-type, mcp-protocol-version, mcp-method, authorization",
      "access-control-expose-headers": "mcp-session-id, mcp-protocol-version, www-authenticate",
    });
  });

  it("refuses the preflight of an origin not listed, loopback included, naming the setting", async () => {
    for (const origin of [LOOPBACK, "https://evil.example"]) {
      const res = await preflight(open.url, origin);
      expect(res.status).toBe(403);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(await res.text()).toContain(`add \\"${origin}\\" to let a browser page there use /mcp`);
    }
  });

  it("lets a listed origin read answers and the session id; others get no CORS headers", async () => {
    const listed = await rawPost(open.url, initializeBody(), { ...BASE_HEADERS, origin: LISTED });
    expect(listed.status).toBe(200);
    expect(listed.headers.get("access-control-allow-origin")).toBe(LISTED);
    expect(listed.headers.get("access-control-expose-headers")).toContain("mcp-session-id");
    // A loopback page may still send (the rebinding check allows it) but not read; a client without Origin
    // gets no CORS headers at all.
    for (const headers of [{ ...BASE_HEADERS, origin: LOOPBACK }, BASE_HEADERS]) {
      const reply = await rawPost(open.url, initializeBody(), headers);
      expect(reply.status).toBe(200);
      expect(reply.headers.get("access-control-allow-origin")).toBeNull();
    }
  });

  it("lets a listed origin read a 401 and its challenge, so a browser client can sign in", async () => {
    const reply = await rawPost(authed.url, initializeBody(), { ...BASE_HEADERS, origin: LISTED });
    expect(reply.status).toBe(401);
    expect(reply.headers.get("access-control-allow-origin")).toBe(LISTED);
    expect(reply.headers.get("www-authenticate")).toMatch(/^Bearer/);
  });
});
