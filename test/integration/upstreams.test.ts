/**
 * The upstream layer against real MCP servers over real transports on 127.0.0.1: the reference
 * server-everything (stdio, Streamable HTTP) and the fault-injecting fixture (stdio child process, or
 * in-process over HTTP, SSE and WebSocket).
 */

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { createRequire } from "node:module";
import { type AddressInfo, createServer as createNetServer, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  resolveConfig,
  type McpTransportConfig as TransportConfig,
  type UpstreamConfig,
} from "../../src/config/load.ts";
import { ErrorCode, GatewayError } from "../../src/errors.ts";
import { createLogger, silentLogger } from "../../src/telemetry/log.ts";
import { backoffDelay } from "../../src/upstreams/backoff.ts";
import type { UpstreamHandle } from "../../src/upstreams/handle.ts";
import { UpstreamRegistry } from "../../src/upstreams/registry.ts";
import {
  type CatalogKind,
  Upstream,
  type UpstreamOptions,
  type UpstreamState,
} from "../../src/upstreams/upstream.ts";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { freePort } from "../helpers/ports.ts";

const EVERYTHING = createRequire(import.meta.url).resolve(
  "@modelcontextprotocol/server-everything/dist/index.js",
);
const FAULT_SERVER = fileURLToPath(new URL("../fixtures/fault-server.ts", import.meta.url));
const READY_MS = 15_000;

/** Everything a test starts, stopped after it (upstreams first, so no reconnect hits a closed server). */
const upstreams: Array<Upstream | UpstreamRegistry> = [];
const servers: RunningFaultServer[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((u) => (u instanceof Upstream ? u.stop() : u.stopAll())));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
});

function config(name: string, transport: TransportConfig): UpstreamConfig {
  const server =
    transport.type === "stdio"
      ? { command: transport.command, args: transport.args }
      : { type: transport.type, url: transport.url, headers: transport.headers };
  const { config } = resolveConfig({
    mcpServers: { [name]: server },
    upstreams: { [name]: { reconnect: { initialDelayMs: 20, maxDelayMs: 100 } } },
  });
  const [upstream] = config.upstreams;
  if (!upstream) throw new Error("no upstream in the resolved config");
  return upstream;
}

function stdio(...args: string[]): TransportConfig {
  return { type: "stdio", command: process.execPath, args, env: {}, cwd: undefined };
}

function remote(type: "http" | "sse" | "ws", url: string): TransportConfig {
  return { type, url, headers: {} };
}

function upstream(cfg: UpstreamConfig, options: Partial<UpstreamOptions> = {}): Upstream {
  const u = new Upstream(cfg, { log: silentLogger, ...options });
  upstreams.push(u);
  u.start();
  return u;
}

async function ready<U extends UpstreamHandle>(u: U): Promise<U> {
  if (!(await u.whenReady(READY_MS))) throw new Error(`${u.name} not ready: ${JSON.stringify(u.status())}`);
  return u;
}

async function faultServer(
  transport: "http" | "sse" | "ws",
  options: { extraTools?: number; pageSize?: number } = {},
) {
  const server = await startFaultServer({ transport, ...options });
  servers.push(server);
  return server;
}

function textOf(result: Record<string, unknown>): string {
  const [first] = result.content as Array<{ text?: string }>;
  return first?.text ?? "";
}

async function callError(promise: Promise<unknown>): Promise<GatewayError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof GatewayError)) throw new Error(`expected a GatewayError, got ${String(err)}`);
  return err;
}

