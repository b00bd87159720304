/**
 * Two real gateway processes sharing a real redis-server: a 2025-era SSE stream cut on one replica is
 * resumed with `Last-Event-ID` on the other (the Redis event store), and a task the gateway runs on one
 * replica is found, awaited and listed on the other (the Redis task store). Raw HTTP for the stream (the
 * cut and the resumption must go to chosen replicas), SDK clients for the tasks.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema, CreateTaskResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  FAULT_SERVER,
  type GatewayProcess,
  NODE,
  spawnGateway,
  textOf,
} from "../helpers/gateway.ts";
import { type RawSession, rawSession } from "../helpers/raw-mcp.ts";
import { RedisServer, redisServerBinary } from "../helpers/redis.ts";

const HAS_REDIS = redisServerBinary() !== undefined;
if (!HAS_REDIS)
  console.warn(
    "cluster resumption e2e skipped: redis-server is not installed (apt-get install redis-server)",
  );

const KEY = "resume-key-0123456789abcdef0123456789";
const AUTH = { "X-API-Key": KEY };

async function spawnFixture(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(NODE, [FAULT_SERVER, "--transport", "http", "--port", "0"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`fault fixture exited with ${code}`)));
  });
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

/** SSE events of a response until `stop` says so (then the stream is cut) or the stream ends. */
async function readEvents(
  response: Response,
  stop: (events: EventSourceMessage[]) => boolean = () => false,
  cut?: AbortController,
): Promise<EventSourceMessage[]> {
  const events: EventSourceMessage[] = [];
  let done = false;
  const parser = createParser({
    onEvent: (event) => {
      events.push(event);
      if (stop(events)) done = true;
    },
  });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  while (!done) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    parser.feed(decoder.decode(value, { stream: true }));
  }
  if (done) cut?.abort();
  return events;
}

const messageOf = (e: EventSourceMessage) => JSON.parse(e.data) as Record<string, unknown>;

