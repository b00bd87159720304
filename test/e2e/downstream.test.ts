/**
 * The gateway binary, driven by the official SDK Client over every downstream transport, in front of real
 * upstreams: the fault fixture (stdio), server-everything (stdio), server-memory (stdio) and one unreachable.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectClient,
  type Downstream,
  EVERYTHING,
  eventually,
  FAULT_SERVER,
  type GatewayProcess,
  MEMORY,
  NODE,
  spawnGateway,
  textOf,
  writeConfig,
} from "../helpers/gateway.ts";
import { expectAllProgress, watchProgress } from "../helpers/progress.ts";

const config = {
  mcpServers: {
    faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] },
    everything: { command: NODE, args: [EVERYTHING, "stdio"] },
    memory: { command: NODE, args: [MEMORY], env: { MEMORY_FILE_PATH: "/tmp/toolgate-e2e-memory.jsonl" } },
    broken: { type: "http", url: "http://127.0.0.1:9/mcp" },
  },
  upstreams: {
    broken: { reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } },
    faults: { reconnect: { initialDelayMs: 100, maxDelayMs: 500 } },
  },
};

describe.each<Downstream>(["http", "ws", "stdio"])("downstream over %s", (kind) => {
  let gateway: GatewayProcess | undefined;
  let client: Client;
  const listChanged: string[] = [];
  const logs: unknown[] = [];

  beforeAll(async () => {
    let target: { url?: string; wsUrl?: string; configFile?: string };
    if (kind === "stdio") target = { configFile: await writeConfig(config) };
    else {
      gateway = await spawnGateway(config);
      target = gateway;
    }
    client = await connectClient(kind, target, {
      capabilities: { sampling: {}, elicitation: { form: {} }, roots: {} },
    });
    client.setRequestHandler(ListRootsRequestSchema, async () => ({
      roots: [{ uri: "file:///srv/project", name: "project" }],
    }));
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(n.params.data);
    });
    client.setRequestHandler(ElicitRequestSchema, async () => ({
      action: "accept",
      content: { answer: "yes" },
    }));
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged.push("tools");
    });
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
      role: "assistant",
      model: "test-model",
      content: { type: "text", text: `sampled: ${JSON.stringify(request.params.messages[0]?.content)}` },
    }));
    // Upstreams connect in the background; wait until the three healthy ones are in the catalog.
    await eventually(async () => {
      const { tools } = await client.listTools();
      const upstreams = new Set(tools.map((t) => t.name.split("__")[0]));
      return upstreams.has("faults") && upstreams.has("everything") && upstreams.has("memory");
    });
  });

  afterAll(async () => {
    await client?.close();
    await gateway?.stop();
  });

  it("lists the tools of several upstreams under their prefixes, without the unreachable one", async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toContain("faults__echo");
    expect(names).toContain("everything__echo");
    expect(names).toContain("memory__read_graph");
    expect(names.some((n) => n.startsWith("broken__"))).toBe(false);
    for (const name of names) expect(name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
  });

  it("calls tools of different upstreams through one session", async () => {
    const a = await client.callTool({ name: "faults__echo", arguments: { text: "hello" } });
    expect(textOf(a)).toBe("hello");
    const b = await client.callTool({ name: "everything__echo", arguments: { message: "world" } });
    expect(textOf(b)).toContain("world");
  });

  it("forwards progress notifications with the client's own token", async () => {
    const seen: number[] = [];
    const watch = watchProgress(client);
    try {
      const result = await client.callTool(
        { name: "faults__progress", arguments: { steps: 3, intervalMs: 20 } },
        undefined,
        { onprogress: (p) => seen.push(p.progress) },
      );
      expect(textOf(result)).toBe("done");
    } finally {
      watch.stop();
    }
    expectAllProgress(watch, seen, [1, 2, 3]);
  });

  it("cancels the upstream call when the client cancels", async () => {
    const controller = new AbortController();
    const pending = client.callTool({ name: "faults__hang", arguments: {} }, undefined, {
      signal: controller.signal,
    });
    // Let the call reach the upstream before cancelling it.
    await eventually(async () => {
      const stats = JSON.parse(textOf(await client.callTool({ name: "faults__stats", arguments: {} })));
      return stats.inFlight > 0;
    });
    controller.abort("test cancels");
    await expect(pending).rejects.toThrow();
    const stats = await eventually(async () => {
      const s = JSON.parse(textOf(await client.callTool({ name: "faults__stats", arguments: {} })));
      return s.cancelled.length > 0 ? s : undefined;
    });
    expect(stats.inFlight).toBe(0);
  });

  it("routes an upstream's sampling request back to the calling client", async () => {
    const result = await client.callTool({ name: "faults__sample", arguments: { prompt: "hi" } });
    expect(result.isError).not.toBe(true);
    expect(textOf(result)).toContain("sampled:");
  });

  it("routes an upstream's elicitation request back to the calling client", async () => {
    const result = await client.callTool({ name: "faults__elicit", arguments: { message: "sure?" } });
    expect(textOf(result)).toContain("accept");
    expect(textOf(result)).toContain("yes");
  });

  it("routes an upstream's roots/list to the calling client", async () => {
    const result = await client.callTool({ name: "faults__roots", arguments: {} });
    expect(textOf(result)).toContain("file:///srv/project");
  });

  it("forwards an upstream's log message to the calling client", async () => {
    await client.callTool({
      name: "faults__log",
      arguments: { level: "warning", message: `hello from ${kind}` },
    });
    await eventually(() => logs.includes(`hello from ${kind}`));
  });

  it("propagates tools/list_changed from an upstream", async () => {
    const before = listChanged.length;
    await client.callTool({ name: "faults__add_tool", arguments: { name: `added_${kind}` } });
    await eventually(() => listChanged.length > before);
    await eventually(async () =>
      (await client.listTools()).tools.some((t) => t.name === `faults__added_${kind}`),
    );
  });

  it("answers an unknown tool with a JSON-RPC error naming it", async () => {
    await expect(client.callTool({ name: "nope__missing", arguments: {} })).rejects.toThrow(/nope__missing/);
  });

  it("restarts a crashed stdio upstream and serves later calls", async () => {
    const crashed = await client.callTool({ name: "faults__crash", arguments: {} });
    expect(crashed.isError).toBe(true);
    expect(textOf(crashed)).toMatch(/faults/);
    const after = await eventually(
      async () => {
        const r = await client.callTool({ name: "faults__echo", arguments: { text: "back" } });
        return r.isError ? undefined : r;
        // Polled gently: failed calls during the restart count toward the upstream's breaker.
      },
      30_000,
      250,
    );
    expect(textOf(after)).toBe("back");
  });
});
