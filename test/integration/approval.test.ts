/**
 * Tool policy `approval: "always"`: a person approves each call through the client's elicitation before the
 * upstream is reached; a decline or a client that cannot ask fails the call, and the upstream never sees it.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CallToolResultSchema,
  CreateTaskResultSchema,
  ElicitRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import {
  connectClient,
  eventually,
  type InProcessGateway,
  NODE,
  ROOT,
  startGateway,
  textOf,
  writeConfig,
} from "../helpers/gateway.ts";

const execFileAsync = promisify(execFile);

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
    expect(textOf(result)).toMatch(/cannot ask \(it has no elicitation capability\) and no operator/);
    expect(echoCalls()).toBe(before);
  });

  it("leaves tools without the policy alone", async () => {
    const c = await client();
    expect(textOf(await c.callTool({ name: "faults__slow", arguments: { ms: 1 } }))).toBe("slept 1 ms");
  });
});

describe("approval by an operator, when the client cannot ask", () => {
  const ALICE = "alice-approval-key-0123456789ab";
  const OPS = "ops-approval-key-0123456789abcd";
  let held: InProcessGateway;
  let configFile: string;

  beforeAll(async () => {
    const raw = {
      mcpServers: { faults: { type: "http", url: upstream.url } },
      upstreams: { faults: { tools: { echo: { approval: "always", task: "always" } } } },
      security: {
        auth: {
          apiKeys: [
            { id: "alice", key: ALICE },
            { id: "ops", key: OPS },
          ],
        },
      },
      approvals: { operators: ["ops"] },
    };
    held = await startGateway(raw);
    configFile = await writeConfig(raw);
    await held.gateway.waitForUpstreams(10_000);
  });

  afterAll(async () => {
    await held?.stop();
  });

  const http = (key: string, method: string, path: string) =>
    fetch(`${held.base}${path}`, { method, headers: { authorization: `Bearer ${key}` } });

  async function aliceClient(): Promise<Client> {
    const c = new Client({ name: "no-elicitation", version: "1.0.0" });
    await c.connect(
      new StreamableHTTPClientTransport(new URL(held.url), {
        requestInit: { headers: { authorization: `Bearer ${ALICE}` } },
      }),
    );
    clients.push(c);
    return c;
  }

  async function heldCall(): Promise<{ id: string; arguments: string; principal: string }> {
    const pending = await eventually(async () => {
      const listed = (await (await http(OPS, "GET", "/approvals")).json()) as {
        pending: Array<{ id: string; arguments: string; principal: string }>;
      };
      return listed.pending[0];
    });
    return pending as { id: string; arguments: string; principal: string };
  }

  it("holds the call until an operator approves it, and lets only operators see or decide", async () => {
    const c = await aliceClient();
    const before = echoCalls();
    const call = c.callTool({ name: "faults__echo", arguments: { text: "held" } });
    const pending = await heldCall();
    expect(pending.principal).toBe("alice");
    expect(pending.arguments).toBe('{"text":"held"}');
    expect(echoCalls()).toBe(before);
    expect((await http(ALICE, "GET", "/approvals")).status).toBe(403);
    expect((await http(ALICE, "POST", `/approvals/${pending.id}/approve`)).status).toBe(403);
    expect((await http(OPS, "POST", `/approvals/${pending.id}/approve`)).status).toBe(200);
    expect(textOf(await call)).toBe("held");
    expect(echoCalls()).toBe(before + 1);
    expect((await http(OPS, "POST", `/approvals/${pending.id}/approve`)).status).toBe(404);
  });

  it("takes the status page's HTTP Basic credentials, and refuses a decision from a foreign origin", async () => {
    const basic = `Basic ${Buffer.from(`ops:${OPS}`).toString("base64")}`;
    const c = await aliceClient();
    const before = echoCalls();
    const call = c.callTool({ name: "faults__echo", arguments: { text: "from the page" } });
    const pending = await heldCall();
    const listed = await fetch(`${held.base}/approvals`, { headers: { authorization: basic } });
    expect(listed.status).toBe(200);
    // A cross-site page the browser would send the cached credentials from.
    const forged = await fetch(`${held.base}/approvals/${pending.id}/approve`, {
      method: "POST",
      headers: { authorization: basic, origin: "https://evil.example" },
    });
    expect(forged.status).toBe(403);
    expect(echoCalls()).toBe(before);
    const approved = await fetch(`${held.base}/approvals/${pending.id}/approve`, {
      method: "POST",
      headers: { authorization: basic, origin: held.base },
    });
    expect(approved.status).toBe(200);
    expect(textOf(await call)).toBe("from the page");
  });

  it("fails a denied call without reaching the upstream", async () => {
    const c = await aliceClient();
    const before = echoCalls();
    const call = c.callTool({ name: "faults__echo", arguments: { text: "no" } });
    const pending = await heldCall();
    await http(OPS, "POST", `/approvals/${pending.id}/deny`);
    const result = await call;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/an operator denied this call; it was not run/);
    expect(echoCalls()).toBe(before);
  });

  it("shows a held task as input_required, and the CLI lists and approves it", async () => {
    const c = await aliceClient();
    const { task } = await c.request(
      { method: "tools/call", params: { name: "faults__echo", arguments: { text: "task" }, task: {} } },
      CreateTaskResultSchema,
    );
    const pending = await heldCall();
    const status = await c.experimental.tasks.getTask(task.taskId);
    expect(status.status).toBe("input_required");
    expect(status.statusMessage).toBe(
      `waiting for an operator's approval (toolgate approvals approve ${pending.id})`,
    );
    const cli = (args: string[]) =>
      execFileAsync(
        NODE,
        [join(ROOT, "src/main.ts"), "approvals", "--config", configFile, "--url", held.base, ...args],
        {
          env: { ...process.env, TOOLGATE_API_KEY: OPS },
        },
      );
    expect((await cli([])).stdout).toContain(`${pending.id}  faults__echo (upstream faults) by alice`);
    expect((await cli(["approve", pending.id])).stdout).toBe(`approved: ${pending.id}\n`);
    const result = await c.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    expect(textOf(result)).toBe("task");
  });
});
