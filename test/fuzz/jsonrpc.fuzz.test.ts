/**
 * Property: whatever JSON-RPC-ish body an initialized session POSTs to /mcp, the gateway (a real child
 * process) answers within a bound, with an allowed HTTP status and well-formed JSON-RPC, and stays alive.
 */
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually, FAULT_SERVER, type GatewayProcess, NODE, spawnGateway } from "../helpers/gateway.ts";
import { type RawSession, rawPost, rawSession } from "../helpers/raw-mcp.ts";

const ALLOWED_STATUS = new Set([200, 202, 400, 404, 406, 413, 415]);
const REPLY_BOUND_MS = 5_000;

let gateway: GatewayProcess;
let session: RawSession;

beforeAll(async () => {
  gateway = await spawnGateway({
    gateway: { maxBodyBytes: 64 * 1024 },
    mcpServers: { faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] } },
  });
  session = await rawSession(gateway.url);
  // The gateway listens before its upstream is ready; the final check below needs faults__echo served.
  await eventually(async () => {
    const list = JSON.stringify({ jsonrpc: "2.0", id: "list", method: "tools/list" });
    const reply = await rawPost(gateway.url, list, session.headers);
    return JSON.stringify(reply.messages).includes('"faults__echo"') || undefined;
  });
});

afterAll(async () => {
  await gateway?.stop();
});

const id = fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constant(null));
/** Tools that answer promptly whatever their arguments (no hang, crash or sampling). */
const tool = fc.constantFrom(
  "faults__echo",
  "faults__stats",
  "faults__structured",
  "faults__log",
  "nope__x",
  "",
);
const method = fc.oneof(
  fc.constantFrom(
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "completion/complete",
    "logging/setLevel",
    "initialize",
    "sampling/createMessage",
    "notifications/cancelled",
    "notifications/progress",
  ),
  fc.string({ maxLength: 20 }),
);
const params = fc.oneof(
  fc.record({
    name: tool,
    arguments: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 })),
  }),
  fc.record({ cursor: fc.oneof(fc.string({ maxLength: 12 }), fc.integer()) }),
  fc.record({ level: fc.oneof(fc.constantFrom("debug", "info", "error"), fc.string({ maxLength: 6 })) }),
  fc.record({ uri: fc.oneof(fc.constant("fixture://static"), fc.webUrl()) }),
  fc.jsonValue({ maxDepth: 2 }),
);
const request = fc.record(
  { jsonrpc: fc.constantFrom("2.0", "2.0", "2.0", "1.0"), id, method, params },
  { requiredKeys: ["jsonrpc", "method"] },
);
const response = fc.record(
  { jsonrpc: fc.constant("2.0"), id, result: fc.jsonValue({ maxDepth: 1 }) },
  { requiredKeys: ["jsonrpc", "id"] },
);
const message = fc.oneof({ weight: 6, arbitrary: request }, response, fc.jsonValue({ maxDepth: 3 }));
const body = fc.oneof(
  { weight: 8, arbitrary: message.map((m) => JSON.stringify(m)) },
  fc.array(message, { maxLength: 3 }).map((m) => JSON.stringify(m)),
  fc.string({ maxLength: 40 }),
);

function assertWellFormed(status: number, messages: unknown[]): void {
  expect(ALLOWED_STATUS.has(status), `HTTP ${status}`).toBe(true);
  if (status === 202) {
    expect(messages).toEqual([]);
    return;
  }
  expect(messages.length).toBeGreaterThan(0);
  for (const m of messages) {
    const reply = m as { jsonrpc?: unknown; result?: unknown; error?: { code?: unknown } };
    expect(reply.jsonrpc).toBe("2.0");
    if (reply.error === undefined) expect(reply.result).toBeDefined();
    else expect(typeof reply.error.code).toBe("number");
  }
}

it("answers every generated message promptly and well-formed, and stays alive", async () => {
  await fc.assert(
    fc.asyncProperty(body, async (payload) => {
      const reply = await rawPost(gateway.url, payload, session.headers, REPLY_BOUND_MS);
      assertWellFormed(reply.status, reply.messages);
    }),
    { numRuns: 200 },
  );
  expect(gateway.child.exitCode).toBeNull();
  const echo = await rawPost(
    gateway.url,
    JSON.stringify({
      jsonrpc: "2.0",
      id: "last",
      method: "tools/call",
      params: { name: "faults__echo", arguments: { text: "alive" } },
    }),
    session.headers,
  );
  expect(echo.messages[0]).toMatchObject({ id: "last", result: { content: [{ text: "alive" }] } });
});
