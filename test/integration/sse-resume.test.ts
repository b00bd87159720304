/**
 * 2025-era resumability downstream: a client whose SSE response stream is cut mid-call reconnects with
 * GET + `Last-Event-ID` and gets every event it missed, then the rest of the call, exactly once. SSE is read
 * with eventsource-parser, as a client would.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { eventually, type InProcessGateway, startGateway } from "../helpers/gateway.ts";
import { type RawSession, rawRequest, rawSession } from "../helpers/raw-mcp.ts";

let upstream: RunningFaultServer;
let gw: InProcessGateway;

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  gw = await startGateway({ mcpServers: { faults: { type: "http", url: upstream.url } } });
  await eventually(() => gw.gateway.catalog.tool("faults__progress"));
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

/** Reads SSE events from a response until `stop` says so (then cuts the stream) or the stream ends. */
async function readEvents(
  response: Response,
  stop: (events: EventSourceMessage[]) => boolean,
  abort?: AbortController,
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
  if (done) abort?.abort();
  return events;
}

const isResult = (e: EventSourceMessage) =>
  e.data !== "" && (JSON.parse(e.data) as { result?: unknown }).result !== undefined;

function progressCall(id: number, steps: number): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: {
      name: "faults__progress",
      arguments: { steps, intervalMs: 100 },
      _meta: { progressToken: `p${id}` },
    },
  });
}

describe("SSE resumption with Last-Event-ID (2025-11-25 sessions)", () => {
  let session: RawSession;

  beforeAll(async () => {
    session = await rawSession(gw.url);
  });

  it("replays what a cut stream missed and carries the rest of the call on the GET", async () => {
    const cut = new AbortController();
    const post = await fetch(gw.url, {
      method: "POST",
      headers: session.headers,
      body: progressCall(7, 5),
      signal: cut.signal,
    });
    expect(post.headers.get("content-type")).toContain("text/event-stream");
    // Cut the stream right after the first message (progress 1), which follows the priming event.
    const before = await readEvents(post, (events) => events.filter((e) => e.data).length === 1, cut);
    expect(before[0]).toMatchObject({ data: "" });
    const lastEventId = before.at(-1)?.id;
    expect(lastEventId).toBeTruthy();

    const resumed = await fetch(gw.url, {
      method: "GET",
      headers: { ...session.headers, accept: "text/event-stream", "last-event-id": String(lastEventId) },
    });
    expect(resumed.status).toBe(200);
    const after = await readEvents(resumed, (events) => events.some(isResult));

    const messages = [...before, ...after]
      .filter((e) => e.data)
      .map((e) => JSON.parse(e.data) as Record<string, unknown>);
    const progress = messages
      .filter((m) => m.method === "notifications/progress")
      .map((m) => (m.params as { progress: number }).progress);
    expect(progress).toEqual([1, 2, 3, 4, 5]);
    const results = messages.filter((m) => m.id === 7);
    expect(results).toHaveLength(1);
    expect(JSON.stringify(results[0])).toContain("done");
    // Event ids only grow: nothing was delivered twice or out of order.
    const seqs = [...before, ...after].map((e) => Number(String(e.id).split("_").at(-1)));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it("resumes a stream cut right after its priming event, before any message", async () => {
    const cut = new AbortController();
    const post = await fetch(gw.url, {
      method: "POST",
      headers: session.headers,
      body: progressCall(8, 2),
      signal: cut.signal,
    });
    // The client saw only the priming event (a chunk may carry more; the rest counts as lost).
    const [priming] = await readEvents(post, (events) => events.length >= 1, cut);
    expect(priming).toMatchObject({ data: "" });
    const resumed = await fetch(gw.url, {
      method: "GET",
      headers: { ...session.headers, accept: "text/event-stream", "last-event-id": String(priming?.id) },
    });
    const after = await readEvents(resumed, (events) => events.some(isResult));
    const progress = after
      .map((e) => JSON.parse(e.data) as Record<string, unknown>)
      .filter((m) => m.method === "notifications/progress");
    expect(progress).toHaveLength(2);
  });

  it("lets the SDK v1 client resume by itself: a call whose stream breaks still completes, progress intact", async () => {
    let cuts = 0;
    // Breaks the first tools/call response stream after its first chunk, as a flaky network would.
    const flaky: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const body = typeof init?.body === "string" ? init.body : "";
      if (init?.method !== "POST" || !body.includes('"tools/call"') || cuts > 0 || !response.body) {
        return response;
      }
      cuts++;
      const reader = response.body.getReader();
      let sent = false;
      const broken = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent) {
            await reader.cancel();
            controller.error(new TypeError("network connection lost"));
            return;
          }
          const { value, done } = await reader.read();
          if (done) return controller.close();
          sent = true;
          controller.enqueue(value);
        },
      });
      return new Response(broken, { status: response.status, headers: response.headers });
    };
    const client = new Client({ name: "resuming", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { fetch: flaky }));
    try {
      const progress: number[] = [];
      const result = await client.callTool(
        { name: "faults__progress", arguments: { steps: 4, intervalMs: 100 } },
        undefined,
        { onprogress: (p) => progress.push(p.progress) },
      );
      expect(cuts).toBe(1);
      expect(JSON.stringify(result)).toContain("done");
      expect(progress).toEqual([1, 2, 3, 4]);
    } finally {
      await client.close();
    }
  });

  it("refuses to resume another session's stream", async () => {
    const other = await rawSession(gw.url);
    const reply = await rawRequest(gw.url, {
      method: "GET",
      headers: { ...session.headers, accept: "text/event-stream", "last-event-id": `${other.id}_1_1` },
    });
    expect(reply.status).toBe(404);
  });

  it("answers a call that needs no stream with plain JSON, which needs no resumption", async () => {
    const reply = await rawRequest(gw.url, {
      method: "POST",
      headers: session.headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
    });
    expect(reply.headers.get("content-type")).toContain("application/json");
  });
});
