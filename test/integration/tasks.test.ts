/**
 * Tasks the gateway runs itself, in process against the fault fixture over HTTP: outcomes, TTL, a restart,
 * the neutral API's answer-within window (what a 2026 edge uses), and capabilities without any task source.
 */
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  CallToolResultSchema,
  CreateTaskResultSchema,
  ElicitRequestSchema,
  type McpError,
} from "@modelcontextprotocol/sdk/types.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Caller } from "../../src/router/router.ts";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import {
  connectClient,
  eventually,
  type InProcessGateway,
  startGateway,
  textOf,
} from "../helpers/gateway.ts";

const KEY = "integration-task-key-0123456789abcdef";
let upstream: RunningFaultServer;
const open: Array<{ stop(): Promise<void> } | Client> = [];

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
});

afterEach(async () => {
  for (const item of open.splice(0).reverse()) await ("stop" in item ? item.stop() : item.close());
});

afterAll(async () => {
  await upstream?.close();
});

function config(task: unknown, tasks: Record<string, unknown> = { handleKey: KEY }) {
  return {
    mcpServers: { faults: { type: "http", url: upstream.url } },
    upstreams: { faults: { policies: { task }, tools: { fail: { retry: { maxAttempts: 1 } } } } },
    tasks,
  };
}

async function gatewayWithClient(raw: unknown): Promise<{ gw: InProcessGateway; client: Client }> {
  const gw = await startGateway(raw);
  open.push(gw);
  await gw.gateway.waitForUpstreams(10_000);
  const client = await connectClient("http", gw);
  open.push(client);
  return { gw, client };
}

function createTask(client: Client, name: string, args: Record<string, unknown>, ttl?: number) {
  return client.request(
    { method: "tools/call", params: { name, arguments: args, task: ttl === undefined ? {} : { ttl } } },
    CreateTaskResultSchema,
  );
}

