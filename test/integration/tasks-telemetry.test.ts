/**
 * A task the gateway runs does its work after the request that created it has been answered; its spans
 * must still belong to that request's trace (children of its SERVER span), so a trace shows the whole task.
 */
import { CreateTaskResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { SpanKind } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { connectClient, eventually, type InProcessGateway, startGateway } from "../helpers/gateway.ts";
import { type Harness, harness } from "../unit/telemetry/harness.ts";

let upstream: RunningFaultServer;
let gw: InProcessGateway;
let h: Harness;

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  h = harness();
  gw = await startGateway(
    {
      mcpServers: { faults: { type: "http", url: upstream.url } },
      upstreams: { faults: { policies: { task: "always" } } },
    },
    { telemetry: h.telemetry },
  );
  await gw.gateway.waitForUpstreams(10_000);
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

it("traces a task's background work under the request that created it", async () => {
  const client = await connectClient("http", gw);
  try {
    const { task } = await client.request(
      { method: "tools/call", params: { name: "faults__slow", arguments: { ms: 50 }, task: {} } },
      CreateTaskResultSchema,
    );
    await client.experimental.tasks.getTaskResult(task.taskId, CreateTaskResultSchema.partial());
  } finally {
    await client.close();
  }
  const finished = () => h.spans.getFinishedSpans();
  const upstreamCall = await eventually(() =>
    finished().find((s) => s.kind === SpanKind.CLIENT && s.name === "tools/call slow"),
  );
  const byId = new Map(finished().map((s) => [s.spanContext().spanId, s]));
  // Walk up from the upstream call to its root.
  let span: ReadableSpan | undefined = upstreamCall;
  const chain: string[] = [];
  while (span) {
    chain.push(span.name);
    const parent = span.parentSpanContext?.spanId;
    span = parent ? byId.get(parent) : undefined;
  }
  expect(chain.at(-1)).toBe("tools/call faults__slow");
  const root = finished().find((s) => s.name === "tools/call faults__slow" && s.kind === SpanKind.SERVER);
  expect(root?.spanContext().traceId).toBe(upstreamCall?.spanContext().traceId);
});
