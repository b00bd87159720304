/**
 * Tasks through the gateway binary, from the official SDK v1 client (2025-11-25 experimental tasks):
 * forwarded to server-everything's task tool (`simulate-research-query`, taskSupport required), and run by
 * the gateway itself for our fault fixture's tools; handles bound to the API-key principal that made them.
 * The same upstream task tool from a 2026-07-28 client (the tasks extension, raw HTTP) at the end.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CallToolResultSchema,
  CreateTaskResultSchema,
  ElicitRequestSchema,
  McpError,
  TaskStatusNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EVERYTHING,
  eventually,
  FAULT_SERVER,
  type GatewayProcess,
  NODE,
  spawnGateway,
  textOf,
} from "../helpers/gateway.ts";
import { BASE_HEADERS, rawPost } from "../helpers/raw-mcp.ts";

const ALICE = "alice-key-0123456789abcdef0123";
const BOB = "bob-key-0123456789abcdef012345";
const RESEARCH = "everything__simulate-research-query";
const RELATED = "io.modelcontextprotocol/related-task";
const NOT_FOUND = /task not found: the handle is unknown, expired or not yours/;

let gw: GatewayProcess;
let alice: Client;
let bob: Client;
const statusSeen: Array<{ taskId: string; status: string }> = [];

async function connect(key: string): Promise<Client> {
  const client = new Client({ name: "tasks-e2e", version: "1.0.0" }, { capabilities: { elicitation: {} } });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(gw.url), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    }),
  );
  return client;
}

/** A task-augmented tools/call; answers the CreateTaskResult. */
function createTask(client: Client, name: string, args: Record<string, unknown>, ttl?: number) {
  return client.request(
    { method: "tools/call", params: { name, arguments: args, task: ttl === undefined ? {} : { ttl } } },
    CreateTaskResultSchema,
  );
}

async function refusal(promise: Promise<unknown>): Promise<McpError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(McpError);
  return err as McpError;
}

beforeAll(async () => {
  gw = await spawnGateway({
    mcpServers: {
      everything: { command: NODE, args: [EVERYTHING, "stdio"] },
      faults: { command: NODE, args: [FAULT_SERVER] },
    },
    upstreams: {
      faults: {
        tools: {
          hang: { task: "always", lock: { group: "disk" } },
          slow: { task: "always", lock: { group: "disk" } },
          work: { task: { mode: "auto", thresholdMs: 500 }, concurrency: { maxInFlight: 1, queueSize: 1 } },
        },
      },
    },
    security: {
      auth: {
        apiKeys: [
          { id: "alice", key: ALICE },
          { id: "bob", key: BOB },
        ],
      },
    },
  });
  // Sessions learn the upstreams' task capabilities when they initialize: wait for the upstreams first.
  const probe = await connect(ALICE);
  await eventually(async () => {
    const names = (await probe.listTools()).tools.map((t) => t.name);
    return names.includes(RESEARCH) && names.includes("faults__stats");
  }, 30_000);
  await probe.close();
  alice = await connect(ALICE);
  bob = await connect(BOB);
  alice.setNotificationHandler(TaskStatusNotificationSchema, (n) => {
    statusSeen.push({ taskId: n.params.taskId, status: n.params.status });
  });
}, 60_000);

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await gw?.stop();
});