/** Polls `check` every few ms until it is true (bounded by the test timeout). */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("server-everything", () => {
  it("connects over stdio, negotiates the protocol and discovers tools, resources and prompts", async () => {
    const u = await ready(upstream(config("everything", stdio(EVERYTHING, "stdio"))));
    const status = u.status();
    expect(status).toMatchObject({
      state: "ready",
      transport: "stdio",
      restarts: 0,
      protocolVersion: "2025-11-25",
    });
    expect(status.serverInfo?.name).toBe("mcp-servers/everything");
    expect(u.tools.map((t) => t.name)).toContain("echo");
    expect(status.tools).toBe(u.tools.length);
    expect(u.resources.length).toBeGreaterThan(0);
    expect(u.prompts.length).toBeGreaterThan(0);
    expect(u.capabilities?.tools).toBeDefined();
    const result = await u.request("tools/call", { name: "echo", arguments: { message: "hi" } });
    expect(textOf(result)).toBe("Echo: hi");
  });

  it("connects over Streamable HTTP, retrying until the server listens", async () => {
    const port = await freePort();
    // Started before the server: the first attempts are refused and retried.
    const u = upstream(config("everything-http", remote("http", `http://127.0.0.1:${port}/mcp`)));
    const child = spawn(process.execPath, [EVERYTHING, "streamableHttp"], {
      env: { ...process.env, PORT: String(port) },
      stdio: "ignore",
    });
    children.push(child);
    try {
      await ready(u);
      expect(u.status()).toMatchObject({ transport: "http", protocolVersion: "2025-11-25" });
      expect(u.tools.map((t) => t.name)).toContain("echo");
      const result = await u.request("tools/call", { name: "echo", arguments: { message: "over http" } });
      expect(textOf(result)).toBe("Echo: over http");
    } finally {
      await u.stop();
      child.kill("SIGTERM");
    }
  });
});

describe("discovery", () => {
  it("follows nextCursor through every page of tools/list", async () => {
    const u = await ready(
      upstream(
        config(
          "paged",
          stdio(FAULT_SERVER, "--transport", "stdio", "--extra-tools", "25", "--page-size", "7"),
        ),
      ),
    );
    const firstPage = await u.request("tools/list", {});
    expect(firstPage.nextCursor).toEqual(expect.any(String));
    expect((firstPage.tools as unknown[]).length).toBe(7);
    const names = u.tools.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    for (let i = 0; i < 25; i++) expect(names).toContain(`t${i}`);
    expect(names).toContain("echo");
    expect(u.resourceTemplates.map((t) => t.uriTemplate)).toEqual(["fixture://item/{id}"]);
  });

  it("refreshes the tool list on tools/list_changed and emits catalogChanged", async () => {
    const server = await faultServer("http");
    const u = await ready(upstream(config("changing", remote("http", server.url))));
    const before = u.tools.length;
    const changed = once(u, "catalogChanged") as Promise<[CatalogKind[]]>;
    await u.request("tools/call", { name: "add_tool", arguments: { name: "late_tool" } });
    const [kinds] = await changed;
    expect(kinds).toEqual(["tools"]);
    expect(u.tools.map((t) => t.name)).toContain("late_tool");
    expect(u.status().tools).toBe(before + 1);
  });
  it("stops during a refresh without warning that the refresh failed", async () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", sink: (line) => lines.push(line) });
    const u = await ready(upstream(config("refresh-hangs", stdio("-e", REFRESH_HANGS)), { log }));
    await until(() => lines.some((l) => l.includes("refresh tools/list held")), "the refresh's tools/list");
    await u.stop();
    const warnings = lines.map((l) => JSON.parse(l) as { level: string }).filter((l) => l.level === "warn");
    expect(warnings).toEqual([]);
  });
});

/**
 * A stdio server that answers initialize and its first tools/list, then announces tools/list_changed and never
 * answers the tools/list of the refresh (saying so on stderr); anything else unknown gets MethodNotFound.
 */
const REFRESH_HANGS = `
  const send = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
  let lists = 0;
  require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
    const m = JSON.parse(line);
    if (m.method === "initialize") {
      const result = { protocolVersion: m.params.protocolVersion, capabilities: { tools: { listChanged: true } },
        serverInfo: { name: "refresh-hangs", version: "1.0.0" } };
      send({ jsonrpc: "2.0", id: m.id, result });
    } else if (m.method === "tools/list" && ++lists === 1) {
      send({ jsonrpc: "2.0", id: m.id, result: { tools: [] } });
      send({ jsonrpc: "2.0", method: "notifications/tools/list_changed" });
    } else if (m.method === "tools/list") {
      process.stderr.write("refresh tools/list held\\n");
    } else if (m.id !== undefined && m.method) {
      send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "Method not found" } });
    }
  });
`;

