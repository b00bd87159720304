/**
 * Broken answers from an upstream (a body that is not JSON-RPC, an answer to another request, a result no
 * client would accept, a reset socket): each fails its own call with an `isError` naming the upstream and
 * what was wrong, at once rather than at the timeout, and the upstream stays connected (over HTTP one
 * handshake; over stdio, WebSocket and legacy SSE no reconnect), and the next call is served.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { CallToolResultSchema, CreateTaskResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MalformedUpstream, startMalformedUpstream } from "../fixtures/malformed-answers.ts";
import {
  connectClient,
  eventually,
  type InProcessGateway,
  NODE,
  ROOT,
  startGateway,
  textOf,
} from "../helpers/gateway.ts";
import { harness } from "../unit/telemetry/harness.ts";

/**
 * No breaker, so each answer shows as itself (half the calls here fail); a timeout far above any answer, so
 * a call that waits for it fails the test.
 */
const plain = { policies: { breaker: { enabled: false }, timeout: { attemptMs: 120_000 } } };

const h = harness();
let upstream: MalformedUpstream;
let gw: InProcessGateway;
let client: Client;

beforeAll(async () => {
  upstream = await startMalformedUpstream();
  gw = await startGateway(
    {
      mcpServers: {
        m: { url: upstream.url },
        s: { command: NODE, args: [`${ROOT}test/fixtures/malformed-answers.ts`] },
        w: { url: upstream.wsUrl, headers: { authorization: "Bearer for-w" } },
        e: { type: "sse", url: upstream.sseUrl },
      },
      upstreams: { m: plain, s: plain, w: plain, e: plain },
    },
    { telemetry: h.telemetry },
  );
  client = await connectClient("http", gw);
  await eventually(async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    return ["m__ok", "s__ok", "w__ok", "e__ok"].every((name) => names.includes(name));
  });
});

afterAll(async () => {
  await client?.close();
  await gw?.stop();
  await upstream?.close();
});

function toolError(result: unknown): { code: string; upstream?: string; message: string } {
  const meta = (result as { _meta?: Record<string, unknown> })._meta ?? {};
  return meta["toolgate/error"] as { code: string; upstream?: string; message: string };
}

/** Calls `tool` on `prefix`, expects the failure, then a served call on the same upstream. */
async function failsAlone(prefix: string, tool: string, code: string, says: string): Promise<void> {
  const result = await client.callTool({ name: `${prefix}__${tool}`, arguments: {} });
  expect(result.isError).toBe(true);
  const error = toolError(result);
  expect(error).toMatchObject({ code, upstream: prefix });
  expect(error.message).toContain(says);
  const next = await client.callTool({ name: `${prefix}__ok`, arguments: {} });
  expect(next.isError).toBeFalsy();
  expect(textOf(next)).toBe("ok");
}

const NOT_A_RESPONSE = "the upstream's answer is not a JSON-RPC response:";
const MALFORMED_RESULT = "answered tools/call with a malformed result:";

describe("broken answers from a Streamable HTTP upstream", () => {
  it.each([
    ["notJson", "UpstreamError", "the answer is not JSON: {not json"],
    ["emptyJson", "UpstreamError", "the JSON answer is empty"],
    ["resultNotObject", "UpstreamError", 'the answer is not a JSON-RPC message: {"jsonrpc":"2.0","id":'],
    ["errorNotObject", "UpstreamError", '"error":"bad"}'],
    ["otherId", "UpstreamError", "the JSON answer holds no response to request"],
    ["parseError", "UpstreamError", "(it answered null with error -32700: Parse error)"],
    ["contentNull", "UpstreamError", `${MALFORMED_RESULT} content is null, not an array`],
    ["textNotString", "UpstreamError", `${MALFORMED_RESULT} content[0] (text) has text 7, not a string`],
    ["eventNotJson", "ConnectionLost", 'it sent an event that is not a JSON-RPC message: "{bad"'],
    ["eventResultNotObject", "UpstreamError", `${NOT_A_RESPONSE} {"jsonrpc":"2.0","id":`],
    ["eventOtherId", "ConnectionLost", "the upstream ended its response stream without answering"],
    ["reset", "ConnectionLost", "ECONNRESET"],
    ["huge", "UpstreamError", "the answer's body is larger than 67108864 bytes; toolgate read no more of it"],
  ])("%s fails that call alone with %s", async (tool, code, says) => {
    const handshakes = upstream.handshakes;
    await failsAlone("m", tool, code, says);
    expect(upstream.handshakes).toBe(handshakes);
  });
});

describe("the attempt's CLIENT span", () => {
  it("records a malformed result as the attempt's failure, with its error type", async () => {
    h.spans.reset();
    await client.callTool({ name: "m__contentNull", arguments: {} });
    const span = h.spans
      .getFinishedSpans()
      .find((s) => s.name === "tools/call contentNull" && s.kind === SpanKind.CLIENT);
    expect(span?.status).toMatchObject({ code: SpanStatusCode.ERROR });
    expect(span?.status.message).toContain(`${MALFORMED_RESULT} content is null, not an array`);
  });
});

