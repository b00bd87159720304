/**
 * Property: whatever bytes a server answers with (valid answers with bytes replaced, inserted or cut, or
 * noise), written in pieces and followed by the close of the connection, the upstream HTTP client
 * (src/upstreams/http1.ts) settles the exchange, with a response whose body ends or fails, or with an error,
 * and never throws out of its socket handlers. A later well-formed exchange on the same origin still works.
 */
import { once } from "node:events";
import net, { type AddressInfo } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Exchange, Http1Target, RequestHead, request } from "../../src/upstreams/http1.ts";

const TEMPLATES = [
  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: application/json\r\n\r\nhello",
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n",
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
  "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
  "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nevent: message\ndata: {}\n\n",
];

/** What the server writes next, in pieces; it closes the connection after them. */
let pieces: Uint8Array[] = [];
const server = net.createServer((socket) => {
  socket.on("error", () => {});
  let got = "";
  socket.on("data", (data: Buffer) => {
    got += data.toString("latin1");
    if (!got.includes("\r\n\r\n")) return;
    const mine = pieces;
    const next = (i: number) => {
      if (i === mine.length) return void socket.end();
      socket.write(mine[i] as Uint8Array);
      setImmediate(() => next(i + 1));
    };
    next(0);
  });
});
let url = "";

beforeAll(async () => {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => {
  server.close();
});

/** Resolves with how the exchange ended; never rejects. */
function exchange(): Promise<string> {
  return new Promise((resolve) => {
    const head = new RequestHead(new Http1Target(new URL(url)), "POST", {
      "content-type": "application/json",
    });
    request(
      head,
      "{}",
      (res: Exchange) => {
        let bytes = 0;
        res.read({
          data: (chunk) => {
            bytes += chunk.length;
          },
          end: (error) => resolve(error ? `body failed: ${error.message}` : `${res.status} ${bytes} bytes`),
        });
      },
      (error) => resolve(`failed: ${error.message}`),
    );
  });
}

const edits = fc.array(
  fc.record({
    at: fc.nat(),
    kind: fc.constantFrom("replace", "insert", "delete"),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
  { maxLength: 4 },
);

const answers = fc.oneof(
  fc.tuple(fc.constantFrom(...TEMPLATES), edits).map(([template, changes]) => {
    const bytes = [...Buffer.from(template, "latin1")];
    for (const { at, kind, byte } of changes) {
      const i = at % (bytes.length + 1);
      if (kind === "insert") bytes.splice(i, 0, byte);
      else if (kind === "delete") bytes.splice(i, 1);
      else if (i < bytes.length) bytes[i] = byte;
    }
    return Uint8Array.from(bytes);
  }),
  fc.uint8Array({ maxLength: 200 }),
);

it("settles every exchange whatever the server answers, and keeps serving", async () => {
  await fc.assert(
    fc.asyncProperty(answers, fc.array(fc.nat(), { maxLength: 3 }), async (answer, cuts) => {
      const at = [...new Set(cuts.map((c) => c % (answer.length + 1)))].sort((a, b) => a - b);
      pieces = [];
      let from = 0;
      for (const cut of [...at, answer.length]) {
        if (cut > from) pieces.push(answer.subarray(from, cut));
        from = cut;
      }
      const outcome = await exchange();
      // A response read to its end, or a clear error: malformed, or cut before it was complete.
      expect(outcome).toMatch(
        /^\d{3} \d+ bytes$|malformed HTTP response|closed the connection|ECONNRESET|EPIPE/,
      );
    }),
    { numRuns: 300 },
  );
  pieces = [Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")];
  expect(await exchange()).toBe("200 2 bytes");
});