describe("requests", () => {
  it("reports progress through onprogress", async () => {
    const server = await faultServer("http");
    const u = await ready(upstream(config("progress", remote("http", server.url))));
    const updates: Array<{ progress: number; total?: number; message?: string }> = [];
    const result = await u.request(
      "tools/call",
      { name: "progress", arguments: { steps: 3, intervalMs: 5 } },
      { onprogress: (p) => updates.push(p) },
    );
    expect(textOf(result)).toBe("done");
    expect(updates.map((p) => [p.progress, p.total, p.message])).toEqual([
      [1, 3, "step 1"],
      [2, 3, "step 2"],
      [3, 3, "step 3"],
    ]);
  });

  it("sends notifications/cancelled upstream when the caller aborts", async () => {
    const server = await faultServer("http");
    const u = await ready(upstream(config("cancel", remote("http", server.url))));
    const controller = new AbortController();
    const call = u.request("tools/call", { name: "hang", arguments: {} }, { signal: controller.signal });
    await until(() => server.stats().calls.hang === 1, "the hang call to arrive");
    controller.abort();
    const err = await callError(call);
    expect(err.code).toBe(ErrorCode.Cancelled);
    expect(err.upstream).toBe("cancel");
    await until(() => server.stats().cancelled.length === 1, "the upstream to see the cancellation");
  });

  it("rejects with the abort reason when it is a GatewayError (a timeout policy's)", async () => {
    const server = await faultServer("http");
    const u = await ready(upstream(config("timeout", remote("http", server.url))));
    const reason = new GatewayError(ErrorCode.UpstreamTimeout, "attempt took longer than 1 ms");
    const call = u.request(
      "tools/call",
      { name: "hang", arguments: {} },
      { signal: AbortSignal.abort(reason) },
    );
    expect(await callError(call)).toBe(reason);
  });

  it("times out with UpstreamTimeout when timeoutMs is given", async () => {
    const server = await faultServer("http");
    const u = await ready(upstream(config("sdk-timeout", remote("http", server.url))));
    const err = await callError(u.request("tools/call", { name: "hang", arguments: {} }, { timeoutMs: 50 }));
    expect(err.code).toBe(ErrorCode.UpstreamTimeout);
    await until(() => server.stats().cancelled.length === 1, "the upstream to see the cancellation");
  });

  it("maps an upstream JSON-RPC error to UpstreamError with its code", async () => {
    const server = await faultServer("http");
    const u = await ready(upstream(config("rpc-error", remote("http", server.url))));
    const err = await callError(u.request("tools/call", { name: "fail", arguments: { times: 1 } }));
    expect(err).toMatchObject({ code: ErrorCode.UpstreamError, rpcCode: -32603, reachedUpstream: true });
    expect(err.message).toContain("injected failure 1");
    const unknown = await callError(u.request("prompts/get", { name: "nope" }));
    expect(unknown).toMatchObject({ code: ErrorCode.UpstreamError, rpcCode: -32602 });
  });

  it("hands server→client requests and notifications to the hooks", async () => {
    const server = await faultServer("http");
    const seen: string[] = [];
    const u = await ready(
      upstream(config("hooks", remote("http", server.url)), {
        onServerRequest: async (from, request) => {
          seen.push(`${from.name} ${request.method}`);
          return { role: "assistant", model: "test", content: { type: "text", text: "sampled!" } };
        },
        onNotification: (from, notification) => {
          seen.push(`${from.name} ${notification.method} ${String(notification.params?.data)}`);
        },
      }),
    );
    const sampled = await u.request("tools/call", { name: "sample", arguments: { prompt: "hello" } });
    expect(textOf(sampled)).toBe("sampled!");
    await u.request("tools/call", { name: "log", arguments: { message: "note" } });
    await until(() => seen.length === 2, "the log notification");
    expect(seen).toEqual(["hooks sampling/createMessage", "hooks notifications/message note"]);
  });

  it("returns a hook's GatewayError to the upstream as a JSON-RPC error", async () => {
    const server = await faultServer("http");
    const u = await ready(
      upstream(config("hook-error", remote("http", server.url)), {
        onServerRequest: async () => {
          throw new GatewayError(ErrorCode.Forbidden, "no client may answer sampling");
        },
      }),
    );
    // The fixture's tool fails with the error its sampling request got: our code and message.
    const err = await callError(u.request("tools/call", { name: "sample", arguments: { prompt: "x" } }));
    expect(err).toMatchObject({ code: ErrorCode.UpstreamError, rpcCode: -32011 });
    expect(err.message).toContain("no client may answer sampling");
  });
});

