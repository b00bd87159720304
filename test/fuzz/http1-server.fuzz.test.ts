/**
 * Property: whatever bytes a client sends to the gateway's listener (src/server/http1-server.ts) on one
 * connection (requests the front serves itself, requests it hands over to node:http, with bytes replaced,
 * inserted or cut, or noise), written in random pieces, nothing throws, and the client gets back well-framed
 * responses: answers to the requests handlers got, in order and without gaps, every request the front served
 * among them, and errors (node's 400, 417, 431, a 408) for the rest. node:http itself
 * may leave requests it handled unanswered (pipelined behind one that closes the connection, or before a parse
 * error that destroys it): only answers of its own may be missing.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Http1Front } from "../../src/server/http1-server.ts";
import { parseResponses, post, RawClient } from "../helpers/raw-http.ts";

const TEMPLATES = [
  post('{"jsonrpc":"2.0","id":1,"method":"tools/list"}'),
  post('{"jsonrpc":"2.0","id":2,"method":"ping"}', "/mcp?a=1", "Connection: keep-alive\r\n"),
  "GET /mcp HTTP/1.1\r\nHost: a\r\nAccept: text/event-stream\r\n\r\n",
  "POST /mcp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
  post("{}", "/healthz"),
  "POST /mcp HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
  "DELETE /mcp HTTP/1.1\r\nHost: a\r\nMcp-Session-Id: x\r\n\r\n",
];

/** Who handled each request of a connection (by the client's port), in order. */
const handled = new Map<number, Array<"front" | "node">>();

/** The answer's number on its connection (1, 2, …). */
function answer(port: number | undefined, by: "front" | "node"): string {
  let list = handled.get(port ?? 0);
  if (!list) {
    list = [];
    handled.set(port ?? 0, list);
  }
  list.push(by);
  return String(list.length);
}

// Short limits, so that a connection left waiting for bytes that never come ends soon.
const fallback = createServer(
  { keepAliveTimeout: 100, headersTimeout: 200, requestTimeout: 400, connectionsCheckingInterval: 50 },
  (req, res) => {
    req.resume();
    res.writeHead(200, { "x-answer": answer(req.socket.remotePort, "node"), "content-length": 2 }).end("ok");
  },
);
const front = new Http1Front({
  fallback,
  path: "/mcp",
  maxBodyBytes: 64,
  handle: (req, res) => {
    res.writeHead(200, { "x-answer": answer(req.socket.remotePort, "front"), "content-length": 2 }).end("ok");
  },
});
let port = 0;

beforeAll(async () => {
  front.server.listen(0, "127.0.0.1");
  await once(front.server, "listening");
  port = (front.server.address() as AddressInfo).port;
});
afterAll(() => front.close());

const edits = fc.array(
  fc.record({
    at: fc.nat(),
    kind: fc.constantFrom("replace", "insert", "delete"),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
  { maxLength: 3 },
);

const request = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...TEMPLATES).map((t) => Buffer.from(t, "latin1")) },
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom(...TEMPLATES), edits).map(([template, changes]) => {
      const bytes = [...Buffer.from(template, "latin1")];
      for (const { at, kind, byte } of changes) {
        const i = at % (bytes.length + 1);
        if (kind === "insert") bytes.splice(i, 0, byte);
        else if (kind === "delete") bytes.splice(i, 1);
        else if (i < bytes.length) bytes[i] = byte;
      }
      return Buffer.from(bytes);
    }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b)) },
);

/** The stream: some requests, then one that asks to close (so that most runs end without waiting). */
const streams = fc.tuple(
  fc.array(request, { minLength: 1, maxLength: 4 }),
  fc.array(fc.nat(), { maxLength: 6 }),
);
const LAST = Buffer.from("GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");

it("answers every handled request once, in order, and frames every response, whatever the client sends", async () => {
  await fc.assert(
    fc.asyncProperty(streams, async ([requests, cuts]) => {
      const bytes = Buffer.concat([...requests, LAST]);
      const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const client = await RawClient.connect(port);
      const local = client.socket.localPort as number;
      handled.delete(local); // a port of an earlier run, reused
      let from = 0;
      for (const cut of [...at, bytes.length]) {
        if (cut > from) client.write(bytes.subarray(from, cut));
        from = cut;
        await new Promise(setImmediate);
      }
      await client.whenClosed();
      const { responses, rest } = parseResponses(client.received, true);
      expect(rest).toBe("");
      const final = responses.filter((r) => r.status >= 200);
      const answers = final.filter((r) => r.headers["x-answer"] !== undefined);
      const by = handled.get(local) ?? [];
      // Answers in order, without gaps, to requests that were handled.
      expect(answers.map((r) => r.headers["x-answer"])).toEqual(
        Array.from({ length: answers.length }, (_, i) => String(i + 1)),
      );
      expect(answers.length).toBeLessThanOrEqual(by.length);
      // Every request the front served was answered (node's own may be dropped by node, see above).
      expect(by.lastIndexOf("front")).toBeLessThan(answers.length);
      // Every other response is an error: node's (400, 417, 431, …) or a 408.
      for (const other of final)
        if (!answers.includes(other)) expect(other.status).toBeGreaterThanOrEqual(400);
    }),
    { numRuns: 300 },
  );
});