describe.skipIf(!HAS_REDIS)("two replicas sharing Redis: streams and tasks move", () => {
  let redis: RedisServer;
  let fixture: { child: ChildProcess; url: string };
  let replicas: GatewayProcess[] = [];
  const clients: Client[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    fixture = await spawnFixture();
    const config = {
      mcpServers: { fs: { type: "http", url: fixture.url } },
      defaults: { retry: { maxAttempts: 1 }, breaker: { enabled: false } },
      upstreams: { fs: { tools: { slow: { task: "always" } } } },
      security: { auth: { apiKeys: [{ id: "main", key: KEY }] }, pinning: { mode: "off" } },
      tasks: { handleKey: "task-key-0123456789abcdef0123456789ab", pollIntervalMs: 100 },
      cluster: {
        redis: redis.url,
        keyPrefix: `resume-${process.pid}:`,
        replicas: 2,
        pingMs: 200,
        sessions: { key: "session-key-0123456789abcdef0123456789" },
      },
    };
    replicas = await Promise.all([0, 1].map(() => spawnGateway(config)));
    for (const r of replicas) {
      const client = new Client({ name: "cluster-resume", version: "1.0.0" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(r.url), { requestInit: { headers: AUTH } }),
      );
      clients.push(client);
    }
    // Both replicas have the upstream's tools before the tests start.
    for (const client of clients) {
      await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "fs__progress"));
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(replicas.map((r) => r.stop("SIGKILL")));
    fixture?.child.kill("SIGKILL");
    await redis?.stop();
  });

  it("resumes on replica B, with Last-Event-ID, a stream cut on replica A: every event once, in order", async () => {
    const [a, b] = replicas as [GatewayProcess, GatewayProcess];
    const session: RawSession = await rawSession(a.url, AUTH);
    const cut = new AbortController();
    const post = await fetch(a.url, {
      method: "POST",
      headers: session.headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 41,
        method: "tools/call",
        params: {
          name: "fs__progress",
          arguments: { steps: 4, intervalMs: 400 },
          _meta: { progressToken: "p41" },
        },
      }),
      signal: cut.signal,
    });
    expect(post.headers.get("content-type")).toContain("text/event-stream");
    // Cut after the first chunk that carries a message: progress 1, or more when a busy machine read late. The
    // call goes on upstream through replica A, its answer not sent yet.
    const before = await readEvents(post, (events) => events.some((e) => e.data), cut);
    let lastEventId = String(before.at(-1)?.id);
    expect(before.filter((e) => e.data).map(messageOf)).not.toContainEqual(
      expect.objectContaining({ id: 41 }),
    );

    // The client comes back through replica B, which never saw this session or stream. B replays what
    // the shared store holds and ends; the client comes back again (as the SDK client does) until it has
    // its answer.
    const after: EventSourceMessage[] = [];
    await eventually(
      async () => {
        const resumed = await fetch(b.url, {
          method: "GET",
          headers: { ...session.headers, accept: "text/event-stream", "last-event-id": lastEventId },
        });
        expect(resumed.status).toBe(200);
        const events = (await readEvents(resumed)).filter((e) => e.data);
        after.push(...events);
        lastEventId = String(events.at(-1)?.id ?? lastEventId);
        return after.some((e) => messageOf(e).id === 41);
      },
      30_000,
      100,
    );

    const messages = [...before, ...after].filter((e) => e.data).map(messageOf);
    const progress = messages
      .filter((m) => m.method === "notifications/progress")
      .map((m) => (m.params as { progress: number }).progress);
    expect(progress).toEqual([1, 2, 3, 4]);
    const answers = messages.filter((m) => m.id === 41);
    expect(answers).toHaveLength(1);
    expect(JSON.stringify(answers[0])).toContain("done");
    // Event ids of one stream, only growing: nothing twice, nothing out of order.
    const ids = [...before, ...after].filter((e) => e.data).map((e) => String(e.id));
    expect(new Set(ids.map((id) => id.slice(0, id.lastIndexOf("_")))).size).toBe(1);
    const seqs = ids.map((id) => Number(id.split("_").at(-1)));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
  }, 60_000);

  it("carries the session's GET stream on replica B when the client resumes it there", async () => {
    const [a, b] = replicas as [GatewayProcess, GatewayProcess];
    const session = await rawSession(a.url, AUTH);
    const sse = { ...session.headers, accept: "text/event-stream" };
    const cut = new AbortController();
    const standalone = await fetch(a.url, { method: "GET", headers: sse, signal: cut.signal });
    expect(standalone.status).toBe(200);
    const primed = await readEvents(standalone, (events) => events.some((e) => e.id), cut);
    const lastEventId = String(primed[0]?.id);

    const resumed = new AbortController();
    const onB = await fetch(b.url, {
      method: "GET",
      headers: { ...sse, "last-event-id": lastEventId },
      signal: resumed.signal,
    });
    expect(onB.status).toBe(200);
    // It stays open as the session's GET stream on B: a second one is refused there.
    const second = await fetch(b.url, { method: "GET", headers: sse });
    expect(second.status).toBe(409);
    await second.body?.cancel();
    resumed.abort();
  });

  it("refuses on replica B a Last-Event-ID the store never held", async () => {
    const [a, b] = replicas as [GatewayProcess, GatewayProcess];
    const session = await rawSession(a.url, AUTH);
    const resumed = await fetch(b.url, {
      method: "GET",
      headers: {
        ...session.headers,
        accept: "text/event-stream",
        "last-event-id": `${session.id}_feedbeef9_3`,
      },
    });
    expect(resumed.status).toBe(404);
    expect(await resumed.text()).toContain("no longer held");
  });

  it("finds on replica B a task replica A runs: get, result and list, while A does the work", async () => {
    const [onA, onB] = clients as [Client, Client];
    const { task } = await onA.request(
      { method: "tools/call", params: { name: "fs__slow", arguments: { ms: 0, hold: "t1" }, task: {} } },
      CreateTaskResultSchema,
    );
    expect(task.taskId).toMatch(/^tg1\./);
    // Held upstream: B sees it working, in the shared store.
    expect((await onB.experimental.tasks.getTask(task.taskId)).status).toBe("working");
    expect((await onB.experimental.tasks.listTasks()).tasks.map((t) => t.taskId)).toContain(task.taskId);
    const result = onB.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema);
    await onB.callTool({ name: "fs__release", arguments: { hold: "t1" } });
    expect(textOf(await result)).toContain("slept 0 ms");
    expect((await onB.experimental.tasks.getTask(task.taskId)).status).toBe("completed");
    expect((await onA.experimental.tasks.getTask(task.taskId)).status).toBe("completed");
  }, 60_000);
});