describe("tasks run by the gateway", () => {
  it("advertises tasks only when a tool policy or an upstream offers them", async () => {
    const off = await gatewayWithClient(config("off"));
    expect(off.client.getServerCapabilities()?.tasks).toBeUndefined();
    const on = await gatewayWithClient(config("always"));
    expect(on.client.getServerCapabilities()?.tasks).toEqual({
      list: {},
      cancel: {},
      requests: { tools: { call: {} } },
    });
  });

  it("marks a tool error as failed and hands its result back", async () => {
    const { client } = await gatewayWithClient(config("always"));
    const { task } = await createTask(client, "faults__fail", { times: 5, key: "t", mode: "toolError" });
    const result = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    expect(result.isError).toBe(true);
    const final = await client.experimental.tasks.getTask(task.taskId);
    expect(final.status).toBe("failed");
    expect(final.statusMessage).toMatch(/^failed: the tool returned an error/);
  });

  it("is input_required while the client answers the upstream's elicitation, which names the task", async () => {
    const gw = await startGateway(config("always"));
    open.push(gw);
    await gw.gateway.waitForUpstreams(10_000);
    const client = await connectClient("http", gw, { capabilities: { elicitation: {} } });
    open.push(client);
    let answer: (() => void) | undefined;
    const asked: Array<Record<string, unknown> | undefined> = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params._meta as Record<string, unknown> | undefined);
      await new Promise<void>((resolve) => {
        answer = resolve;
      });
      return { action: "accept", content: { answer: "yes" } };
    });
    const { task } = await createTask(client, "faults__elicit", { message: "proceed?" });
    const waiting = await eventually(async () => {
      const t = await client.experimental.tasks.getTask(task.taskId);
      return t.status === "input_required" ? t : undefined;
    });
    expect(waiting?.statusMessage).toBe("waiting for the client to answer elicitation/create");
    expect((asked[0]?.["io.modelcontextprotocol/related-task"] as { taskId?: string })?.taskId).toBe(
      task.taskId,
    );
    answer?.();
    const result = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    expect(textOf(result)).toContain('"answer":"yes"');
    expect((await client.experimental.tasks.getTask(task.taskId)).status).toBe("completed");
  });

  it("POSTs a task's terminal status to its tool's webhook, signed", async () => {
    const received: Array<{ body: string; signature: string | undefined }> = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => {
        body += chunk;
      });
      req.on("end", () => {
        received.push({ body, signature: req.headers["x-toolgate-signature"] as string | undefined });
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    open.push({ stop: () => new Promise<void>((resolve) => receiver.close(() => resolve())) });
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook?token=t`;
    const secret = "webhook-secret-0123456789";
    const { client } = await gatewayWithClient(
      config({ mode: "always", webhook: url }, { handleKey: KEY, webhookSecret: secret }),
    );
    const { task } = await createTask(client, "faults__echo", { text: "x" });
    await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    const hook = (await eventually(() => received[0])) as { body: string; signature?: string };
    const body = JSON.parse(hook.body);
    expect(body).toMatchObject({
      event: "task.ended",
      taskId: task.taskId,
      status: "completed",
      tool: "faults__echo",
      origin: "gateway",
      principal: "anonymous",
    });
    expect(hook.signature).toBe(`sha256=${createHmac("sha256", secret).update(hook.body).digest("hex")}`);
    // Once per task.
    await client.experimental.tasks.getTask(task.taskId);
    expect(received).toHaveLength(1);
  });

  it("counts tasks by tool, origin and event", async () => {
    const { gw, client } = await gatewayWithClient(config("always"));
    const { task: ok } = await createTask(client, "faults__echo", { text: "x" });
    await client.experimental.tasks.getTaskResult(ok.taskId, CallToolResultSchema);
    const { task: hung } = await createTask(client, "faults__hang", {});
    await client.experimental.tasks.cancelTask(hung.taskId);
    const text = await (await fetch(`${gw.base}/metrics`)).text();
    const count = (tool: string, event: string) =>
      text
        .split("\n")
        .find(
          (line) =>
            line.startsWith("toolgate_tasks_total{") &&
            line.includes(`toolgate_tool="${tool}"`) &&
            line.includes('toolgate_task_origin="gateway"') &&
            line.includes(`toolgate_task_event="${event}"`),
        )
        ?.split(" ")
        .at(-1);
    expect(count("faults__echo", "created")).toBe("1");
    expect(count("faults__echo", "completed")).toBe("1");
    expect(count("faults__hang", "cancelled")).toBe("1");
    expect(text).toMatch(/toolgate_tasks_running\{toolgate_tool="faults__hang"\} 0/);
    expect(text).toMatch(
      /toolgate_task_duration_seconds_count\{toolgate_tool="faults__echo",toolgate_task_event="completed"\} 1/,
    );
  });

  it("gives a task's TTL back and forgets the task after it", async () => {
    const { client } = await gatewayWithClient(config("always"));
    const { task } = await createTask(client, "faults__echo", { text: "x" }, 300);
    expect(task.ttl).toBe(300);
    const err = await eventually(
      () =>
        client.experimental.tasks.getTask(task.taskId).then(
          () => undefined,
          (e: unknown) => e as McpError,
        ),
      10_000,
      100,
    );
    expect(err?.message).toMatch(/task not found/);
  });

  it("caps a requested TTL at tasks.maxTtlMs", async () => {
    const { client } = await gatewayWithClient(config("always", { handleKey: KEY, maxTtlMs: 5_000 }));
    const { task } = await createTask(client, "faults__echo", { text: "x" }, 60_000);
    expect(task.ttl).toBe(5_000);
  });

  it("says clearly that a task was lost when the gateway restarted", async () => {
    const first = await gatewayWithClient(config("always"));
    const { task } = await createTask(first.client, "faults__echo", { text: "x" }, 60_000);
    await first.client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    await first.client.close();
    await first.gw.stop();
    const second = await gatewayWithClient(config("always"));
    const err = await second.client.experimental.tasks.getTask(task.taskId).then(
      () => undefined,
      (e: unknown) => e as McpError,
    );
    expect(err?.code).toBe(-32602);
    expect(err?.message).toMatch(/no longer has it: the gateway restarted/);
  });

  it("answers with the plain result when the call ends within the window, else with a task", async () => {
    const { gw } = await gatewayWithClient(config({ mode: "auto", thresholdMs: 200 }));
    const caller: Caller = { sessionId: "test", request: async () => ({}), notify: async () => {} };
    const ctx = {
      caller,
      principal: { id: "p", kind: "anonymous" as const, scopes: [] },
      requestId: 1,
      signal: new AbortController().signal,
      meta: undefined,
      onProgress: undefined,
    };
    expect(gw.gateway.tasks.answerWindowMs("faults__echo")).toBe(200);
    const quick = await gw.gateway.tasks.callTool("faults__echo", { text: "now" }, ctx, {
      answerWithinMs: 5_000,
    });
    expect("result" in quick && textOf(quick.result)).toBe("now");
    const slow = await gw.gateway.tasks.callTool("faults__slow", { ms: 60_000 }, ctx, { answerWithinMs: 0 });
    expect("task" in slow && slow.task.status).toBe("working");
    if ("task" in slow) await gw.gateway.tasks.cancel(slow.task.handle, ctx);
  });
});

describe("tasks over plain HTTP", () => {
  const ALICE = "alice-http-key-0123456789abcdef";
  const BOB = "bob-http-key-0123456789abcdef01";

  async function gateway() {
    const gw = await startGateway({
      ...config("off"),
      security: {
        auth: {
          apiKeys: [
            { id: "alice", key: ALICE },
            { id: "bob", key: BOB },
          ],
        },
      },
    });
    open.push(gw);
    await gw.gateway.waitForUpstreams(10_000);
    const call = (key: string | undefined, method: string, path: string, body?: string) =>
      fetch(`${gw.base}${path}`, {
        method,
        headers: key ? { authorization: `Bearer ${key}` } : {},
        ...(body !== undefined && { body }),
      });
    return { gw, call };
  }

  it("submits JSON Lines as tasks of the caller, polls them and hands results back", async () => {
    const { call } = await gateway();
    const lines = [
      JSON.stringify({ id: "a", tool: "faults__echo", arguments: { text: "one" }, priority: 1 }),
      "not json",
      JSON.stringify({ id: "b", tool: "faults__nope" }),
      JSON.stringify({ id: "c", tool: "faults__hang" }),
    ].join("\n");
    const submitted = await call(ALICE, "POST", "/tasks", lines);
    expect(submitted.status).toBe(200);
    const { tasks } = (await submitted.json()) as {
      tasks: Array<{ line: number; id?: string; task?: { taskId: string }; error?: { message: string } }>;
    };
    expect(tasks.map((t) => t.line)).toEqual([1, 2, 3, 4]);
    expect(tasks[1]?.error?.message).toMatch(/not JSON/);
    expect(tasks[2]?.error?.message).toMatch(/ToolNotFound/);
    const echo = tasks[0]?.task?.taskId as string;
    const hang = tasks[3]?.task?.taskId as string;
    expect(echo).toMatch(/^tg1\./);

    const result = await call(ALICE, "GET", `/tasks/${echo}/result`);
    expect(textOf(await result.json())).toBe("one");
    expect(((await (await call(ALICE, "GET", `/tasks/${echo}`)).json()) as { status: string }).status).toBe(
      "completed",
    );

    // Another principal, and no credentials at all, are refused.
    expect((await call(BOB, "GET", `/tasks/${echo}`)).status).toBe(404);
    expect((await call(BOB, "DELETE", `/tasks/${hang}`)).status).toBe(404);
    expect((await call(undefined, "GET", `/tasks/${echo}`)).status).toBe(401);
    expect((await call(undefined, "POST", "/tasks", lines)).status).toBe(401);
    expect((await call(ALICE, "POST", "/tasks", "x".repeat(5 * 1024 * 1024))).status).toBe(413);

    const cancelled = await call(ALICE, "DELETE", `/tasks/${hang}`);
    expect(((await cancelled.json()) as { status: string }).status).toBe("cancelled");
    const gone = await call(ALICE, "GET", `/tasks/${hang}/result`);
    expect(gone.status).toBe(400);
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe("Cancelled");
  });
});
