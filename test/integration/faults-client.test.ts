/**
 * Client faults: a client that goes away mid-call gets its upstream call cancelled, and sessions that are
 * opened and abandoned by the thousand expire after gateway.sessionIdleMs without leaving memory behind.
 * Session idle time is measured with `performance.now()`, which the expiry test fakes: however long the
 * machine takes to open 2,000 sessions, none of them ages until the test moves the clock.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { connectClient, eventually, type InProcessGateway, startGateway } from "../helpers/gateway.ts";
import { BASE_HEADERS, initializeBody, rawPost, rawSession } from "../helpers/raw-mcp.ts";

let upstream: RunningFaultServer;
let gw: InProcessGateway;

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  gw = await startGateway({
    gateway: { sessionIdleMs: 60_000 },
    mcpServers: { faults: { type: "http", url: upstream.url } },
    upstreams: { faults: { policies: { retry: { maxAttempts: 1 } } } },
  });
  await eventually(() => gw.gateway.catalog.tool("faults__hang"));
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

/** Waits until one more `hang` call is running upstream, returns the cancellations seen so far. */
async function hangStarted(before: number): Promise<number> {
  await eventually(() => (upstream.stats().calls.hang ?? 0) > before && upstream.stats().inFlight > 0);
  return upstream.stats().cancelled.length;
}

function hangCall(id: number): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name: "faults__hang", arguments: {} },
  });
}

describe("a client that disconnects mid-call", () => {
  it("cancels the upstream call when an HTTP client aborts its request", async () => {
    const session = await rawSession(gw.url);
    const calls = upstream.stats().calls.hang ?? 0;
    const abort = new AbortController();
    const pending = fetch(gw.url, {
      method: "POST",
      headers: session.headers,
      body: hangCall(1),
      signal: abort.signal,
    }).then((r) => r.text());
    const cancelled = await hangStarted(calls);
    abort.abort();
    await expect(pending).rejects.toThrow();
    await eventually(() => upstream.stats().cancelled.length === cancelled + 1);
    expect(upstream.stats().inFlight).toBe(0);
  });

  it("cancels the upstream call when an HTTP client closes its transport", async () => {
    const client = await connectClient("http", gw);
    const calls = upstream.stats().calls.hang ?? 0;
    const pending = client.callTool({ name: "faults__hang", arguments: {} });
    const cancelled = await hangStarted(calls);
    await client.close();
    await expect(pending).rejects.toThrow();
    await eventually(() => upstream.stats().cancelled.length === cancelled + 1);
  });

  it("cancels the upstream call when a WebSocket client's socket is terminated", async () => {
    const socket = new WebSocket(gw.wsUrl, "mcp");
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    socket.send(initializeBody(1));
    socket.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
    const calls = upstream.stats().calls.hang ?? 0;
    socket.send(hangCall(2));
    const cancelled = await hangStarted(calls);
    socket.terminate();
    await eventually(() => upstream.stats().cancelled.length === cancelled + 1);
    await eventually(() => gw.gateway.pipelines.bulkheadStates().every((b) => b.inFlight === 0));
  });
});

describe("abandoned sessions", () => {
  // The shortest idle time: the sweeper then looks every second.
  const IDLE_MS = 1_000;
  let idle: InProcessGateway;

  beforeAll(async () => {
    idle = await startGateway({
      gateway: { sessionIdleMs: IDLE_MS },
      mcpServers: { faults: { type: "http", url: upstream.url } },
    });
  });

  afterAll(async () => {
    await idle?.stop();
  });

  it("expires 2,000 abandoned sessions after the idle time, and the heap returns near its baseline", async () => {
    const gc = exposeGc();
    gc();
    const baseline = process.memoryUsage().heapUsed;

    // Only the session clock is fake: sockets, the sweeper's interval and `eventually` run in real time.
    vi.useFakeTimers({ toFake: ["performance"] });
    try {
      const total = 2_000;
      const batch = 100;
      let opened = 0;
      for (let i = 0; i < total; i += batch) {
        const replies = await Promise.all(
          Array.from({ length: batch }, (_, j) => rawPost(idle.url, initializeBody(i + j), BASE_HEADERS)),
        );
        opened += replies.filter((r) => r.status === 200 && r.headers.get("mcp-session-id")).length;
      }
      expect(opened).toBe(total);
      // No time has passed for the sessions: every one is still open, however long opening them took.
      expect(idle.gateway.sessionCount).toBe(total);
      gc();
      const peak = process.memoryUsage().heapUsed;

      vi.advanceTimersByTime(IDLE_MS + 1);
      // The sweeper runs on its own (real) interval and finds every session idle.
      await eventually(() => idle.gateway.sessionCount === 0, 30_000, 100);
      // Expired sessions are closed asynchronously; give their closes a turn before measuring.
      await new Promise((resolve) => setTimeout(resolve, 200));
      gc();
      const after = process.memoryUsage().heapUsed;
      const grown = peak - baseline;
      expect(grown).toBeGreaterThan(0);
      // What the sessions held is mostly given back (a leak would keep it all).
      expect(after - baseline).toBeLessThan(grown / 2);
    } finally {
      vi.useRealTimers();
    }
  });
});

/** `gc()` without starting the process with --expose-gc. */
function exposeGc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}
