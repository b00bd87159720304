/**
 * Tasks on the 2026-07-28 face (the `io.modelcontextprotocol/tasks` extension). The v2 SDK client (2.4.0)
 * negotiates the era and carries `tasks/get|update|cancel` through its generic `request` (it sets `_meta` and
 * `Mcp-Name: <taskId>` itself), but its codec refuses `resultType: "task"`: the `tools/call` that may create
 * a task is sent as raw HTTP with the same `_meta` and headers. toolgate runs the fault fixture's tools as
 * tasks (the `task` policy); the handles are bound to the API key that created them.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { createParser } from "eventsource-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { eventually, type InProcessGateway, startGateway } from "../helpers/gateway.ts";
import { BASE_HEADERS, rawPost } from "../helpers/raw-mcp.ts";

const EXTENSION = "io.modelcontextprotocol/tasks";
const ALICE = "alice-modern-key-0123456789abcdef";
const BOB = "bob-modern-key-0123456789abcdef01";
const Any = z.looseObject({});
type Task = Record<string, unknown> & { taskId: string; status: string };

let upstream: RunningFaultServer;
let gw: InProcessGateway;
const clients: Client[] = [];

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  gw = await startGateway({
    mcpServers: { faults: { type: "http", url: upstream.url } },
    upstreams: {
      faults: {
        tools: {
          slow: { task: { mode: "auto", thresholdMs: 200 } },
          // A window no call here comes near: echo is answered plainly through the task path.
          echo: { task: { mode: "auto", thresholdMs: 60_000 } },
          work: { task: { mode: "auto", thresholdMs: 1_000 } },
          hang: { task: "always" },
          elicit: { task: "always" },
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
  await eventually(() => gw.gateway.catalog.tool("faults__elicit"));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await gw?.stop();
  await upstream?.close();
});

async function connect(key: string, withExtension = true): Promise<Client> {
  const client = new Client(
    { name: "modern-tasks", version: "1.0.0" },
    {
      versionNegotiation: { mode: "auto" },
      capabilities: { elicitation: {}, ...(withExtension && { extensions: { [EXTENSION]: {} } }) },
    },
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL(gw.url), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    }),
  );
  clients.push(client);
  return client;
}

/** 2026 `_meta` and headers for a raw request of `key`. */
function envelope(key: string, method: string, name: string | undefined, withExtension = true) {
  const meta = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": withExtension ? { extensions: { [EXTENSION]: {} } } : {},
  };
  const headers: Record<string, string> = {
    ...BASE_HEADERS,
    authorization: `Bearer ${key}`,
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": method,
    ...(name !== undefined && { "mcp-name": name }),
  };
  return { meta, headers };
}

/**
 * A `subscriptions/listen` stream for `taskIds`: its messages as they come, until `stop` holds for the list
 * seen so far (then the stream is closed).
 */
async function listen(
  key: string,
  taskIds: string[],
  stop: (seen: Array<Record<string, unknown>>) => boolean,
  withExtension = true,
): Promise<Array<Record<string, unknown>>> {
  const { meta, headers } = envelope(key, "subscriptions/listen", undefined, withExtension);
  const controller = new AbortController();
  const response = await fetch(gw.url, {
    method: "POST",
    headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "subscriptions/listen",
      params: { notifications: { taskIds }, _meta: meta },
    }),
    signal: controller.signal,
  });
  const seen: Array<Record<string, unknown>> = [];
  if (!response.headers.get("content-type")?.includes("text/event-stream")) {
    seen.push((await response.json()) as Record<string, unknown>);
    return seen;
  }
  const parser = createParser({ onEvent: (e) => seen.push(JSON.parse(e.data) as Record<string, unknown>) });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  try {
    while (!stop(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    controller.abort();
  }
  return seen;
}

/** A 2026 `tools/call` as raw HTTP (the v2 client cannot decode a CreateTaskResult); its result or error. */
async function call(
  key: string,
  name: string,
  args: Record<string, unknown>,
  withExtension = true,
): Promise<Record<string, unknown>> {
  const { meta, headers } = envelope(key, "tools/call", name, withExtension);
  const reply = await rawPost(
    gw.url,
    JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name, arguments: args, _meta: meta },
    }),
    headers,
  );
  const message = reply.messages.at(-1) as {
    result?: Record<string, unknown>;
    error?: Record<string, unknown>;
  };
  return message.result ?? { error: message.error };
}

function getTask(client: Client, taskId: string) {
  return client.request({ method: "tasks/get", params: { taskId } }, Any) as Promise<Task>;
}