describe("forwarded to server-everything's task tool", () => {
  it("advertises the upstream's task capabilities, and its task-only tool as task-optional", async () => {
    const tasks = alice.getServerCapabilities()?.tasks;
    expect(tasks?.requests?.tools?.call).toBeDefined();
    expect(tasks?.list).toBeDefined();
    expect(tasks?.cancel).toBeDefined();
    const { tools } = await alice.listTools();
    expect(tools.find((t) => t.name === RESEARCH)?.execution?.taskSupport).toBe("optional");
  });

  it("serves the task-only tool to a plain call too, by waiting for the upstream task", async () => {
    const result = await alice.callTool({ name: RESEARCH, arguments: { topic: "plain" } });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toContain("Research Report: plain");
    expect(JSON.stringify(result._meta ?? {})).not.toContain(RELATED);
  });

  it("runs a task end to end with the SDK's task stream: create, poll, result", async () => {
    const kinds: string[] = [];
    const statuses: string[] = [];
    let handle = "";
    let result: Record<string, unknown> | undefined;
    for await (const message of alice.experimental.tasks.callToolStream(
      { name: RESEARCH, arguments: { topic: "gateways" } },
      CallToolResultSchema,
      { task: { ttl: 60_000 } },
    )) {
      kinds.push(message.type);
      if (message.type === "taskCreated") handle = message.task.taskId;
      if (message.type === "taskStatus") statuses.push(message.task.status);
      if (message.type === "result") result = message.result;
      if (message.type === "error") throw message.error;
    }
    expect(kinds[0]).toBe("taskCreated");
    expect(handle).toMatch(/^tg1\./);
    expect(statuses.at(-1)).toBe("completed");
    expect(textOf(result)).toContain("Research Report: gateways");
    // The result names the task by its handle, never by the upstream's id.
    expect((result?._meta as Record<string, { taskId: string }> | undefined)?.[RELATED]?.taskId).toBe(handle);
    // Status notifications reached the creating session, under the handle only.
    await eventually(() => statusSeen.some((s) => s.taskId === handle));
    expect(statusSeen.every((s) => s.taskId.startsWith("tg1."))).toBe(true);
  });

  it("relays the upstream's input request of an input_required task to the task's creator, under the handle", async () => {
    const asked: Array<Record<string, unknown> | undefined> = [];
    alice.setRequestHandler(ElicitRequestSchema, (request) => {
      asked.push(request.params._meta as Record<string, unknown> | undefined);
      return { action: "accept", content: { interpretation: "historical" } };
    });
    let handle = "";
    let result: Record<string, unknown> | undefined;
    const statuses: string[] = [];
    for await (const message of alice.experimental.tasks.callToolStream(
      { name: RESEARCH, arguments: { topic: "rome", ambiguous: true } },
      CallToolResultSchema,
      { task: { ttl: 60_000 } },
    )) {
      if (message.type === "taskCreated") handle = message.task.taskId;
      if (message.type === "taskStatus") statuses.push(message.task.status);
      if (message.type === "result") result = message.result;
      if (message.type === "error") throw message.error;
    }
    expect(statuses).toContain("input_required");
    expect(asked).toHaveLength(1);
    expect((asked[0]?.[RELATED] as { taskId?: string } | undefined)?.taskId).toBe(handle);
    expect(textOf(result)).toContain("Clarification**: historical");
  });

  it("lists a task to its owner only and refuses it to another principal", async () => {
    const { task } = await createTask(alice, RESEARCH, { topic: "isolation" }, 60_000);
    const mine = await alice.experimental.tasks.listTasks();
    expect(mine.tasks.map((t) => t.taskId)).toContain(task.taskId);
    const theirs = await bob.experimental.tasks.listTasks();
    expect(theirs.tasks.map((t) => t.taskId)).not.toContain(task.taskId);

    // One at a time: a refusal must not reject while another is awaited (that would be an unhandled rejection).
    for (const attempt of [
      () => bob.experimental.tasks.getTask(task.taskId),
      () => bob.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema),
      () => bob.experimental.tasks.cancelTask(task.taskId),
    ]) {
      const err = await refusal(attempt());
      expect(err.code).toBe(-32602);
      expect(err.message).toMatch(NOT_FOUND);
    }
    // Still alive for its owner.
    expect((await alice.experimental.tasks.getTask(task.taskId)).status).not.toBe("cancelled");
  });

  it("refuses forged handles with the same error", async () => {
    const { task } = await createTask(alice, RESEARCH, { topic: "forgery" }, 60_000);
    const flipped = `${task.taskId.slice(0, -2)}${task.taskId.at(-2) === "A" ? "B" : "A"}${task.taskId.at(-1)}`;
    for (const forged of [
      flipped,
      "tg1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "some-upstream-task-id",
    ]) {
      const err = await refusal(alice.experimental.tasks.getTask(forged));
      expect(err.code).toBe(-32602);
      expect(err.message).toMatch(NOT_FOUND);
    }
  });

  it("cancels upstream: the upstream itself then reports the task cancelled", async () => {
    const { task } = await createTask(alice, RESEARCH, { topic: "cancel me" }, 60_000);
    const cancelled = await alice.experimental.tasks.cancelTask(task.taskId);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.taskId).toBe(task.taskId);
    // tasks/get is answered by the upstream's own task store.
    expect((await alice.experimental.tasks.getTask(task.taskId)).status).toBe("cancelled");
    const again = await refusal(alice.experimental.tasks.cancelTask(task.taskId));
    expect(again.code).toBe(-32602);
  });

  it("refuses a handle after its TTL with the same error", async () => {
    const { task } = await createTask(alice, RESEARCH, { topic: "short-lived" }, 1_000);
    expect(task.ttl).toBeLessThanOrEqual(1_000);
    const err = await eventually(
      () =>
        alice.experimental.tasks.getTask(task.taskId).then(
          () => undefined,
          (e: unknown) => e as McpError,
        ),
      15_000,
      200,
    );
    expect(err?.code).toBe(-32602);
    expect(err?.message).toMatch(NOT_FOUND);
  });
});

