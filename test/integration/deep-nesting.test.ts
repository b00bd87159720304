/**
 * A request nested thousands of levels deep (under a loosely typed property, so the tool's schema accepts
 * it) must fail alone: refused at the edge on every downstream transport, and, when the edge lets it
 * through, failed as that call's own error before anything is written to the upstream. Either way the
 * shared stdio upstream keeps running and other sessions' calls are served.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import {
  connectClient,
  eventually,
  FAULT_SERVER,
  type InProcessGateway,
  NODE,
  startGateway,
  textOf,
  warningsLogger,
} from "../helpers/gateway.ts";
import { initializeBody, rawPost, rawSession, rawStdio } from "../helpers/raw-mcp.ts";

const DEPTH = 5_000;

/** A tools/call for `faults__echo` whose extra argument `deep` nests `depth` objects. */
function deepCall(id: number, depth = DEPTH): string {
  const deep = `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
  return `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"faults__echo","arguments":{"text":"poison","deep":${deep}}}}`;
}

async function faultStats(client: Client): Promise<{ calls: Record<string, number>; inFlight: number }> {
  return JSON.parse(textOf(await client.callTool({ name: "faults__stats", arguments: {} })));
}

/** A call that stays in flight upstream until `faults__release` of `hold`. */
function inFlight(client: Client, hold: string) {
  return client.callTool({ name: "faults__slow", arguments: { ms: 0, hold } });
}

/** The gateway's warnings, as JSON objects. */
const { log, warnings } = warningsLogger();

async function startWithFaults(gateway: Record<string, unknown>) {
  const gw = await startGateway(
    { gateway, mcpServers: { faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] } } },
    { log },
  );
  const client = await connectClient("http", gw);
  await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "faults__echo"));
  return { gw, client };
}

function restarts(gw: InProcessGateway): number | undefined {
  return gw.gateway.registry.statuses().find((s) => s.name === "faults")?.restarts;
}

describe("the edge limit on nesting depth", () => {
  let gw: InProcessGateway;
  let other: Client;

  beforeAll(async () => {
    ({ gw, client: other } = await startWithFaults({}));
  });

  afterAll(async () => {
    await other?.close();
    await gw?.stop();
  });

  it("refuses a deep request over HTTP with -32600 naming gateway.maxJsonDepth, serving others meanwhile", async () => {
    const session = await rawSession(gw.url);
    // Another session's call is in flight on the same stdio upstream while the poison request arrives.
    const concurrent = inFlight(other, "edge");
    await eventually(async () => (await faultStats(other)).inFlight === 1);
    const reply = await rawPost(gw.url, deepCall(7), session.headers);
    expect(reply.messages[0]).toMatchObject({
      id: 7,
      error: { code: -32600, message: expect.stringContaining("gateway.maxJsonDepth") },
    });
    await other.callTool({ name: "faults__release", arguments: { hold: "edge" } });
    expect(textOf(await concurrent)).toBe("slept 0 ms");
    expect((await faultStats(other)).calls.echo ?? 0).toBe(0);
    expect(restarts(gw)).toBe(0);
    expect(gw.gateway.registry.get("faults")?.state).toBe("ready");
  });

  it("refuses a request nested 100,000 levels deep without overflowing anything on the way", async () => {
    const session = await rawSession(gw.url);
    const reply = await rawPost(gw.url, deepCall(8, 100_000), session.headers);
    expect(reply.messages[0]).toMatchObject({ id: 8, error: { code: -32600 } });
    expect(textOf(await other.callTool({ name: "faults__echo", arguments: { text: "ok" } }))).toBe("ok");
    expect(restarts(gw)).toBe(0);
  });

  it("refuses a deep 2026-07-28 request (stateless, no session) the same way, logging the first of many", async () => {
    const deep = `${'{"a":'.repeat(DEPTH)}1${"}".repeat(DEPTH)}`;
    const meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}';
    const echoesBefore = (await faultStats(other)).calls.echo ?? 0;
    const body = `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{${meta},"name":"faults__echo","arguments":{"text":"poison","deep":${deep}}}}`;
    for (let i = 0; i < 3; i++) {
      const reply = await rawPost(gw.url, body, {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
      });
      expect(reply.status).toBe(400);
      expect(reply.messages[0]).toMatchObject({
        id: 9,
        error: {
          code: -32600,
          message: expect.stringContaining("gateway.maxJsonDepth"),
          data: { toolgate: { code: "InvalidRequest", policy: "messageLimits" } },
        },
      });
    }
    expect((await faultStats(other)).calls.echo ?? 0).toBe(echoesBefore);
    expect(restarts(gw)).toBe(0);
    // No session to count per: the face counts its refusals, and a client repeating one cannot flood the log.
    const logged = warnings.filter((w) => w.msg === "message refused at the edge" && w.era === "2026-07-28");
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ method: "tools/call", refusedOnFace: 1 });
  });

  it("refuses a deep request over WebSocket the same way", async () => {
    const socket = new WebSocket(gw.wsUrl, "mcp");
    const replies: Array<Record<string, unknown>> = [];
    socket.on("message", (data) => replies.push(JSON.parse(String(data)) as Record<string, unknown>));
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    try {
      socket.send(initializeBody(1));
      await eventually(() => replies.find((r) => r.id === 1), 30_000, 10);
      socket.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
      socket.send(deepCall(2));
      const reply = await eventually(() => replies.find((r) => r.id === 2), 30_000, 10);
      expect(reply).toMatchObject({
        error: { code: -32600, message: expect.stringContaining("maxJsonDepth") },
      });
      expect(socket.readyState).toBe(WebSocket.OPEN);
    } finally {
      socket.terminate();
    }
    expect(restarts(gw)).toBe(0);
  });

  it("refuses a deep request over stdio the same way", async () => {
    const { input, replies } = await rawStdio(gw.gateway);
    input.write(`${initializeBody(1)}\n`);
    await eventually(() => replies.find((r) => r.id === 1), 30_000, 10);
    input.write(`${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`);
    input.write(`${deepCall(2)}\n`);
    const reply = await eventually(() => replies.find((r) => r.id === 2), 30_000, 10);
    expect(reply).toMatchObject({
      error: { code: -32600, message: expect.stringContaining("maxJsonDepth") },
    });
    input.write(
      `${JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "faults__echo", arguments: { text: "fine" } } })}\n`,
    );
    const fine = await eventually(() => replies.find((r) => r.id === 3), 30_000, 10);
    expect(fine).toMatchObject({ result: { content: [{ type: "text", text: "fine" }] } });
    input.end();
    expect(restarts(gw)).toBe(0);
  });

  it("refuses a message with more values than gateway.maxJsonValues", async () => {
    const small = await startWithFaults({ maxJsonValues: 1_000 });
    try {
      const session = await rawSession(small.gw.url);
      const body = JSON.stringify({
        jsonrpc: "2.0",
        id: 3,
        method: "tools/call",
        params: { name: "faults__echo", arguments: { text: "wide", list: Array(2_000).fill(0) } },
      });
      const reply = await rawPost(small.gw.url, body, session.headers);
      expect(reply.messages[0]).toMatchObject({
        id: 3,
        error: { code: -32600, message: expect.stringContaining("gateway.maxJsonValues") },
      });
    } finally {
      await small.client.close();
      await small.gw.stop();
    }
  });
});

describe("a deep request the edge lets through (limit raised)", () => {
  let gw: InProcessGateway;
  let other: Client;

  beforeAll(async () => {
    ({ gw, client: other } = await startWithFaults({ maxJsonDepth: 100_000 }));
  });

  afterAll(async () => {
    await other?.close();
    await gw?.stop();
  });

  it("fails as that call's own error, not retried, and the upstream stays up", async () => {
    const session = await rawSession(gw.url);
    const concurrent = inFlight(other, "unsendable");
    await eventually(async () => (await faultStats(other)).inFlight === 1);
    const reply = await rawPost(gw.url, deepCall(9), session.headers);
    const result = (reply.messages[0] as { result: Record<string, unknown> }).result;
    expect(result.isError).toBe(true);
    expect(result._meta).toMatchObject({
      "toolgate/error": { code: "InvalidArguments", class: "client", upstream: "faults" },
    });
    expect(textOf(result)).toMatch(/not sent.*cannot be serialized/);
    // The call's own error: not retried (the tool is read-only, so a transient failure would have been).
    expect(result._meta).not.toHaveProperty(["toolgate/error", "attempts"]);
    await other.callTool({ name: "faults__release", arguments: { hold: "unsendable" } });
    expect(textOf(await concurrent)).toBe("slept 0 ms");
    // One attempt only, and nothing reached the server.
    expect((await faultStats(other)).calls.echo ?? 0).toBe(0);
    expect(restarts(gw)).toBe(0);
    expect(gw.gateway.registry.get("faults")?.state).toBe("ready");
    expect(textOf(await other.callTool({ name: "faults__echo", arguments: { text: "after" } }))).toBe(
      "after",
    );
  });
});
