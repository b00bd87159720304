/**
 * The policy pipeline through the whole gateway: an SDK client → toolgate (in process, Streamable HTTP on
 * 127.0.0.1) → two fault-injecting fixture servers over HTTP. Each test drives one policy with real
 * requests and checks what the upstream saw (its stats) and what the client got. Calls that must overlap
 * hold upstream until the test releases them (the fixture's `hold`), so no verdict rests on a delay.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { PolicyEvent } from "../../src/policies/events.ts";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import {
  connectClient,
  eventually,
  type InProcessGateway,
  startGateway,
  textOf,
} from "../helpers/gateway.ts";

let faults: RunningFaultServer;
let alt: RunningFaultServer;
let gateway: InProcessGateway;
let client: Client;
const events: PolicyEvent[] = [];

beforeAll(async () => {
  faults = await startFaultServer({ transport: "http", name: "faults" });
  alt = await startFaultServer({ transport: "http", name: "alt" });
  gateway = await startGateway({
    mcpServers: {
      faults: { type: "http", url: faults.url },
      alt: { type: "http", url: alt.url },
    },
    // Breakers off except where a test turns one on, so failures of one test cannot open another's.
    defaults: { retry: { baseDelayMs: 10, maxDelayMs: 50 }, breaker: { enabled: false } },
    upstreams: {
      faults: {
        tools: {
          slow: { concurrency: { maxInFlight: 2, queueSize: 1 } },
          work: { lock: { key: "key" } },
          hang: { timeout: { attemptMs: 300 }, retry: { maxAttempts: 1 } },
          // Progress every 100 ms against 2 s: a scheduling delay cannot pass for a missing update.
          progress: { timeout: { attemptMs: 2_000, resetOnProgress: true } },
          fail: {
            breaker: { enabled: true, scope: "tool", volumeThreshold: 2, resetTimeoutMs: 60_000 },
            retry: { maxAttempts: 1 },
          },
        },
      },
      alt: {
        tools: {
          fail: {
            retry: { maxAttempts: 1 },
            fallback: { routes: [{ tool: "faults__echo", args: { text: "key" } }], on: ["upstreamError"] },
          },
        },
      },
    },
  });
  gateway.gateway.events.on((e) => void events.push(e));
  client = await connectClient("http", gateway);
  await eventually(async () => {
    const { tools } = await client.listTools();
    const names = new Set(tools.map((t) => t.name));
    return names.has("faults__slow") && names.has("alt__fail");
  });
});

afterAll(async () => {
  await client?.close();
  await gateway?.stop();
  await Promise.all([faults?.close(), alt?.close()]);
});

async function call(name: string, args: Record<string, unknown> = {}, signal?: AbortSignal) {
  return client.callTool({ name, arguments: args }, CallToolResultSchema, signal ? { signal } : {});
}

/** The gateway's error code carried by a JSON-RPC error (an upstream's own error passes through as one). */
async function rejectionCode(pending: Promise<unknown>): Promise<string | undefined> {
  const err = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  return (err as { data?: { toolgate?: { code?: string } } } | undefined)?.data?.toolgate?.code;
}

/** The gateway's error code carried by an isError result. */
function errorCode(result: unknown): string | undefined {
  return (result as { _meta?: { "toolgate/error"?: { code?: string } } })._meta?.["toolgate/error"]?.code;
}

