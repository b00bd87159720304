/**
 * What sessions asked of an upstream outlives the upstream's restart. Each upstream runs as its own process
 * over Streamable HTTP and is killed and started again on the same port: the client's resource subscription,
 * made once before, still brings `notifications/resources/updated` from the new server-everything, and the
 * log level a session set reaches the new fault fixture.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
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

  const upstream = gw.gateway.registry.get("ev");
  const connectedAgain = new Promise<void>((resolve) => upstream?.once("connected", resolve));
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

  const upstream = gw.gateway.registry.get("faults");
  const connectedAgain = new Promise<void>((resolve) => upstream?.once("connected", resolve));
  await stop(faults);
  faults = await startFaults();
  await connectedAgain;
  // A new process knows a level only if the gateway sent it again (its POST may land after the next call's).
  const restored = await eventually(async () =>
    (await level().catch(() => undefined)) === "warning" ? "warning" : undefined,
  );
  expect(restored).toBe("warning");
});