describe("refused sends", () => {
  it("keeps no handlers of requests an HTTP upstream refused with 503", async () => {
    const target = await faultServer("http");
    let refusing = false;
    // A proxy that answers 503 while `refusing`, as a load balancer in front of a restarting server does.
    const proxy = createHttpServer(async (req, res) => {
      if (refusing && req.method === "POST") return void res.writeHead(503).end("unavailable");
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === "string"),
      );
      const upstreamRes = await fetch(target.url, {
        method: req.method ?? "GET",
        headers,
        ...(body.length ? { body } : {}),
      });
      res.writeHead(upstreamRes.status, Object.fromEntries(upstreamRes.headers));
      if (upstreamRes.body) for await (const chunk of upstreamRes.body) res.write(chunk);
      res.end();
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const { port } = proxy.address() as AddressInfo;
    try {
      const u = await ready(upstream(config("proxied", remote("http", `http://127.0.0.1:${port}/mcp`))));
      refusing = true;
      for (let i = 0; i < 5; i++) {
        const err = await callError(u.request("tools/call", { name: "echo", arguments: { text: "x" } }));
        expect(err.code).toBe(ErrorCode.UpstreamError);
      }
      // SDK 1.32 leaves the handlers of a failed send behind: a flapping upstream would leak one per call.
      expect(u.pendingRequests()).toBe(0);
      refusing = false;
      const ok = await u.request("tools/call", { name: "echo", arguments: { text: "back" } });
      expect(textOf(ok)).toBe("back");
      expect(u.pendingRequests()).toBe(0);
    } finally {
      proxy.closeAllConnections();
      proxy.close();
    }
  });
});

