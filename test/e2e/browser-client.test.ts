/**
 * A browser page as an MCP client of the gateway binary (Debian's Chromium through playwright-core): a page
 * whose origin is listed in `gateway.allowedOrigins` passes the CORS preflight, reads the session id of a
 * 2025-11-25 session and calls a tool in it, and calls one statelessly in 2026-07-28 with that era's headers.
 * A page of an origin not listed gets nothing: the browser refuses, as CORS says.
 */
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, FAULT_SERVER, type GatewayProcess, NODE, spawnGateway } from "../helpers/gateway.ts";

const CHROMIUM = "/usr/bin/chromium";

let listed: Server;
let other: Server;
let gw: GatewayProcess;
let browser: Browser;

/** A page server: an empty document at every path, under its own origin. */
async function pageServer(): Promise<Server> {
  const server = createServer((_req, res) =>
    res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html>"),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}
const originOf = (server: Server) => `http://localhost:${(server.address() as AddressInfo).port}`;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  listed = await pageServer();
  other = await pageServer();
  gw = await spawnGateway({
    gateway: { allowedOrigins: [originOf(listed)] },
    mcpServers: { faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] } },
  });
  await eventually(async () => (await fetch(`${gw.base}/readyz`)).ok);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
  });
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  listed?.close();
  other?.close();
});

/** Runs in the page: both eras' calls with plain fetch, as a browser MCP client makes them. */
async function callFromPage(url: string): Promise<unknown> {
  const json = { "content-type": "application/json", accept: "application/json, text/event-stream" };
  const post = async (body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url, {
      method: "POST",
      headers: { ...json, ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    // An answer may come as one server-sent event.
    const data = res.headers.get("content-type")?.startsWith("text/event-stream")
      ? text
          .split("\n")
          .find((l) => l.startsWith("data: "))
          ?.slice(6)
      : text;
    return { res, body: data ? JSON.parse(data) : undefined };
  };
  const clientInfo = { name: "page", version: "1" };
  const init = await post({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo },
  });
  const session = init.res.headers.get("mcp-session-id");
  const inSession = { "mcp-session-id": session ?? "", "mcp-protocol-version": "2025-11-25" };
  await post({ jsonrpc: "2.0", method: "notifications/initialized" }, inSession);
  const call = { name: "faults__echo", arguments: { text: "from the page" } };
  const legacy = await post({ jsonrpc: "2.0", id: 2, method: "tools/call", params: call }, inSession);
  const meta = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": clientInfo,
  };
  const modern = await post(
    { jsonrpc: "2.0", id: 3, method: "tools/call", params: { ...call, _meta: meta } },
    { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": call.name },
  );
  return { session, legacy: legacy.body, modern: modern.body };
}

describe.skipIf(!existsSync(CHROMIUM))("a browser page as an MCP client", () => {
  it("calls tools from an origin listed in gateway.allowedOrigins, in both eras", async () => {
    const page = await browser.newPage();
    await page.goto(`${originOf(listed)}/`);
    const seen = (await page.evaluate(callFromPage, gw.url)) as Record<string, unknown>;
    expect(seen.session).toMatch(/\S/);
    expect(seen.legacy).toMatchObject({
      id: 2,
      result: { content: [{ type: "text", text: "from the page" }] },
    });
    expect(seen.modern).toMatchObject({
      id: 3,
      result: { resultType: "complete", content: [{ type: "text", text: "from the page" }] },
    });
    await page.close();
  });

  it("gives a page of an origin not listed nothing to read", async () => {
    const page = await browser.newPage();
    await page.goto(`${originOf(other)}/`);
    const failure = await page.evaluate(async (url) => {
      try {
        await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
        return "answered";
      } catch (err) {
        return (err as Error).name;
      }
    }, gw.url);
    expect(failure).toBe("TypeError");
    await page.close();
  });
});
