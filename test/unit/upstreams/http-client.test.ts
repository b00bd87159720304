/**
 * The lean upstream `fetch` (src/upstreams/http-client.ts) on cut, partial and resumable SSE streams, against
 * a raw node:http server on 127.0.0.1 that writes exactly the bytes each case needs.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventLength, StreamWatch, upstreamFetch } from "../../../src/upstreams/http-client.ts";
import { MAX_ANSWER_BYTES } from "../../../src/upstreams/message-shape.ts";

type Script = (res: ServerResponse) => void;
const scripts = new Map<string, Script>();
let base = "";
const server = createServer((req, res) => {
  req.resume();
  req.once("end", () => scripts.get(req.url ?? "")?.(res));
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const CALL = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "x" } });
const answer = `data: ${JSON.stringify({ jsonrpc: "2.0", id: 7, result: { content: [] } })}`;
const progress = `event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 1 } })}`;

async function post(path: string, script: Script): Promise<Response> {
  scripts.set(path, script);
  return upstreamFetch(`${base}${path}`, {
    method: "POST",
    body: CALL,
    headers: { "content-type": "application/json" },
  });
}

const sse = (res: ServerResponse) => res.writeHead(200, { "content-type": "text/event-stream" });

describe("upstreamFetch", () => {
  it("hands a lone answer split across chunks (even inside the CRLF pair) to the SDK as JSON", async () => {
    const response = await post("/partial", (res) => {
      sse(res);
      const text = `event: message\r\n${answer}\r\n\r\n`;
      const cut = text.length - 3;
      res.write(text.slice(0, 10));
      setImmediate(() => {
        res.write(text.slice(10, cut));
        setImmediate(() => res.end(text.slice(cut)));
      });
    });
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toMatchObject({ id: 7, result: { content: [] } });
  });

  it("answers each request of a stream cut without event ids with a connection error", async () => {
    const response = await post("/cut", (res) => {
      sse(res);
      res.end(`${progress}\n\n`);
    });
    const body = await response.text();
    expect(body).toContain("notifications/progress");
    expect(body).toContain('"id":7');
    expect(body).toContain("the upstream ended its response stream without answering");
  });

  it("passes a half event of a cut stream through and still answers the request", async () => {
    const response = await post("/half", (res) => {
      sse(res);
      res.end('event: message\ndata: {"jsonrpc":');
    });
    expect(await response.text()).toContain("without answering");
  });

  it("leaves a resumable stream (its events carry ids) for the SDK to resume", async () => {
    const response = await post("/resumable", (res) => {
      sse(res);
      res.write("id: ev-1\nretry: 100\ndata: \n\n");
      setImmediate(() => res.end());
    });
    const body = await response.text();
    expect(body).toContain("id: ev-1");
    expect(body).not.toContain("without answering");
  });
});

describe("upstreamFetch: a body over 64 MiB", () => {
  it.each([
    ["a JSON answer", "application/json"],
    ["an event stream without one whole event", "text/event-stream"],
  ])("fails %s once past the bound, naming it, with the bytes read so far dropped", async (_what, type) => {
    const failure = await post(`/big-${type}`, (res) => {
      res.writeHead(200, { "content-type": type });
      res.socket?.on("error", () => {});
      const piece = Buffer.alloc(1024 * 1024, 120);
      let sent = 0;
      const pump = () => {
        while (sent < 80 && !res.destroyed && res.write(piece)) sent++;
        if (sent < 80 && !res.destroyed) res.once("drain", pump);
        else res.end();
      };
      pump();
    }).then(
      async (response) => response.text(),
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(TypeError);
    expect((failure as Error).message).toBe("fetch failed");
    expect(((failure as Error).cause as Error).message).toBe(
      "the answer's body is larger than 67108864 bytes; toolgate read no more of it",
    );
  });
});

describe("EventLength", () => {
  /** True when the event being read after `before` then `chunk` is at the bound, false one byte past it. */
  const fits = (before: string, chunk: string, pad: number): boolean => {
    const length = new EventLength();
    length.add(Buffer.from(before));
    return length.add(Buffer.concat([Buffer.from(chunk), Buffer.alloc(pad, 120)]));
  };

  // After CRLF CRLF the last LF is counted as the next event's first byte (one byte early, never late).
  it.each([
    ["LF LF", "", "data: a\n\n", 0],
    ["CRLF CRLF", "", "data: a\r\n\r\n", 1],
    ["CR CR", "", "data: a\r\r", 0],
    ["LF | LF, split between chunks", "data: a\n", "\n", 0],
    ["CR | CR, split between chunks", "data: a\r", "\r", 0],
    ["CRLF | CRLF, split between chunks", "data: a\r\n", "\r\n", 1],
  ])("counts from the last blank line (%s)", (_case, before, end, early) => {
    expect(fits(before, end, MAX_ANSWER_BYTES - early)).toBe(true);
    expect(fits(before, end, MAX_ANSWER_BYTES - early + 1)).toBe(false);
  });

  it("adds up an event's chunks until its end", () => {
    const length = new EventLength();
    expect(length.add(Buffer.alloc(MAX_ANSWER_BYTES - 10, 120))).toBe(true);
    expect(length.add(Buffer.from("data: 1234"))).toBe(true);
    expect(length.add(Buffer.from("5"))).toBe(false);
    expect(length.add(Buffer.from("\n\ndata: x"))).toBe(true);
  });
});

describe("StreamWatch", () => {
  it("reports the first complete event once, tracks answers and the last event id", () => {
    const watch = new StreamWatch(CALL);
    expect(watch.feed(Buffer.from("id: a\nda"))).toBeUndefined();
    expect(watch.feed(Buffer.from("ta: \n\n"))).toMatchObject({ id: "a", data: "" });
    expect(watch.unansweredEvents()).toContain('"id":7');
    expect(watch.feed(Buffer.from(`id: b\n${answer}\n\n`))).toBeUndefined();
    expect(watch.lastEventId).toBe("b");
    expect(watch.unansweredEvents()).toBe("");
  });

  it("decodes a multi-byte character split between chunks", () => {
    const watch = new StreamWatch(undefined);
    const bytes = Buffer.from('data: {"t":"é"}\n\n');
    const split = bytes.indexOf(0xc3) + 1;
    watch.feed(bytes.subarray(0, split));
    expect(watch.feed(bytes.subarray(split))?.data).toBe('{"t":"é"}');
  });
});