describe("cut streams", () => {
  /** A minimal MCP server over HTTP whose tools/call answers with an SSE stream that ends unanswered. */
  async function cuttingServer(): Promise<{ url: string; close(): void }> {
    const server = createHttpServer(async (req, res) => {
      if (req.method !== "POST") return void res.writeHead(405).end();
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const message = JSON.parse(Buffer.concat(chunks).toString()) as {
        id?: number;
        method: string;
        params?: {
          protocolVersion?: string;
          arguments?: { progress?: boolean };
          _meta?: { progressToken?: unknown };
        };
      };
      const json = (result: unknown) =>
        res
          .writeHead(200, { "content-type": "application/json", "mcp-session-id": "cut-1" })
          .end(JSON.stringify({ jsonrpc: "2.0", id: message.id, result }));
      if (message.id === undefined) return void res.writeHead(202).end();
      if (message.method === "initialize") {
        return json({
          protocolVersion: message.params?.protocolVersion,
          capabilities: { tools: {} },
          serverInfo: { name: "cut", version: "1.0.0" },
        });
      }
      if (message.method === "tools/list")
        return json({ tools: [{ name: "cut", inputSchema: { type: "object" } }] });
      res.writeHead(200, { "content-type": "text/event-stream" });
      if (message.params?.arguments?.progress) {
        const progress = { progressToken: message.params._meta?.progressToken, progress: 1 };
        res.write(
          `event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: progress })}\n\n`,
        );
      }
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/mcp`,
      close: () => {
        server.closeAllConnections();
        server.close();
      },
    };
  }

  it.each([
    ["with no event at all", false],
    ["after a progress update", true],
  ])("fails a call at once when the upstream ends its response stream %s", async (_, progress) => {
    const server = await cuttingServer();
    try {
      const u = await ready(upstream(config("cut", remote("http", server.url))));
      const updates: number[] = [];
      const err = await callError(
        u.request(
          "tools/call",
          { name: "cut", arguments: { progress } },
          { onprogress: (p) => updates.push(p.progress) },
        ),
      );
      expect(err.code).toBe(ErrorCode.ConnectionLost);
      expect(err.message).toContain("ended its response stream without answering");
      expect(updates).toEqual(progress ? [1] : []);
      expect(u.pendingRequests()).toBe(0);
    } finally {
      server.close();
    }
  });
});

describe("transports", () => {
  it("talks to a WebSocket server", async () => {
    const server = await faultServer("ws");
    const u = await ready(upstream(config("ws", remote("ws", server.url))));
    expect(u.status()).toMatchObject({ transport: "ws", state: "ready", protocolVersion: "2025-11-25" });
    expect(textOf(await u.request("tools/call", { name: "echo", arguments: { text: "over ws" } }))).toBe(
      "over ws",
    );
  });

  it("talks to a legacy SSE server", async () => {
    const server = await faultServer("sse");
    const u = await ready(upstream(config("sse", remote("sse", server.url))));
    expect(textOf(await u.request("tools/call", { name: "echo", arguments: { text: "over sse" } }))).toBe(
      "over sse",
    );
  });
});

describe("supervision", () => {
  it("fails in-flight calls with ConnectionLost when a stdio process crashes, then restarts it", async () => {
    const u = await ready(upstream(config("crashy", stdio(FAULT_SERVER, "--transport", "stdio"))));
    const states: UpstreamState[] = [];
    u.on("state", (s) => states.push(s.state));
    const hanging = callError(u.request("tools/call", { name: "hang", arguments: {} }));
    const crashing = callError(u.request("tools/call", { name: "crash", arguments: {} }));
    for (const err of [await hanging, await crashing]) {
      expect(err).toMatchObject({
        code: ErrorCode.ConnectionLost,
        reachedUpstream: true,
        upstream: "crashy",
      });
    }
    await until(() => u.state === "ready", "the restart");
    // After a failure the upstream stays down (with its error) until it is ready again.
    expect(states.slice(0, 3)).toEqual(["down", "down", "ready"]);
    expect(u.status()).toMatchObject({ restarts: 1, state: "ready" });
    expect(u.status().lastError).toBeUndefined();
    expect(textOf(await u.request("tools/call", { name: "echo", arguments: { text: "again" } }))).toBe(
      "again",
    );
  });

  it.each(["http", "sse", "ws"] as const)(
    "fails in-flight calls with ConnectionLost when a %s connection is cut, then reconnects",
    async (transport) => {
      const server = await faultServer(transport);
      const u = await ready(upstream(config(`cut-${transport}`, remote(transport, server.url))));
      const hanging = callError(u.request("tools/call", { name: "hang", arguments: {} }));
      const crashing = callError(u.request("tools/call", { name: "crash", arguments: {} }));
      for (const err of [await hanging, await crashing]) {
        expect(err).toMatchObject({ code: ErrorCode.ConnectionLost, reachedUpstream: true });
      }
      await until(() => u.state === "ready", "the reconnect");
      expect(u.status().restarts).toBe(1);
      expect(textOf(await u.request("tools/call", { name: "echo", arguments: { text: "back" } }))).toBe(
        "back",
      );
    },
  );

  it.each([
    [
      "sse",
      "the server opened the event stream but sent no `endpoint` event (is this a legacy SSE MCP endpoint?)",
    ],
    ["ws", "the server accepted the connection but did not answer the WebSocket upgrade"],
  ] as const)(
    "puts an upstream whose %s connection never opens down at the connect timeout, saying why",
    async (type, why) => {
      // An event stream with a comment and nothing else; a TCP server that never answers the upgrade.
      const silent =
        type === "sse"
          ? createHttpServer((_req, res) =>
              res.writeHead(200, { "content-type": "text/event-stream" }).write(": hi\n\n"),
            )
          : createNetServer();
      silent.listen(0, "127.0.0.1");
      await once(silent, "listening");
      const sockets = new Set<Socket>();
      silent.on("connection", (socket: Socket) => sockets.add(socket));
      try {
        const port = (silent.address() as AddressInfo).port;
        const { config: resolved } = resolveConfig({
          mcpServers: { silent: { type, url: `${type === "sse" ? "http" : "ws"}://127.0.0.1:${port}/` } },
          upstreams: {
            silent: { connectTimeoutMs: 300, reconnect: { initialDelayMs: 1_000, maxDelayMs: 1_000 } },
          },
        });
        const u = upstream(resolved.upstreams[0] as UpstreamConfig);
        await until(() => u.status().lastError !== undefined, "the first failure");
        expect(u.state).toBe("down");
        expect(u.status().lastError).toBe(
          `the connection did not open within 300 ms (upstreams.silent.connectTimeoutMs): ${why}`,
        );
      } finally {
        for (const socket of sockets) socket.destroy();
        silent.close();
      }
    },
  );

  it.each([
    ["process.exit(3)", "the process exited with code 3"],
    ['process.kill(process.pid, "SIGKILL")', "the process was killed by SIGKILL"],
  ])("says how a stdio process that dies at start ended (%s)", async (code, says) => {
    const u = upstream(config("dies", stdio("-e", code)));
    await until(() => u.status().lastError !== undefined, "the first failure");
    expect(u.state).toBe("down");
    expect(u.status().lastError).toBe(says);
  });

  it('says that a Streamable HTTP url configured as legacy SSE wants "type": "http"', async () => {
    const server = await faultServer("http");
    const u = upstream(config("mistyped", remote("sse", server.url)));
    await until(() => u.status().lastError !== undefined, "the first failure");
    expect(u.status().lastError).toMatch(
      /^SSE error: Non-200 status code \(400\): .+: a Streamable HTTP server answers a GET without a session like this: if the url serves one, set "type": "http"$/,
    );
  });

  it("keeps a process that fails to start down, with its stderr in lastError", async () => {
    const u = upstream(config("broken", stdio(FAULT_SERVER, "--fail-start")));
    await until(() => u.status().lastError?.includes("--fail-start given") === true, "lastError");
    expect(u.state).toBe("down");
    // Each new process after the failed one counts as a restart.
    await until(() => u.status().restarts >= 1, "a restart");
    expect(u.state).toBe("down");
  });

  it("terminates the stdio process on stop()", async () => {
    const u = await ready(upstream(config("stopped", stdio(FAULT_SERVER, "--transport", "stdio"))));
    const { pid } = JSON.parse(textOf(await u.request("tools/call", { name: "stats", arguments: {} }))) as {
      pid: number;
    };
    await expect(u.notify("notifications/roots/list_changed")).resolves.toBeUndefined();
    await u.stop();
    expect(u.status().state).toBe("stopped");
    await expect(u.notify("notifications/roots/list_changed")).rejects.toMatchObject({
      code: ErrorCode.UpstreamUnavailable,
    });
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    const err = await callError(u.request("tools/call", { name: "echo", arguments: { text: "x" } }));
    expect(err).toMatchObject({ code: ErrorCode.UpstreamUnavailable, reachedUpstream: false });
  });
});