/** Polls `tasks/get` at the task's own `pollIntervalMs` until `done` holds (bounded, for a stuck task). */
async function pollUntil(client: Client, taskId: string, done: (task: Task) => boolean): Promise<Task> {
  for (let polls = 0; polls < 100; polls++) {
    const task = await getTask(client, taskId);
    if (done(task)) return task;
    await new Promise((resolve) => setTimeout(resolve, Number(task.pollIntervalMs)));
  }
  throw new Error(`task ${taskId} did not reach the awaited state`);
}

const terminal = (t: Task) => ["completed", "failed", "cancelled"].includes(t.status);

function rpcCode(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => "resolved",
    (err: { code?: unknown }) => err.code,
  );
}

describe("tasks on the 2026-07-28 face", () => {
  let alice: Client;
  let bob: Client;

  beforeAll(async () => {
    alice = await connect(ALICE);
    bob = await connect(BOB);
  });

  it("advertises the extension in server/discover", () => {
    expect(alice.getProtocolEra()).toBe("modern");
    expect(alice.getDiscoverResult()?.capabilities.extensions?.[EXTENSION]).toEqual({});
  });

  it("answers a long call with a task, reports it working, then inlines the result", async () => {
    const created = (await call(ALICE, "faults__slow", { ms: 3_000 })) as Task;
    expect(created).toMatchObject({
      resultType: "task",
      status: "working",
      ttlMs: expect.any(Number),
      pollIntervalMs: expect.any(Number),
      createdAt: expect.any(String),
    });
    expect(created).not.toHaveProperty("ttl");
    expect(created).not.toHaveProperty("result");
    const working = await getTask(alice, created.taskId);
    expect(working).toMatchObject({ taskId: created.taskId, status: expect.any(String) });
    expect(working).not.toHaveProperty("result");

    const done = await pollUntil(alice, created.taskId, terminal);
    expect(done.status).toBe("completed");
    expect(done.result).toMatchObject({
      content: [{ type: "text", text: expect.stringContaining("slept") }],
    });
  });

  it("answers a call that ends within the tool's window with the plain result", async () => {
    const result = await call(ALICE, "faults__echo", { text: "plain" });
    expect(result).toMatchObject({ resultType: "complete", content: [{ text: "plain" }] });
    expect(result).not.toHaveProperty("taskId");
  });

  it("cancels a running task: an empty ack, the upstream call cancelled, status cancelled", async () => {
    const before = upstream.stats().cancelled.length;
    const created = (await call(ALICE, "faults__hang", {})) as Task;
    expect(created.resultType).toBe("task");
    await eventually(() => upstream.stats().inFlight > 0);
    const ack = await alice.request({ method: "tasks/cancel", params: { taskId: created.taskId } }, Any);
    expect(ack).not.toHaveProperty("taskId");
    expect(ack).not.toHaveProperty("status");
    await eventually(() => upstream.stats().cancelled.length === before + 1);
    expect((await getTask(alice, created.taskId)).status).toBe("cancelled");
    // Cancelling again is the same ack.
    const again = await alice.request({ method: "tasks/cancel", params: { taskId: created.taskId } }, Any);
    expect(again).not.toHaveProperty("status");
  });

  it("cancels the task of a client that went away within the answer window", async () => {
    const cancelled = upstream.stats().cancelled.length;
    const calls = upstream.stats().calls.work ?? 0;
    const { meta, headers } = envelope(ALICE, "tools/call", "faults__work");
    const leaving = new AbortController();
    const request = fetch(gw.url, {
      method: "POST",
      headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 3,
        method: "tools/call",
        params: { name: "faults__work", arguments: { key: "gone", ms: 600_000 }, _meta: meta },
      }),
      signal: leaving.signal,
    }).catch(() => undefined);
    await eventually(() => (upstream.stats().calls.work ?? 0) > calls);
    leaving.abort();
    await request;
    // At the end of the window the gateway would answer with a task nobody can learn of: it cancels it.
    await eventually(() => upstream.stats().cancelled.length > cancelled);
  });

  it("surfaces the upstream's question as inputRequests and resumes on tasks/update", async () => {
    const created = (await call(ALICE, "faults__elicit", { message: "Proceed?" })) as Task;
    const waiting = await pollUntil(alice, created.taskId, (t) => t.status === "input_required");
    const requests = waiting.inputRequests as Record<string, { method: string; params: { message: string } }>;
    const [key, request] = Object.entries(requests)[0] ?? [];
    expect(request).toMatchObject({ method: "elicitation/create", params: { message: "Proceed?" } });

    // Bob cannot answer Alice's question.
    expect(
      await rpcCode(
        bob.request(
          {
            method: "tasks/update",
            params: { taskId: created.taskId, inputResponses: { [key as string]: { action: "decline" } } },
          },
          Any,
        ),
      ),
    ).toBe(-32602);
    const ack = await alice.request(
      {
        method: "tasks/update",
        params: {
          taskId: created.taskId,
          inputResponses: { [key as string]: { action: "accept", content: { answer: "yes" } } },
        },
      },
      Any,
    );
    expect(ack).not.toHaveProperty("status");
    const done = await pollUntil(alice, created.taskId, terminal);
    expect(done.status).toBe("completed");
    expect(JSON.stringify(done.result)).toContain('\\"answer\\":\\"yes\\"');
  });

  it("refuses another principal's handle as not found, and leaves the task alone", async () => {
    const created = (await call(ALICE, "faults__hang", {})) as Task;
    for (const method of ["tasks/get", "tasks/cancel"]) {
      expect(await rpcCode(bob.request({ method, params: { taskId: created.taskId } }, Any))).toBe(-32602);
    }
    expect((await getTask(alice, created.taskId)).status).toBe("working");
    // A forged handle is refused the same way.
    expect(await rpcCode(getTask(alice, `${created.taskId.slice(0, -4)}AAAA`))).toBe(-32602);
    await alice.request({ method: "tasks/cancel", params: { taskId: created.taskId } }, Any);
  });

  it("keeps calls plain for a client without the extension and refuses it the task methods (-32021)", async () => {
    const plain = await connect(ALICE, false);
    const result = await call(ALICE, "faults__slow", { ms: 400 }, false);
    expect(result).toMatchObject({ resultType: "complete", content: [{ type: "text" }] });
    expect(result).not.toHaveProperty("taskId");
    const error = await plain
      .request({ method: "tasks/get", params: { taskId: "anything" } }, Any)
      .catch((err: { code: number; data: unknown }) => err);
    expect(error).toMatchObject({
      code: -32021,
      data: { requiredCapabilities: { extensions: { [EXTENSION]: {} } } },
    });
  });

  it("refuses tasks/get whose Mcp-Name header is not the task id (-32020)", async () => {
    const created = (await call(ALICE, "faults__hang", {})) as Task;
    const body = (taskId: string) =>
      JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tasks/get",
        params: { taskId, _meta: envelope(ALICE, "tasks/get", undefined).meta },
      });
    const headers = (name: string) => envelope(ALICE, "tasks/get", name).headers;
    const wrong = await rawPost(gw.url, body(created.taskId), headers("another-task"));
    expect(wrong.status).toBe(400);
    expect(wrong.messages[0]).toMatchObject({ id: 1, error: { code: -32020 } });
    const right = await rawPost(gw.url, body(created.taskId), headers(created.taskId));
    expect(right.messages[0]).toMatchObject({ result: { taskId: created.taskId, status: "working" } });
    await alice.request({ method: "tasks/cancel", params: { taskId: created.taskId } }, Any);
  });
});

