import { describe, expect, it } from "vitest";
import { idAtEdges, type LineEdges, LineReader } from "../../../src/protocol/lines.ts";

function reader(maxLineBytes: number) {
  const lines: string[] = [];
  let tooLong = 0;
  const r = new LineReader(
    maxLineBytes,
    (line) => lines.push(line),
    () => tooLong++,
  );
  return {
    push: (s: string) => r.push(Buffer.from(s)),
    clear: () => r.clear(),
    lines,
    tooLong: () => tooLong,
  };
}

describe("LineReader", () => {
  it("hands over every complete line in order, joining lines split over chunks", () => {
    const r = reader(100);
    r.push("one\ntw");
    expect(r.lines).toEqual(["one"]);
    r.push("o\nthr");
    r.push("ee\n\nfour\n");
    expect(r.lines).toEqual(["one", "two", "three", "", "four"]);
  });

  it("decodes a character split between chunks", () => {
    const r = new LineReader(
      100,
      (line) => lines.push(line),
      () => {},
    );
    const lines: string[] = [];
    const bytes = Buffer.from("é\n");
    r.push(bytes.subarray(0, 1));
    r.push(bytes.subarray(1));
    expect(lines).toEqual(["é"]);
  });

  it("drops a line over the bound whole and once, whether it came in one chunk or several", () => {
    const r = reader(5);
    r.push("123456\nok\n");
    expect(r.lines).toEqual(["ok"]);
    expect(r.tooLong()).toBe(1);
    // Held and completed in the next chunk.
    r.push("1234");
    r.push("56\nok2\n");
    expect(r.lines).toEqual(["ok", "ok2"]);
    expect(r.tooLong()).toBe(2);
    // Outgrows the bound before its newline: the rest is skipped, and the line reported once it ends.
    r.push("1234567");
    r.push("89");
    expect(r.tooLong()).toBe(2);
    r.push("0\nok3\n");
    expect(r.lines).toEqual(["ok", "ok2", "ok3"]);
    expect(r.tooLong()).toBe(3);
  });

  it("reports the first and last 256 bytes of a dropped line, however it was chunked", () => {
    const edges: LineEdges[] = [];
    const r = new LineReader(
      1000,
      () => {},
      (e) => edges.push(e),
    );
    const line = `${"a".repeat(300)}${"m".repeat(2000)}${"z".repeat(300)}`;
    r.push(Buffer.from(`${line}\n`));
    for (let at = 0; at < line.length; at += 7) r.push(Buffer.from(line.slice(at, at + 7)));
    r.push(Buffer.from("\n"));
    expect(edges).toEqual([
      { head: "a".repeat(256), tail: "z".repeat(256) },
      { head: "a".repeat(256), tail: "z".repeat(256) },
    ]);
  });

  it("takes a line of exactly the bound", () => {
    const r = reader(5);
    r.push("123");
    r.push("45\n");
    expect(r.lines).toEqual(["12345"]);
    expect(r.tooLong()).toBe(0);
  });

  it("forgets a held line on clear", () => {
    const r = reader(100);
    r.push("half a li");
    r.clear();
    r.push("ne\nwhole\n");
    expect(r.lines).toEqual(["ne", "whole"]);
  });
});

describe("idAtEdges", () => {
  const pad = "x".repeat(300);
  it.each([
    [
      "first after jsonrpc",
      { head: `{"jsonrpc":"2.0","id":12,"result":{"t":"${pad}`, tail: `${pad}"}}` },
      12,
    ],
    ["first", { head: `{ "id" : "a\\"b", "result":{`, tail: "}}" }, 'a"b'],
    [
      "last (the SDK's order)",
      { head: `{"result":{"content":[{"id":3,"t":"${pad}`, tail: `${pad}"}]},"jsonrpc":"2.0","id":41}` },
      41,
    ],
    ["last, a string", { head: "{", tail: `,"id":"r-7" }\r` }, "r-7"],
  ])("finds the id %s", (_where, edges, id) => {
    expect(idAtEdges(edges)).toEqual(id);
  });

  it.each([
    ["an id of a nested object at the start", { head: `{"result":{"id":3,"t":"${pad}`, tail: `${pad}"}}` }],
    ["an id closing a nested object at the end", { head: "{", tail: `"x":{"id":5}}` }],
    ["an id inside a string", { head: "{", tail: `"text":"a,\\"id\\":5}"}` }],
    ["no id", { head: "{", tail: "}" }],
  ])("finds none in %s", (_what, edges) => {
    expect(idAtEdges(edges)).toBeUndefined();
  });
});