describe("registry", () => {
  it("leaves an unreachable upstream down without blocking a healthy sibling", async () => {
    const server = await faultServer("http");
    const deadUrl = `http://127.0.0.1:${await freePort()}/mcp`;
    const registry = new UpstreamRegistry(
      [config("dead", remote("http", deadUrl)), config("alive", remote("http", server.url))],
      { log: silentLogger },
    );
    upstreams.push(registry);
    registry.startAll();
    const alive = registry.get("alive");
    if (!alive) throw new Error("no alive upstream");
    expect(await alive.whenReady(READY_MS)).toBe(true);
    const dead = registry.get("dead");
    if (!dead) throw new Error("no dead upstream");
    await until(() => dead.status().lastError !== undefined, "the failed connection");
    expect(dead.state).not.toBe("ready");
    expect(dead.status().lastError).toContain("ECONNREFUSED");
    const err = await callError(dead.request("tools/call", { name: "echo", arguments: { text: "x" } }));
    expect(err).toMatchObject({
      code: ErrorCode.UpstreamUnavailable,
      reachedUpstream: false,
      upstream: "dead",
    });
    expect(err.message).toMatch(/is (down|connecting)/);
    expect(registry.statuses().map((s) => s.name)).toEqual(["dead", "alive"]);
  });

  it("re-emits upstream events with the upstream", async () => {
    const server = await faultServer("http");
    const registry = new UpstreamRegistry([config("one", remote("http", server.url))], { log: silentLogger });
    upstreams.push(registry);
    const events: string[] = [];
    registry.on("state", (u, status) => events.push(`${u.name}:${status.state}`));
    registry.startAll();
    await until(() => events.includes("one:ready"), "ready");
    expect(events[0]).toBe("one:connecting");
  });

  it("reconciles a new config: keeps unchanged, restarts changed, stops removed, starts added", async () => {
    const a = await faultServer("http");
    const b = await faultServer("http");
    const registry = new UpstreamRegistry(
      [
        config("keep", remote("http", a.url)),
        config("move", remote("http", a.url)),
        config("drop", remote("http", a.url)),
      ],
      { log: silentLogger },
    );
    upstreams.push(registry);
    registry.startAll();
    await Promise.all(registry.all().map(ready));
    const keep = registry.get("keep");
    const move = registry.get("move");
    const drop = registry.get("drop");
    // A call in flight on the kept upstream (held there until after the reload) must survive it.
    const inFlight = keep?.request("tools/call", { name: "slow", arguments: { ms: 0, hold: "reload" } });
    await until(() => a.stats().inFlight === 1, "the call to reach the upstream");
    const renamed = { ...config("keep", remote("http", a.url)), prefix: "kept" };

    const result = await registry.reconcile([
      renamed,
      config("move", remote("http", b.url)),
      config("new", remote("http", b.url)),
    ]);

    expect(result).toEqual({ added: ["new"], removed: ["drop"], restarted: ["move"], updated: ["keep"] });
    expect(registry.get("keep")).toBe(keep);
    expect(keep?.config.prefix).toBe("kept");
    expect(registry.get("move")).not.toBe(move);
    expect(move?.state).toBe("stopped");
    expect(drop?.state).toBe("stopped");
    expect(registry.get("drop")).toBeUndefined();
    a.release("reload");
    expect(textOf((await inFlight) ?? {})).toBe("slept 0 ms");
    const moved = registry.get("move");
    if (!moved) throw new Error("no moved upstream");
    await ready(moved);
    await moved.request("tools/call", { name: "echo", arguments: { text: "b" } });
    expect(b.stats().calls.echo).toBe(1);
    expect(a.stats().calls.echo).toBeUndefined();
  });
});