describe("run by the gateway for a tool without task support", () => {
  it("serves the tool as task-optional", async () => {
    const { tools } = await alice.listTools();
    expect(tools.find((t) => t.name === "faults__slow")?.execution?.taskSupport).toBe("optional");
    expect(tools.find((t) => t.name === "faults__echo")?.execution?.taskSupport).toBeUndefined();
  });

  it("reports waiting for lock behind an exclusive lock, then completes", async () => {
    const holder = new AbortController();
    const held = alice
      .callTool({ name: "faults__hang", arguments: {} }, undefined, { signal: holder.signal })
      .catch(() => "aborted");
    // The plain call holds the lock once the fixture counts it.
    await eventually(async () =>
      textOf(await alice.callTool({ name: "faults__stats", arguments: {} })).includes('"hang":1'),
    );
    const { task } = await createTask(alice, "faults__slow", { ms: 10 }, 60_000);
    const waiting = await eventually(async () => {
      const t = await alice.experimental.tasks.getTask(task.taskId);
      return t.statusMessage?.startsWith("waiting for lock") ? t : undefined;
    });
    expect(waiting?.status).toBe("working");
    expect(waiting?.pollInterval).toBeGreaterThan(0);
    holder.abort();
    await held;
    const result = await alice.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    expect(textOf(result)).toBe("slept 10 ms");
    expect((result._meta as Record<string, { taskId: string }>)[RELATED]?.taskId).toBe(task.taskId);
    expect((await alice.experimental.tasks.getTask(task.taskId)).status).toBe("completed");
    expect((await alice.experimental.tasks.listTasks()).tasks.map((t) => t.taskId)).toContain(task.taskId);
  });

  it("cancelling a queued task frees its queue slot", async () => {
    const holder = new AbortController();
    const held = alice
      .callTool({ name: "faults__work", arguments: { key: "q", ms: 600_000 } }, undefined, {
        signal: holder.signal,
      })
      .catch(() => "aborted");
    await eventually(async () =>
      textOf(await alice.callTool({ name: "faults__stats", arguments: {} })).includes('"work":1'),
    );
    const { task: queued } = await createTask(alice, "faults__work", { key: "q", ms: 1 }, 60_000);
    await eventually(async () =>
      (await alice.experimental.tasks.getTask(queued.taskId)).statusMessage?.startsWith("queued"),
    );
    // The one queue place is taken: a plain call is refused at once.
    const full = await alice.callTool({ name: "faults__work", arguments: { key: "q", ms: 1 } });
    expect(full.isError).toBe(true);
    expect(textOf(full)).toMatch(/QueueFull/);

    const cancelled = await alice.experimental.tasks.cancelTask(queued.taskId);
    expect(cancelled.status).toBe("cancelled");
    const err = await refusal(alice.experimental.tasks.getTaskResult(queued.taskId, CallToolResultSchema));
    expect(err.message).toMatch(/cancelled/);
    // The place is free again: a new task queues instead of being refused.
    const { task: next } = await createTask(alice, "faults__work", { key: "q", ms: 1 }, 60_000);
    await eventually(async () =>
      (await alice.experimental.tasks.getTask(next.taskId)).statusMessage?.startsWith("queued"),
    );
    holder.abort();
    await held;
    const result = await alice.experimental.tasks.getTaskResult(next.taskId, CallToolResultSchema);
    expect(textOf(result)).toBe("worked 1 ms on q");
    // The cancelled one never reached the upstream: one plain call and the last task ran.
    const stats = JSON.parse(textOf(await alice.callTool({ name: "faults__stats", arguments: {} })));
    expect(stats.calls.work).toBe(2);
  });

  it("cancelling a running task cancels the upstream call", async () => {
    const { task } = await createTask(alice, "faults__hang", {}, 60_000);
    await eventually(async () =>
      textOf(await alice.callTool({ name: "faults__stats", arguments: {} })).includes('"hang":2'),
    );
    const before = JSON.parse(textOf(await alice.callTool({ name: "faults__stats", arguments: {} })));
    await alice.experimental.tasks.cancelTask(task.taskId);
    await eventually(async () => {
      const stats = JSON.parse(textOf(await alice.callTool({ name: "faults__stats", arguments: {} })));
      return stats.cancelled.length > before.cancelled.length;
    });
    expect((await alice.experimental.tasks.getTask(task.taskId)).status).toBe("cancelled");
  });

  it("keeps the gateway's tasks from another principal", async () => {
    const { task } = await createTask(alice, "faults__slow", { ms: 1 }, 60_000);
    const err = await refusal(bob.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema));
    expect(err.message).toMatch(NOT_FOUND);
    expect((await bob.experimental.tasks.listTasks()).tasks).toEqual([]);
  });

  it("answers a task request for a tool that cannot run as one with method not found", async () => {
    const err = await refusal(createTask(alice, "faults__echo", { text: "x" }));
    expect(err.code).toBe(-32601);
    expect(err.message).toMatch(/does not run as a task/);
  });
});