describe("task status over subscriptions/listen", () => {
  const statusOf = (m: Record<string, unknown>) => (m.params as { status?: string } | undefined)?.status;

  it("acknowledges the caller's own tasks and sends notifications/tasks up to the inlined result", async () => {
    const created = (await call(ALICE, "faults__slow", { ms: 3_000 })) as Task;
    const seen = await listen(ALICE, [created.taskId], (s) => s.some((m) => statusOf(m) === "completed"));
    expect(seen[0]).toMatchObject({
      method: "notifications/subscriptions/acknowledged",
      params: { notifications: { taskIds: [created.taskId] } },
    });
    const updates = seen.filter((m) => m.method === "notifications/tasks");
    expect(updates[0]?.params).toMatchObject({ taskId: created.taskId, status: "working" });
    expect(updates.at(-1)?.params).toMatchObject({
      taskId: created.taskId,
      status: "completed",
      ttlMs: expect.any(Number),
      result: { content: [{ type: "text", text: expect.stringContaining("slept") }] },
    });
  });

  it("leaves another principal's task out of the acknowledgement", async () => {
    const created = (await call(ALICE, "faults__hang", {})) as Task;
    const seen = await listen(BOB, [created.taskId], (s) => s.length > 0);
    expect(seen[0]).toMatchObject({
      method: "notifications/subscriptions/acknowledged",
      params: { notifications: { taskIds: [] } },
    });
    const { meta, headers } = envelope(ALICE, "tasks/cancel", created.taskId);
    await rawPost(
      gw.url,
      JSON.stringify({
        jsonrpc: "2.0",
        id: 9,
        method: "tasks/cancel",
        params: { taskId: created.taskId, _meta: meta },
      }),
      headers,
    );
  });

  it("refuses task notifications to a client without the extension (-32021)", async () => {
    const seen = await listen(ALICE, ["anything"], () => true, false);
    expect(seen[0]).toMatchObject({ error: { code: -32021 } });
  });
});
