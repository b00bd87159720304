/**
 * The first catalog a client sees is complete: `serve --stdio` spawned by a client, and `serve --http`, hold
 * the first list requests until every upstream is ready or down (or `gateway.startupBudgetMs` passed), and
 * /readyz says ready only then.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { describe, expect, it } from "vitest";
import {
  connectClient,
  eventually,
  FAULT_SERVER,
  NODE,
  ROOT,
  spawnGateway,
  writeConfig,
} from "../helpers/gateway.ts";

/**
 * A client spawning `toolgate serve --stdio`, as Claude Desktop or the Inspector do; stderr and the
 * notifications it gets are collected.
 */
async function spawnStdio(
  config: unknown,
): Promise<{ client: Client; stderr: () => string; notifications: string[] }> {
  const transport = new StdioClientTransport({
    command: NODE,
    args: ["src/main.ts", "serve", "--stdio", "--config", await writeConfig(config)],
    cwd: ROOT,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const client = new Client({ name: "first-catalog-test", version: "1.0.0" });
  const notifications: string[] = [];
  client.fallbackNotificationHandler = async (n) => {
    notifications.push(n.method);
  };
  await client.connect(transport);
  return { client, stderr: () => stderr, notifications };
}

const slow = (ms: number) => ({ command: NODE, args: [FAULT_SERVER, "--start-delay-ms", String(ms)] });

describe("the first catalog over stdio", () => {
  it("the very first tools/list holds the tools of an upstream that takes a moment to start", async () => {
    const { client, notifications } = await spawnStdio({
      mcpServers: {
        slow: slow(1500),
        fast: { command: NODE, args: [FAULT_SERVER] },
        // Down at once (connection refused): it must not hold the list up to the budget.
        gone: { url: "http://127.0.0.1:9/mcp" },
      },
    });
    try {
      const first = await client.listTools();
      const names = first.tools.map((t) => t.name);
      expect(names).toContain("slow__echo");
      expect(names).toContain("fast__echo");
      const prompts = await client.listPrompts();
      expect(prompts.prompts.map((p) => p.name)).toContain("slow__greet");
      // The upstreams that came up while the list waited were not announced one by one: the list had them.
      expect(notifications.filter((m) => m.endsWith("/list_changed"))).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it("a first call of a tool not yet listed waits for its upstream instead of ToolNotFound", async () => {
    const { client } = await spawnStdio({ mcpServers: { slow: slow(1500) } });
    try {
      const result = await client.callTool({ name: "slow__echo", arguments: { text: "early" } });
      expect(result.isError).toBeFalsy();
      expect(JSON.stringify(result.content)).toContain("early");
    } finally {
      await client.close();
    }
  });

  it("announces an upstream that comes up after the start-up budget, and lists its tools then", async () => {
    const { client, notifications } = await spawnStdio({
      gateway: { startupBudgetMs: 300 },
      mcpServers: { late: slow(1500) },
    });
    try {
      expect((await client.listTools()).tools).toEqual([]);
      await eventually(() => notifications.includes("notifications/tools/list_changed"));
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("late__echo");
    } finally {
      await client.close();
    }
  });

  it("after the start-up budget the list is served and the log names the upstream still connecting", async () => {
    const { client, stderr } = await spawnStdio({
      gateway: { startupBudgetMs: 300 },
      mcpServers: { late: slow(60_000) },
    });
    try {
      // Answered (not held for the 60 s the upstream takes), without the late upstream's tools.
      const first = await client.listTools();
      expect(first.tools).toEqual([]);
      const line = await eventually(() =>
        stderr()
          .split("\n")
          .find((l) => l.includes("start-up budget passed")),
      );
      expect(JSON.parse(line as string)).toMatchObject({
        level: "warn",
        budgetMs: 300,
        connecting: ["late"],
      });
    } finally {
      await client.close();
    }
  });
});

describe("the first catalog over HTTP", () => {
  it("/readyz is 503 while an upstream connects, 200 once the catalog is complete", async () => {
    const gateway = await spawnGateway({ mcpServers: { slow: slow(4000) } });
    try {
      const before = await fetch(`${gateway.base}/readyz`);
      expect(before.status).toBe(503);
      expect(await before.json()).toMatchObject({ ready: false, detail: { catalog: "starting" } });
      // A client connecting now gets the complete list on its first request.
      const client = await connectClient("http", gateway);
      const first = await client.listTools();
      expect(first.tools.map((t) => t.name)).toContain("slow__echo");
      await client.close();
      const after = await fetch(`${gateway.base}/readyz`);
      expect(after.status).toBe(200);
      expect(await after.json()).toMatchObject({ ready: true, detail: { catalog: "complete" } });
    } finally {
      await gateway.stop();
    }
  });

  it("/readyz stays 503 when every upstream is down after start-up", async () => {
    const gateway = await spawnGateway({ mcpServers: { gone: { url: "http://127.0.0.1:9/mcp" } } });
    try {
      const body = await eventually(async () => {
        const r = await fetch(`${gateway.base}/readyz`);
        const json = (await r.json()) as { detail: { catalog: string } };
        return json.detail.catalog === "complete" ? { status: r.status, json } : undefined;
      });
      expect(body?.status).toBe(503);
    } finally {
      await gateway.stop();
    }
  });
});
