/**
 * Overload: three times a tool's capacity (maxInFlight + queueSize) offered at once. Admitted calls complete,
 * the excess is refused at once with QueueFull, and every call is accounted for. The admitted calls hold
 * upstream until every refusal has arrived, however long the machine takes to send them all.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import {
  connectClient,
  eventually,
  type InProcessGateway,
  startGateway,
  textOf,
} from "../helpers/gateway.ts";

const MAX_IN_FLIGHT = 4;
const QUEUE_SIZE = 8;
const CAPACITY = MAX_IN_FLIGHT + QUEUE_SIZE;
const OFFERED = 3 * CAPACITY;
const HOLD = "overload";

let upstream: RunningFaultServer;
let gw: InProcessGateway;
let client: Client;

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  gw = await startGateway({
    mcpServers: { faults: { type: "http", url: upstream.url } },
    upstreams: {
      faults: {
        policies: { retry: { maxAttempts: 1 }, breaker: { enabled: false } },
        tools: {
          slow: {
            concurrency: { maxInFlight: MAX_IN_FLIGHT, queueSize: QUEUE_SIZE, queueTimeoutMs: 120_000 },
          },
        },
      },
    },
  });
  client = await connectClient("http", gw);
  await eventually(() => gw.gateway.catalog.tool("faults__slow"));
});

afterAll(async () => {
  upstream?.release(HOLD);
  await client?.close();
  await gw?.stop();
  await upstream?.close();
});

type Outcome = "ok" | "QueueFull" | "QueueTimeout" | "other";

it("completes the admitted calls, refuses the excess at once with QueueFull and loses none", async () => {
  const settled: Outcome[] = [];
  const calls = Array.from({ length: OFFERED }, async () => {
    const result = await client.callTool({ name: "faults__slow", arguments: { ms: 0, hold: HOLD } });
    const code = (result._meta?.["toolgate/error"] as { code?: string } | undefined)?.code;
    const outcome: Outcome =
      result.isError !== true && textOf(result) === "slept 0 ms"
        ? "ok"
        : code === "QueueFull" || code === "QueueTimeout"
          ? code
          : "other";
    settled.push(outcome);
    return { outcome, result };
  });
  // The refusals come back while the admitted calls are still held: the slots and the queue are full.
  await eventually(() => settled.length === OFFERED - CAPACITY);
  expect(gw.gateway.pipelines.bulkheadStates()).toContainEqual(
    expect.objectContaining({ inFlight: MAX_IN_FLIGHT, queued: QUEUE_SIZE }),
  );
  upstream.release(HOLD);
  const results = await Promise.all(calls);

  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  expect(count("other")).toBe(0);
  expect(count("ok")).toBe(CAPACITY);
  expect(count("QueueFull")).toBe(OFFERED - CAPACITY);
  expect(count("ok") + count("QueueFull") + count("QueueTimeout")).toBe(OFFERED);

  // Refusals are immediate: every one of them settled before the first admitted call finished.
  const firstOk = settled.indexOf("ok");
  expect(settled.slice(0, firstOk).every((o) => o === "QueueFull")).toBe(true);
  expect(settled.lastIndexOf("QueueFull")).toBeLessThan(firstOk);

  const refused = results.find((r) => r.outcome === "QueueFull")?.result;
  expect(textOf(refused)).toMatch(/faults__slow/);

  // The upstream saw exactly the admitted calls, never more than maxInFlight at once.
  expect(upstream.stats().calls.slow).toBe(CAPACITY);
  expect(upstream.stats().peakByTool.slow).toBe(MAX_IN_FLIGHT);
  for (const state of gw.gateway.pipelines.bulkheadStates()) {
    expect(state, state.name).toMatchObject({ inFlight: 0, queued: 0 });
  }
});