describe("forwarded to server-everything from a 2026-07-28 client (tasks extension)", () => {
  const EXTENSION = "io.modelcontextprotocol/tasks";

  /** One modern request as raw HTTP (`_meta`, `Mcp-Method`, `Mcp-Name`); its result, or `{ error }`. */
  async function modern(key: string, method: string, params: Record<string, unknown>) {
    const name = params.name ?? params.taskId;
    const meta = {
      "io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientCapabilities": { elicitation: {}, extensions: { [EXTENSION]: {} } },
    };
    const reply = await rawPost(
      gw.url,
      JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: { ...params, _meta: meta } }),
      {
        ...BASE_HEADERS,
        authorization: `Bearer ${key}`,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": method,
        ...(typeof name === "string" && { "mcp-name": name }),
      },
      15_000,
    );
    const message = reply.messages.at(-1) as { result?: Record<string, unknown>; error?: unknown };
    return message.result ?? { error: message.error };
  }

  async function pollUntil(taskId: string, done: (task: Record<string, unknown>) => boolean) {
    for (let polls = 0; polls < 100; polls++) {
      const task = await modern(ALICE, "tasks/get", { taskId });
      if (done(task)) return task;
      await new Promise((resolve) => setTimeout(resolve, Number(task.pollIntervalMs ?? 500)));
    }
    throw new Error(`task ${taskId} did not reach the awaited state`);
  }
  const terminal = (t: Record<string, unknown>) =>
    ["completed", "failed", "cancelled"].includes(String(t.status));

  it("answers with a task under a handle, then inlines the upstream's result", async () => {
    const created = await modern(ALICE, "tools/call", { name: RESEARCH, arguments: { topic: "modern" } });
    expect(created).toMatchObject({ resultType: "task", status: "working", ttlMs: expect.any(Number) });
    expect(String(created.taskId)).toMatch(/^tg1\./);
    const done = await pollUntil(String(created.taskId), terminal);
    expect(done.status).toBe("completed");
    expect(textOf(done.result)).toContain("Research Report: modern");
    expect(JSON.stringify(done.result)).not.toContain(RELATED);
    // Bob gets "not found" for Alice's handle.
    const theirs = await modern(BOB, "tasks/get", { taskId: created.taskId });
    expect(theirs.error).toMatchObject({ code: -32602, message: expect.stringMatching(NOT_FOUND) });
  });

  it("turns the upstream's question into inputRequests and answers it with tasks/update", async () => {
    const created = await modern(ALICE, "tools/call", {
      name: RESEARCH,
      arguments: { topic: "carthage", ambiguous: true },
    });
    const taskId = String(created.taskId);
    const waiting = await pollUntil(taskId, (t) => t.inputRequests !== undefined || terminal(t));
    expect(waiting.status).toBe("input_required");
    const [key, request] =
      Object.entries(waiting.inputRequests as Record<string, { method: string }>)[0] ?? [];
    expect(request?.method).toBe("elicitation/create");
    const ack = await modern(ALICE, "tasks/update", {
      taskId,
      inputResponses: { [String(key)]: { action: "accept", content: { interpretation: "historical" } } },
    });
    expect(ack).toMatchObject({ resultType: "complete" });
    const done = await pollUntil(taskId, terminal);
    expect(done.status).toBe("completed");
    expect(textOf(done.result)).toContain("Clarification**: historical");
  });

  it("cancels upstream with an empty ack", async () => {
    const created = await modern(ALICE, "tools/call", { name: RESEARCH, arguments: { topic: "stop" } });
    const ack = await modern(ALICE, "tasks/cancel", { taskId: created.taskId });
    expect(ack).toMatchObject({ resultType: "complete" });
    expect(ack).not.toHaveProperty("status");
    expect((await modern(ALICE, "tasks/get", { taskId: created.taskId })).status).toBe("cancelled");
  });
});