describe("policies through the gateway", () => {
  it("runs at most maxInFlight calls upstream and answers overflow with QueueFull", async () => {
    // Calls a failed test leaves holding upstream end with it, not at the client's request timeout.
    onTestFinished(() => faults.release("bulkhead"));
    const held = Array.from({ length: 3 }, () => call("faults__slow", { ms: 0, hold: "bulkhead" }));
    // Two running upstream, one queued: the slots are full until the test releases the held calls.
    await eventually(() => {
      const slow = gateway.gateway.pipelines.bulkheadStates().find((b) => b.name.includes("faults__slow"));
      return slow?.inFlight === 2 && slow.queued === 1 && faults.stats().inFlight === 2;
    });
    expect(errorCode(await call("faults__slow", { ms: 0, hold: "bulkhead" }))).toBe("QueueFull");
    faults.release("bulkhead");
    const results = await Promise.all(held);
    expect(results.map((r) => errorCode(r) ?? "ok")).toEqual(["ok", "ok", "ok"]);
    expect(faults.stats().peakByTool.slow).toBe(2);
    expect(faults.stats().calls.slow).toBe(3);
  });

  it("never overlaps calls with the same lock key upstream, while different keys run in parallel", async () => {
    const keys = ["a", "b", "a", "b", "a", "b"];
    onTestFinished(() => faults.release("locks"));
    const pending = keys.map((key) => call("faults__work", { key, ms: 0, hold: "locks" }));
    // One call per key is upstream at once; the others wait for their key's lock, not for each other.
    await eventually(() => faults.stats().inFlight >= 2);
    faults.release("locks");
    const results = await Promise.all(pending);
    expect(results.every((r) => r.isError !== true)).toBe(true);
    expect(faults.stats().calls.work).toBe(6);
    expect(faults.stats().overlaps).toEqual({});
    expect(faults.stats().peakByTool.work).toBe(2);
    expect(gateway.gateway.pipelines.locks.size).toBe(0);
  });

  it("retries an idempotent tool after transient failures", async () => {
    const result = await call("faults__fail_idempotent", { times: 2, key: "retry" });
    expect(textOf(result)).toBe("ok after 2 failures");
    expect(faults.stats().calls.fail_idempotent).toBe(3);
  });

  it("does not retry a tool that is not idempotent once the request reached it", async () => {
    expect(await rejectionCode(call("faults__fail_unsafe", { times: 1, key: "once" }))).toBe("UpstreamError");
    expect(faults.stats().calls.fail_unsafe).toBe(1);
  });

  it("times an attempt out, cancels it upstream and names the limit", async () => {
    const before = faults.stats().cancelled.length;
    const result = await call("faults__hang");
    expect(errorCode(result)).toBe("UpstreamTimeout");
    expect(textOf(result)).toContain("attempt timeout 300 ms");
    await eventually(() => faults.stats().cancelled.length === before + 1);
  });

  it("keeps a call alive while progress keeps arriving", async () => {
    // 25 updates 100 ms apart: the call outlives the 2 s attempt timeout only because each one restarts it.
    const started = performance.now();
    const result = await call("faults__progress", { steps: 25, intervalMs: 100 });
    expect(result.isError).not.toBe(true);
    expect(textOf(result)).toBe("done");
    expect(performance.now() - started).toBeGreaterThan(2_000);
  });

  it("opens the breaker after the failure volume and then fails fast without calling upstream", async () => {
    for (let i = 0; i < 2; i++)
      expect(await rejectionCode(call("faults__fail", { times: 100 }))).toBe("UpstreamError");
    const result = await call("faults__fail", { times: 100 });
    expect(errorCode(result)).toBe("CircuitOpen");
    expect(textOf(result)).toMatch(/failing fast until \d{4}-\d\d-\d\dT/);
    expect(faults.stats().calls.fail).toBe(2);
    expect(gateway.gateway.pipelines.breakers.states()).toContainEqual(
      expect.objectContaining({ id: "tool:faults__fail", state: "open" }),
    );
  });

  it("serves from the fallback route with mapped arguments and tags the route", async () => {
    const result = await call("alt__fail", { times: 1, key: "from the fallback" });
    expect(result.isError).not.toBe(true);
    expect(textOf(result)).toBe("from the fallback");
    expect(result._meta).toMatchObject({
      "toolgate/route": "faults__echo",
      "toolgate/attempts": [{ tool: "alt__fail", code: "UpstreamError" }, { tool: "faults__echo" }],
    });
    expect(events).toContainEqual(
      expect.objectContaining({ type: "fallback", from: "alt__fail", to: "faults__echo" }),
    );
  });

  it("cancels upstream and frees the slots when the client cancels a running call", async () => {
    const before = faults.stats().cancelled.length;
    const controller = new AbortController();
    const pending = call("faults__hang", {}, controller.signal).catch((e: unknown) => e);
    await eventually(() => faults.stats().inFlight === 1, 30_000, 10);
    controller.abort();
    await pending;
    await eventually(() => faults.stats().cancelled.length === before + 1);
    await eventually(() => gateway.gateway.pipelines.bulkheadStates().every((b) => b.inFlight === 0));
  });
});