describe("backoff", () => {
  it("grows exponentially with jitter and stays within the cap", () => {
    const options = { initialDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(0, options, () => 0)).toBe(50);
    expect(backoffDelay(0, options, () => 1)).toBe(100);
    expect(backoffDelay(3, options, () => 1)).toBe(800);
    expect(backoffDelay(50, options, () => 1)).toBe(1000);
    expect(backoffDelay(50, options, () => 0)).toBe(500);
  });
});

describe("an upstream that asks for authorization, without OAuth configured", () => {
  /** Answers 401 with MCP's WWW-Authenticate to every request. */
  async function guarded(): Promise<string> {
    const server = createHttpServer((_req, res) => {
      res.writeHead(401, { "www-authenticate": 'Bearer realm="mcp"', "content-type": "application/json" });
      res.end('{"error":"unauthorized"}');
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  }
  const closers: Array<() => Promise<void>> = [];
  afterAll(async () => {
    await Promise.all(closers.map((close) => close()));
  });

  it.each([
    { case: "Streamable HTTP, era probed", type: "http", protocol: "auto", headers: {} },
    { case: "Streamable HTTP, 2025-11-25", type: "http", protocol: "2025-11-25", headers: {} },
    { case: "SSE", type: "sse", protocol: "auto", headers: {} },
  ] as const)("says what to configure ($case)", async ({ type, protocol, headers }) => {
    const url = await guarded();
    const { config: resolved } = resolveConfig({
      mcpServers: { locked: { type, url, headers } },
      upstreams: { locked: { protocol, reconnect: { initialDelayMs: 1_000, maxDelayMs: 1_000 } } },
    });
    const u = upstream(resolved.upstreams[0] as UpstreamConfig);
    await until(() => u.status().lastError !== undefined, "the first failure");
    expect(u.status().lastError).toMatch(
      /; the server asks for authorization \(HTTP 401\): add "auth": \{ "oauth": \{\} \} to mcpServers\.locked and run `toolgate auth login locked`, or give a token in its "headers"$/,
    );
  });

  it("says the Authorization header configured was refused", async () => {
    const url = await guarded();
    const headers = { Authorization: "Bearer stale" };
    const { config: resolved } = resolveConfig({ mcpServers: { locked: { type: "http", url, headers } } });
    const withHeader = upstream(resolved.upstreams[0] as UpstreamConfig);
    await until(() => withHeader.status().lastError !== undefined, "the first failure");
    expect(withHeader.status().lastError).toMatch(
      /; the server refused the Authorization header in mcpServers\.locked\.headers \(HTTP 401\)$/,
    );
  });
});
