/**
 * toolgate as a client of upstreams of both protocol eras: a 2026-07-28 server on the SDK's v2 server package
 * (test/fixtures/modern-server.ts) and a 2025-11-25 server (the conformance fixture on SDK v1), reached
 * through the gateway by the official v1 SDK client (a 2025 session downstream).
 */

import { fileURLToPath } from "node:url";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { startConformanceServer } from "../fixtures/conformance-server.ts";
import { type RunningModernServer, startModernServer } from "../fixtures/modern-server.ts";
import {
  connectClient,
  eventually,
  type InProcessGateway,
  startGateway,
  textOf,
} from "../helpers/gateway.ts";

const MODERN_SERVER = fileURLToPath(new URL("../fixtures/modern-server.ts", import.meta.url));
const STRICT_SERVER = fileURLToPath(new URL("../fixtures/strict-legacy-server.ts", import.meta.url));
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const stop of cleanup.splice(0).reverse()) await stop().catch(() => {});
});

async function modern(): Promise<RunningModernServer> {
  const server = await startModernServer();
  cleanup.push(() => server.close());
  return server;
}

async function legacy(): Promise<{ url: string }> {
  const server = await startConformanceServer();
  cleanup.push(() => server.close());
  return server;
}

async function gateway(
  servers: Record<string, string>,
  upstreams: Record<string, unknown> = {},
): Promise<InProcessGateway> {
  const mcpServers = Object.fromEntries(
    Object.entries(servers).map(([name, url]) => [name, { type: "http", url }]),
  );
  const gw = await startGateway({ mcpServers, upstreams });
  cleanup.push(() => gw.stop());
  for (const name of Object.keys(servers)) {
    await eventually(() => gw.gateway.registry.get(name)?.state === "ready", 15_000);
  }
  return gw;
}

async function client(gw: InProcessGateway, elicitation = false): Promise<Client> {
  const c = await connectClient("http", gw, elicitation ? { capabilities: { elicitation: {} } } : {});
  cleanup.push(() => c.close());
  return c;
}

