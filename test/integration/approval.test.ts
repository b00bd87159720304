/**
 * Tool policy `approval: "always"`: a person approves each call through the client's elicitation before the
 * upstream is reached; a decline or a client that cannot ask fails the call, and the upstream never sees it.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { connectClient, type InProcessGateway, startGateway, textOf } from "../helpers/gateway.ts";

let upstream: RunningFaultServer;
let gw: InProcessGateway;
const clients: Client[] = [];

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  gw = await startGateway({
    mcpServers: { faults: { type: "http", url: upstream.url } },
    upstreams: { faults: { tools: { echo: { approval: "always" } } } },
  });
  await gw.gateway.waitForUpstreams(10_000);
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await gw?.stop();
  await upstream?.close();
});

async function client(answer?: (message: string) => { action: string; content?: Record<string, unknown> }) {
  const c = await connectClient("http", gw, answer ? { capabilities: { elicitation: {} } } : {});
  if (answer) {
    c.setRequestHandler(ElicitRequestSchema, (request) => answer(request.params.message) as never);
  }
  clients.push(c);
  return c;
}

const echoCalls = () => upstream.stats().calls.echo ?? 0;

describe("approval", () => {
  it("runs the call once a person approves it, after showing the tool and arguments", async () => {
    const asked: string[] = [];
    const c = await client((message) => {
      asked.push(message);
      return { action: "accept", content: { approve: true } };
    });
    const before = echoCalls();
    const result = await c.callTool({ name: "faults__echo", arguments: { text: "rm -rf" } });
    expect(textOf(result)).toBe("rm -rf");
    expect(echoCalls()).toBe(before + 1);
    expect(asked[0]).toContain('tool "faults__echo"');
    expect(asked[0]).toContain('"text":"rm -rf"');
  });

  it.each([
    ["declined", { action: "decline" }],
    ["accepted without approving", { action: "accept", content: { approve: false } }],
    ["cancelled", { action: "cancel" }],
  ])("fails a call the person %s, without reaching the upstream", async (_how, answer) => {
    const c = await client(() => answer);
    const before = echoCalls();
    const result = await c.callTool({ name: "faults__echo", arguments: { text: "x" } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/Forbidden .*policy approval.*did not approve this call; it was not run/);
    expect(echoCalls()).toBe(before);
  });

  it("fails the call when the client cannot ask a person", async () => {
    const c = await client();
    const before = echoCalls();
    const result = await c.callTool({ name: "faults__echo", arguments: { text: "x" } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/cannot ask \(it has no elicitation capability\)/);
    expect(echoCalls()).toBe(before);
  });

  it("leaves tools without the policy alone", async () => {
    const c = await client();
    expect(textOf(await c.callTool({ name: "faults__slow", arguments: { ms: 1 } }))).toBe("slept 1 ms");
  });
});
