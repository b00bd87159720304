/**
 * Config reload of the gateway binary (SIGHUP and --watch): added upstreams appear (with list_changed),
 * removed ones disappear, unchanged ones keep their calls in flight, and an invalid file changes nothing;
 * rotated API keys and allowed origins apply to the next request (a WebSocket session opened with a removed key
 * is closed), and restart-only settings are named.
 */
import { rename, writeFile } from "node:fs/promises";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, expect, it } from "vitest";
import { WebSocket } from "ws";
import {
  connectClient,
  eventually,
  FAULT_SERVER,
  type GatewayProcess,
  NODE,
  spawnGateway,
  textOf,
} from "../helpers/gateway.ts";
import { BASE_HEADERS, initializeBody, rawPost, rawSession } from "../helpers/raw-mcp.ts";

const fault = (name: string) => ({ command: NODE, args: [FAULT_SERVER, "--name", name] });

let gateway: GatewayProcess | undefined;
let client: Client | undefined;

afterEach(async () => {
  await client?.close().catch(() => {});
  await gateway?.stop();
  client = undefined;
  gateway = undefined;
});

/** The config file the helper wrote for the spawned gateway. */
function configFileOf(g: GatewayProcess): string {
  const args = g.child.spawnargs;
  const file = args[args.indexOf("--config") + 1];
  if (!file) throw new Error("the gateway was spawned without --config");
  return file;
}

async function toolNames(c: Client): Promise<string[]> {
  return (await c.listTools()).tools.map((t) => t.name);
}

async function start(config: unknown, extraArgs: string[] = []): Promise<{ g: GatewayProcess; c: Client }> {
  gateway = await spawnGateway(config, extraArgs);
  client = await connectClient("http", gateway);
  return { g: gateway, c: client };
}

it("applies a new config on SIGHUP: adds, removes, keeps in-flight calls, and rejects an invalid file", async () => {
  const { g, c } = await start({ mcpServers: { faults: fault("faults"), gone: fault("gone") } });
  const file = configFileOf(g);
  let listChanged = 0;
  c.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    listChanged++;
  });
  await eventually(async () => {
    const names = await toolNames(c);
    return names.includes("faults__slow") && names.includes("gone__echo");
  });

  // Held upstream until the reload is done: it is surely in flight across the reload.
  const inFlight = c.callTool({ name: "faults__slow", arguments: { ms: 0, hold: "reload" } });
  await eventually(
    async () => JSON.parse(textOf(await c.callTool({ name: "faults__stats", arguments: {} }))).inFlight === 1,
  );
  const changesBefore = listChanged;
  await writeFile(file, JSON.stringify({ mcpServers: { faults: fault("faults"), added: fault("added") } }));
  g.child.kill("SIGHUP");

  await eventually(async () => {
    const names = await toolNames(c);
    return names.includes("added__echo") && !names.some((n) => n.startsWith("gone__"));
  });
  expect(listChanged).toBeGreaterThan(changesBefore);
  await c.callTool({ name: "faults__release", arguments: { hold: "reload" } });
  expect(textOf(await inFlight)).toBe("slept 0 ms");
  expect(g.logs.some((l) => l.msg === "config reloaded" && l.why === "SIGHUP")).toBe(true);

  await writeFile(file, JSON.stringify({ mcpServers: { faults: { command: 42 } } }));
  g.child.kill("SIGHUP");
  const rejected = await eventually(() =>
    g.logs.find((l) => String(l.msg).startsWith("config reload rejected")),
  );
  expect(String(rejected?.error)).toMatch(/command/);
  expect(textOf(await c.callTool({ name: "faults__echo", arguments: { text: "old" } }))).toBe("old");
  expect(textOf(await c.callTool({ name: "added__echo", arguments: { text: "config" } }))).toBe("config");
  expect(g.child.exitCode).toBeNull();
});

it("reloads when the file changes with --watch, written in place or replaced by a rename", async () => {
  const { g, c } = await start({ mcpServers: { faults: fault("faults") } }, ["--watch"]);
  await eventually(async () => (await toolNames(c)).includes("faults__echo"));
  const file = configFileOf(g);
  await writeFile(
    file,
    JSON.stringify({ mcpServers: { faults: fault("faults"), watched: fault("watched") } }),
  );
  await eventually(async () => (await toolNames(c)).includes("watched__echo"));
  expect(g.logs.some((l) => l.msg === "config reloaded" && l.why === "file changed")).toBe(true);
  // As editors save and Kubernetes updates a ConfigMap: a new file renamed over the old, again and again.
  for (const name of ["renamed", "again"]) {
    await writeFile(
      `${file}.new`,
      JSON.stringify({ mcpServers: { faults: fault("faults"), [name]: fault(name) } }),
    );
    await rename(`${file}.new`, file);
    await eventually(async () => (await toolNames(c)).includes(`${name}__echo`));
  }
});

it("applies rotated API keys and allowed origins to the next request, and names what needs a restart", async () => {
  const OLD = "old-key-0123456789abcdef";
  const NEW = "new-key-0123456789abcdef";
  const config = (key: string, extra: Record<string, unknown> = {}) => ({
    mcpServers: { faults: fault("faults") },
    security: { auth: { apiKeys: [{ id: "ci", key }] } },
    ...extra,
  });
  gateway = await spawnGateway(config(OLD));
  const g = gateway;
  const initialize = (key: string, origin?: string) =>
    rawPost(g.url, initializeBody(), {
      ...BASE_HEADERS,
      authorization: `Bearer ${key}`,
      ...(origin && { origin }),
    });
  expect((await initialize(OLD)).status).toBe(200);
  expect((await initialize(NEW)).status).toBe(401);
  const app = "https://app.example.com";
  expect((await initialize(OLD, app)).status).toBe(403);
  // A WebSocket session authenticates once, at its upgrade: open one with the key about to go.
  const socket = new WebSocket(g.wsUrl, "mcp", { headers: { authorization: `Bearer ${OLD}` } });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  const closed = new Promise<[number, string]>((resolve) =>
    socket.once("close", (code, reason) => resolve([code, reason.toString()])),
  );
  // So does a session's GET stream, with its request.
  const session = await rawSession(g.url, { authorization: `Bearer ${OLD}` });
  const stream = await fetch(g.url, { headers: { ...session.headers, accept: "text/event-stream" } });
  expect(stream.status).toBe(200);

  const file = configFileOf(g);
  // A new key and origin apply at once; the port and telemetry were taken at start.
  await writeFile(
    file,
    JSON.stringify(
      config(NEW, {
        gateway: { allowedOrigins: [app], listen: { host: "127.0.0.1", port: 1 } },
        telemetry: { metrics: { process: false } },
      }),
    ),
  );
  g.child.kill("SIGHUP");
  const warned = await eventually(() =>
    g.logs.find((l) => String(l.msg).includes("apply only after a restart")),
  );
  expect(warned?.settings).toEqual(["gateway.listen", "telemetry"]);
  expect((await initialize(OLD)).status).toBe(401);
  expect((await initialize(NEW)).status).toBe(200);
  const fromApp = await initialize(NEW, app);
  expect(fromApp.status).toBe(200);
  expect(fromApp.headers.get("access-control-allow-origin")).toBe(app);
  // The session opened with the removed key is closed, not left to go on.
  await eventually(() => socket.readyState === WebSocket.CLOSED);
  // 1008 (policy violation) with the reason: the client knows to come back with other credentials.
  expect(await closed).toEqual([1008, "the credentials it opened with are no longer accepted"]);
  // The stream ends (a hang here is the defect).
  await stream.text();
});