describe("upstream protocol eras", () => {
  it("speaks 2026-07-28 to a 2026 upstream and 2025-11-25 to a 2025 upstream, learned by probing", async () => {
    const m = await modern();
    const l = await legacy();
    const gw = await gateway({ modern: m.url, old: l.url });
    expect(gw.gateway.registry.get("modern")?.status()).toMatchObject({
      era: "2026-07-28",
      protocolVersion: "2026-07-28",
      serverInfo: { name: "modern-fixture" },
    });
    expect(gw.gateway.registry.get("old")?.status()).toMatchObject({ era: "2025-11-25" });

    const c = await client(gw);
    const names = (await c.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["modern__echo", "modern__slow", "old__test_simple_text"]));
    expect(textOf(await c.callTool({ name: "modern__echo", arguments: { text: "hi" } }))).toBe("echo: hi");
    expect(textOf(await c.callTool({ name: "old__test_simple_text", arguments: {} }))).toContain("simple");
  });

  it("sends the 2026 headers and _meta envelope, with Mcp-Name from the upstream's own tool name", async () => {
    const m = await modern();
    const gw = await gateway(
      { modern: m.url },
      { modern: { prefix: "", tools: { region_lookup: { rename: "where" } } } },
    );
    const c = await client(gw);
    const result = await c.callTool({
      name: "where",
      arguments: { region: "eu-west" },
      _meta: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
    });
    expect(textOf(result)).toBe("region eu-west");
    const calls = m.seen.filter((r) => r.method === "tools/call");
    // One request: the Mcp-Param header came from the catalog's tool definition, not a -32020 retry.
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call?.headers).toMatchObject({
      "mcp-method": "tools/call",
      "mcp-name": "region_lookup",
      "mcp-param-region": "eu-west",
      "mcp-protocol-version": "2026-07-28",
    });
    expect(call?.meta).toMatchObject({
      "io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientCapabilities": expect.objectContaining({
        elicitation: expect.anything(),
      }),
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    });
    expect(m.seen[0]?.method).toBe("server/discover");
    expect(m.seen.some((r) => r.method === "initialize")).toBe(false);
  });

  it("relays progress and cancellation across the era boundary", async () => {
    const m = await modern();
    const gw = await gateway({ modern: m.url });
    const c = await client(gw);
    const progress: number[] = [];
    const controller = new AbortController();
    const call = c.callTool({ name: "modern__slow", arguments: { ms: 60_000 } }, undefined, {
      signal: controller.signal,
      onprogress: (p) => {
        progress.push(p.progress);
        if (p.progress === 2) controller.abort("enough");
      },
    });
    await expect(call).rejects.toThrow();
    expect(progress).toEqual([1, 2]);
    await eventually(() => m.cancelled === 1);
  });

  it("turns an input-required round of a 2026 upstream into elicitation on the 2025 client's session", async () => {
    const m = await modern();
    const gw = await gateway({ modern: m.url });
    const c = await client(gw, true);
    const asked: string[] = [];
    c.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params.message);
      return { action: "accept", content: { name: "Ada" } };
    });
    const result = await c.callTool({ name: "modern__ask", arguments: {} });
    expect(asked).toEqual(["What is your name?"]);
    expect(textOf(result)).toBe("hello Ada");
    // The round's answer went back as a retry of the same call.
    expect(m.seen.filter((r) => r.method === "tools/call" && r.params?.name === "ask")).toHaveLength(2);
  });

  it("ends the round without a retry when the 2025 client cancels the call during it", async () => {
    const m = await modern();
    const gw = await gateway({ modern: m.url });
    const c = await client(gw, true);
    const controller = new AbortController();
    let answer: (value: { action: "accept"; content: { name: string } }) => void = () => {};
    c.setRequestHandler(ElicitRequestSchema, () => {
      controller.abort("changed my mind");
      return new Promise((resolve) => {
        answer = resolve;
      });
    });
    await expect(
      c.callTool({ name: "modern__ask", arguments: {} }, undefined, { signal: controller.signal }),
    ).rejects.toThrow();
    // The answer comes too late: the cancelled call does not send the upstream its retry.
    answer({ action: "accept", content: { name: "late" } });
    expect(textOf(await c.callTool({ name: "modern__echo", arguments: { text: "after" } }))).toBe(
      "echo: after",
    );
    expect(m.seen.filter((r) => r.method === "tools/call" && r.params?.name === "ask")).toHaveLength(1);
    expect(gw.gateway.registry.get("modern")?.status()).toMatchObject({ state: "ready", restarts: 0 });
  });

  it("fails an input-required round clearly when the 2025 client cannot answer it", async () => {
    const m = await modern();
    const gw = await gateway({ modern: m.url });
    const c = await client(gw);
    const outcome = await c.callTool({ name: "modern__ask", arguments: {} }).then(
      (result) => JSON.stringify(result),
      (err: Error) => err.message,
    );
    expect(outcome).toContain("elicitation/create (an input-required round) could not be answered");
    expect(outcome).toContain('"code":"UpstreamError"');
    // A failed round is the call's failure, not the connection's.
    expect(gw.gateway.registry.get("modern")?.status()).toMatchObject({ state: "ready", restarts: 0 });
  });

  it("turns sampling and roots rounds into requests on the 2025 client's session, in order", async () => {
    const m = await modern();
    const gw = await gateway({ modern: m.url });
    const c = await connectClient("http", gw, { capabilities: { sampling: {}, roots: {} } });
    cleanup.push(() => c.close());
    const asked: string[] = [];
    c.setRequestHandler(CreateMessageRequestSchema, async () => {
      asked.push("sampling");
      return { role: "assistant", model: "test", content: { type: "text", text: "a gateway" } };
    });
    c.setRequestHandler(ListRootsRequestSchema, async () => {
      asked.push("roots");
      return { roots: [{ uri: "file:///srv", name: "srv" }] };
    });
    const result = await c.callTool({ name: "modern__summarize", arguments: {} });
    expect(asked).toEqual(["sampling", "roots"]);
    expect(textOf(result)).toBe("model said: a gateway; roots: 1");
  });

  it("refreshes the catalog from a subscriptions/listen stream", async () => {
    const m = await modern();
    const gw = await gateway({ modern: m.url });
    const c = await client(gw);
    m.addTool("late");
    await eventually(async () => (await c.listTools()).tools.some((t) => t.name === "modern__late"));
    expect(m.seen.some((r) => r.method === "subscriptions/listen")).toBe(true);
  });

  it("carries a 2025 client's resource subscription and log level to a 2026 upstream", async () => {
    const m = await modern();
    const gw = await gateway({ modern: m.url });
    const c = await client(gw);
    const updates: string[] = [];
    const logs: unknown[] = [];
    c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(n.params.data);
    });
    await c.subscribeResource({ uri: "test://watched" });
    await eventually(() =>
      m.seen.some(
        (r) =>
          r.method === "subscriptions/listen" &&
          JSON.stringify(r.params?.notifications).includes("test://watched"),
      ),
    );
    m.touch();
    await eventually(() => updates.includes("test://watched"));

    await c.setLoggingLevel("info");
    expect(textOf(await c.callTool({ name: "modern__chatty", arguments: {} }))).toBe("said hello");
    const call = m.seen.findLast((r) => r.method === "tools/call");
    expect(call?.meta?.["io.modelcontextprotocol/logLevel"]).toBe("info");
    await eventually(() => logs.includes("hello from chatty"));
  });

  it("probes a stdio upstream on its own process and speaks 2026-07-28 to it, progress included", async () => {
    const gw = await startGateway({
      mcpServers: { local: { command: process.execPath, args: [MODERN_SERVER] } },
    });
    cleanup.push(() => gw.stop());
    await eventually(() => gw.gateway.registry.get("local")?.state === "ready", 20_000);
    expect(gw.gateway.registry.get("local")?.status()).toMatchObject({ era: "2026-07-28" });
    const c = await client(gw);
    expect(textOf(await c.callTool({ name: "local__echo", arguments: { text: "pipe" } }))).toBe("echo: pipe");
    const progress: number[] = [];
    const done = await c.callTool({ name: "local__slow", arguments: { ms: 1 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(textOf(done)).toBe("done");
    expect(progress).toEqual([1, 2]);
  });

  it("starts a stdio server that exits on the era probe again, and connects it with initialize", async () => {
    const gw = await startGateway({
      mcpServers: { strict: { command: process.execPath, args: [STRICT_SERVER] } },
    });
    cleanup.push(() => gw.stop());
    await eventually(() => gw.gateway.registry.get("strict")?.state === "ready", 20_000);
    expect(gw.gateway.registry.get("strict")?.status()).toMatchObject({ era: "2025-11-25", restarts: 0 });
    const c = await client(gw);
    expect(textOf(await c.callTool({ name: "strict__echo", arguments: { text: "ok" } }))).toBe("ok");
  });

  it("learns the era again when the upstream comes back speaking another one", async () => {
    const old = await startConformanceServer();
    const port = Number(new URL(old.url).port);
    const gw = await startGateway({
      mcpServers: { svc: { type: "http", url: old.url } },
      upstreams: { svc: { prefix: "", reconnect: { initialDelayMs: 50, maxDelayMs: 200 } } },
    });
    cleanup.push(() => gw.stop());
    const svc = () => gw.gateway.registry.get("svc");
    await eventually(() => svc()?.state === "ready", 15_000);
    expect(svc()?.status().era).toBe("2025-11-25");

    await old.close();
    await eventually(() => svc()?.state === "down");
    const upgraded = await startModernServer(port);
    cleanup.push(() => upgraded.close());
    await eventually(() => svc()?.state === "ready", 15_000);
    // Every start after the failure counts: how many attempts failed while the port was closed is timing.
    expect(svc()?.status().era).toBe("2026-07-28");
    expect(svc()?.status().restarts).toBeGreaterThanOrEqual(1);
    expect(svc()?.tools.map((t) => t.name)).toContain("echo");
  });

  it("stays on 2025-11-25 without probing when the config pins it", async () => {
    const m = await modern();
    const gw = await gateway({ modern: m.url }, { modern: { protocol: "2025-11-25" } });
    expect(gw.gateway.registry.get("modern")?.status().era).toBe("2025-11-25");
    expect(m.seen.some((r) => r.method === "server/discover")).toBe(false);
    const c = await client(gw);
    expect(textOf(await c.callTool({ name: "modern__echo", arguments: { text: "x" } }))).toBe("echo: x");
  });

  it("names the cause when a pinned 2026 upstream only speaks 2025", async () => {
    const l = await legacy();
    const gw = await startGateway({
      mcpServers: { old: { type: "http", url: l.url } },
      upstreams: { old: { protocol: "2026-07-28", reconnect: { initialDelayMs: 50, maxDelayMs: 100 } } },
    });
    cleanup.push(() => gw.stop());
    const status = await eventually(() => {
      const s = gw.gateway.registry.get("old")?.status();
      return s?.state === "down" ? s : undefined;
    });
    expect(status?.lastError).toMatch(/negotiat/i);
  });
});
