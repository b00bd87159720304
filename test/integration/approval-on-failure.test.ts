/**
 * Tool policy `approval: "onFailure"`: a call that failed after its retries is put to a person (through the
 * calling client's elicitation), who may have it run again; a decline returns the failure as it was.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ElicitRequestSchema, type McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { connectClient, type InProcessGateway, startGateway, textOf } from "../helpers/gateway.ts";

let upstream: RunningFaultServer;
let gw: InProcessGateway;
const clients: Client[] = [];

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  gw = await startGateway({
    mcpServers: { faults: { type: "http", url: upstream.url } },
    upstreams: {
      faults: { tools: { fail: { approval: "onFailure", retry: { maxAttempts: 1 } } } },
    },
  });
  await gw.gateway.waitForUpstreams(30_000);
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await gw?.stop();
  await upstream?.close();
});

async function client(answer: (message: string) => { action: string; content?: Record<string, unknown> }) {
  const c = await connectClient("http", gw, { capabilities: { elicitation: {} } });
  c.setRequestHandler(ElicitRequestSchema, (request) => answer(request.params.message) as never);
  clients.push(c);
  return c;
}

it("asks a person after the call failed, and runs it again when they approve", async () => {
  const asked: string[] = [];
  const c = await client((message) => {
    asked.push(message);
    return { action: "accept", content: { approve: true } };
  });
  const result = await c.callTool({ name: "faults__fail", arguments: { times: 1, key: "approved" } });
  expect(textOf(result)).toBe("ok after 1 failures");
  expect(asked).toHaveLength(1);
  expect(asked[0]).toMatch(/tool "faults__fail".* failed: .*injected failure 1.*Run it again\?/);
});

it("returns the failure as it was when the person declines, and runs nothing more", async () => {
  const asked: string[] = [];
  const c = await client((message) => {
    asked.push(message);
    return { action: "decline" };
  });
  const failed = await c.callTool({ name: "faults__fail", arguments: { times: 5, key: "declined" } }).then(
    () => undefined,
    (e: unknown) => e as McpError,
  );
  // The upstream's own JSON-RPC error, passed through as the client would have seen it without the policy.
  expect(failed?.message).toMatch(/injected failure 1/);
  expect(asked).toHaveLength(1);
  // The second failure never happened: the call was not run again.
  const after = await c.callTool({ name: "faults__fail", arguments: { times: 2, key: "declined" } }).then(
    () => "ok",
    (e: unknown) => (e as McpError).message,
  );
  expect(after).toMatch(/injected failure 2/);
});

it("asks nobody when the call succeeds", async () => {
  const asked: string[] = [];
  const c = await client((message) => {
    asked.push(message);
    return { action: "accept", content: { approve: true } };
  });
  const result = await c.callTool({ name: "faults__fail", arguments: { times: 0, key: "fine" } });
  expect(textOf(result)).toBe("ok after 0 failures");
  expect(asked).toHaveLength(0);
});
