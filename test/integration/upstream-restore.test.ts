/**
 * What sessions asked of an upstream outlives the upstream's restart. Each upstream runs as its own process
 * over Streamable HTTP and is killed and started again on the same port: the client's resource subscription,
 * made once before, still brings `notifications/resources/updated` from the new server-everything, and the
 * log level a session set reaches the new fault fixture. A 2026-07-28 upstream (the v2 SDK fixture, restarted in
 * process on its port) gets the subscription again on its new `subscriptions/listen` stream.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningModernServer, startModernServer } from "../fixtures/modern-server.ts";
import {
  connectClient,
  EVERYTHING,
  eventually,
  FAULT_SERVER,
  type InProcessGateway,
  NODE,
  startGateway,
  textOf,
} from "../helpers/gateway.ts";
import { freePort } from "../helpers/ports.ts";

let port: number;
let server: ChildProcess | undefined;
let faultPort: number;
let faults: ChildProcess | undefined;
let gw: InProcessGateway;
let client: Client;
const updated: string[] = [];

/** server-everything over Streamable HTTP on `port`, once it listens. */
async function startEverything(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [EVERYTHING, "streamableHttp"], {
    env: { ...process.env, PORT: String(port) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stderr?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("listening on port")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`server-everything exited with ${code}`)));
  });
  return child;
}

/** The fault fixture over Streamable HTTP on `faultPort`, once it listens. */
async function startFaults(): Promise<ChildProcess> {
  const child = spawn(NODE, [FAULT_SERVER, "--transport", "http", "--port", String(faultPort)], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", () => resolve());
    child.once("exit", (code) => reject(new Error(`fault fixture exited with ${code}`)));
  });
  return child;
}

/** Resolves when `name` has a new connection; fails after 30 s (the restart went unnoticed). */
function nextConnection(gateway: InProcessGateway, name: string): Promise<void> {
  const upstream = gateway.gateway.registry.get(name);
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`upstream ${name} did not reconnect within 30 s`)),
      30_000,
    );
    upstream?.once("connected", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

beforeAll(async () => {
  port = await freePort();
  faultPort = await freePort();
  server = await startEverything();
  faults = await startFaults();
  const fast = { reconnect: { initialDelayMs: 100, maxDelayMs: 300 } };
  gw = await startGateway({
    mcpServers: {
      ev: { type: "http", url: `http://127.0.0.1:${port}/mcp` },
      faults: { type: "http", url: `http://127.0.0.1:${faultPort}/mcp` },
    },
    upstreams: { ev: fast, faults: fast },
  });
  client = await connectClient("http", gw);
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
  await eventually(async () => (await client.listResources()).resources.length > 0);
});

afterAll(async () => {
  await client?.close();
  await gw?.stop();
  await stop(server);
  await stop(faults);
});

it("keeps a resource subscription across the upstream's restart", async () => {
  const [resource] = (await client.listResources()).resources;
  const uri = resource?.uri as string;
  await client.subscribeResource({ uri });
  // The server sends an update for each subscribed resource at once when updates are switched on (per session).
  await client.callTool({ name: "ev__toggle-subscriber-updates", arguments: {} });
  await eventually(() => updated.includes(uri));
  expect(updated).toContain(uri);

  const connectedAgain = nextConnection(gw, "ev");
  await stop(server);
  server = await startEverything();
  await connectedAgain;

  updated.length = 0;
  // A new upstream session: updates switched on again; only a subscription sent again brings one.
  await eventually(
    async () => !(await client.callTool({ name: "ev__toggle-subscriber-updates", arguments: {} })).isError,
  );
  await eventually(() => updated.includes(uri));
  expect(updated).toEqual(expect.arrayContaining([uri]));
});

it("sends the log level sessions asked for to an upstream that restarted", async () => {
  const level = async () =>
    (
      JSON.parse(textOf(await client.callTool({ name: "faults__stats", arguments: {} }))) as {
        logLevel?: string;
      }
    ).logLevel;
  await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "faults__stats"));
  await client.setLoggingLevel("warning");
  expect(await level()).toBe("warning");

  const connectedAgain = nextConnection(gw, "faults");
  await stop(faults);
  faults = await startFaults();
  await connectedAgain;
  // A new process knows a level only if the gateway sent it again (its POST may land after the next call's).
  const restored = await eventually(async () =>
    (await level().catch(() => undefined)) === "warning" ? "warning" : undefined,
  );
  expect(restored).toBe("warning");
});

it("sends a subscription again on a restarted 2026-07-28 upstream's new listen stream", async () => {
  let modern: RunningModernServer = await startModernServer(await freePort());
  const modernPort = new URL(modern.url).port;
  const gateway = await startGateway({
    mcpServers: { modern: { type: "http", url: modern.url } },
    // A stateless upstream's restart shows at the next ping: pinged often here.
    upstreams: {
      modern: {
        reconnect: { initialDelayMs: 100, maxDelayMs: 300 },
        healthCheck: { intervalMs: 300, timeoutMs: 5_000 },
      },
    },
  });
  const c = await connectClient("http", gateway);
  try {
    const seenUpdates: string[] = [];
    c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void seenUpdates.push(n.params.uri));
    await eventually(async () => (await c.listResources()).resources.some((r) => r.uri === "test://watched"));
    await c.subscribeResource({ uri: "test://watched" });
    const listening = (m: RunningModernServer) =>
      m.seen.some(
        (r) =>
          r.method === "subscriptions/listen" &&
          JSON.stringify(r.params?.notifications).includes("test://watched"),
      );
    await eventually(() => listening(modern));

    const connectedAgain = nextConnection(gateway, "modern");
    await modern.close();
    modern = await startModernServer(Number(modernPort));
    await connectedAgain;
    // The new process got the subscription on a listen stream of its own, and its updates reach the client.
    await eventually(() => listening(modern));
    modern.touch();
    await eventually(() => seenUpdates.includes("test://watched"));
    expect(seenUpdates).toContain("test://watched");
  } finally {
    await c.close();
    await gateway.stop();
    await modern.close();
  }
});