/** How often the gateway reconnected `name`: a broken answer must not cost a connection. */
function restarts(name: string): number | undefined {
  return gw.gateway.registry.statuses().find((status) => status.name === name)?.restarts;
}

describe.each([
  ["stdio", "s"],
  ["WebSocket", "w"],
  ["legacy SSE", "e"],
])("broken answers from a %s upstream", (_transport, prefix) => {
  it.each([
    ["resultNotObject", `${NOT_A_RESPONSE} {"jsonrpc":"2.0","id":`],
    ["errorNotObject", `${NOT_A_RESPONSE} {"jsonrpc":"2.0","id":`],
    ["contentNull", `${MALFORMED_RESULT} content is null, not an array`],
    ["textNotString", `${MALFORMED_RESULT} content[0] (text) has text 7, not a string`],
  ])("%s fails that call alone, at once, on the same connection", async (tool, says) => {
    const before = restarts(prefix);
    expect(before).toBeTypeOf("number");
    await failsAlone(prefix, tool, "UpstreamError", says);
    expect(restarts(prefix)).toBe(before);
  });
});

describe("a WebSocket upstream", () => {
  it("sent the configured headers on the upgrade request", () => {
    expect(upstream.upgrades[0]).toMatchObject({
      authorization: "Bearer for-w",
      "sec-websocket-protocol": "mcp",
    });
  });
});

describe("an event without end from a legacy SSE upstream", () => {
  it("fails the calls on that stream naming the bound, and the upstream reconnects", async () => {
    const streams = upstream.sseStreams;
    const reconnects = restarts("e") as number;
    const result = await client.callTool({ name: "e__huge", arguments: {} });
    expect(result.isError).toBe(true);
    expect(toolError(result)).toMatchObject({ code: "ConnectionLost", upstream: "e" });
    expect(toolError(result).message).toContain(
      "the upstream sent an event larger than 67108864 bytes; toolgate read no more of it",
    );
    await eventually(async () => {
      const next = await client.callTool({ name: "e__ok", arguments: {} });
      return !next.isError && textOf(next) === "ok";
    });
    expect(upstream.sseStreams).toBe(streams + 1);
    expect(restarts("e")).toBe(reconnects + 1);
  });
});

describe("forwarded results a client would refuse", () => {
  it("fails resources/read and prompts/get with an error naming the upstream and the field", async () => {
    const read = await client.readResource({ uri: "m://good" });
    expect(read.contents).toEqual([{ uri: "m://good", text: "fine" }]);
    await expect(client.readResource({ uri: "m://contentsNull" })).rejects.toThrow(
      'upstream "m" answered resources/read with a malformed result: contents is null, not an array',
    );
    const prompt = await client.getPrompt({ name: "m__good" });
    expect(prompt.messages).toHaveLength(1);
    await expect(client.getPrompt({ name: "m__badRole" })).rejects.toThrow(
      'answered prompts/get with a malformed result: messages[0] has role "system", not "user" or "assistant"',
    );
  });
});

describe("an upstream task's result a client would refuse", () => {
  it.each([
    [
      "taskContentNull",
      'upstream "m" answered tasks/result with a malformed result: content is null, not an array',
    ],
    [
      "taskStructuredMismatch",
      'upstream "m" answered tasks/result with a result that does not match the outputSchema of tool "m__taskStructuredMismatch": its structuredContent at /n: must be number',
    ],
  ])(
    "fails the tasks/result of %s with an error naming the upstream and what is wrong",
    async (tool, says) => {
      const created = await client.request(
        { method: "tools/call", params: { name: `m__${tool}`, arguments: {}, task: {} } },
        CreateTaskResultSchema,
      );
      await expect(
        client.request(
          { method: "tasks/result", params: { taskId: created.task.taskId } },
          CallToolResultSchema,
        ),
      ).rejects.toThrow(says);
    },
  );
});

describe("structured results that do not match the tool's outputSchema", () => {
  it("serves a conforming one, and an isError result without structuredContent", async () => {
    const ok = await client.callTool({ name: "m__structuredOk", arguments: {} });
    expect(ok.structuredContent).toEqual({ n: 1 });
    const failed = await client.callTool({ name: "m__structuredError", arguments: {} });
    expect(failed.isError).toBe(true);
    expect(textOf(failed)).toBe("failed");
  });

  it.each([
    ["structuredMismatch", "at /n: must be number"],
    ["structuredMissing", "has no structuredContent"],
  ])("fails %s with an isError naming the upstream and the schema's complaint", async (tool, says) => {
    const result = await client.callTool({ name: `m__${tool}`, arguments: {} });
    expect(result.isError).toBe(true);
    const error = toolError(result);
    expect(error).toMatchObject({ code: "UpstreamError", upstream: "m" });
    expect(error.message).toContain("does not match the outputSchema of tool");
    expect(error.message).toContain(says);
  });
});
