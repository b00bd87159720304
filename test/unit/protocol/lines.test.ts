import { describe, expect, it } from "vitest";
import { LineReader } from "../../../src/protocol/lines.ts";

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
    // Outgrows the bound before its newline: reported at once, the rest skipped up to the newline.
    r.push("1234567");
    expect(r.tooLong()).toBe(3);
    r.push("89");
    r.push("0\nok3\n");
    expect(r.lines).toEqual(["ok", "ok2", "ok3"]);
    expect(r.tooLong()).toBe(3);
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
