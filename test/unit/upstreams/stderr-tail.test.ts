import { describe, expect, it } from "vitest";
import { STDERR_TAIL_CHARS, STDERR_TAIL_LINES, StderrTail } from "../../../src/upstreams/stderr-tail.ts";

describe("StderrTail", () => {
  it("keeps the last lines, so the useful line before a runtime's footer survives", () => {
    const tail = new StderrTail();
    for (let i = 0; i < 30; i++) tail.push(`    at frame ${i}`);
    tail.push("Error: Cannot find module '/srv/missing.js'");
    tail.push("Node.js v24.21.0");
    const lines = tail.lines();
    expect(lines).toHaveLength(STDERR_TAIL_LINES);
    expect(lines.slice(-2)).toEqual(["Error: Cannot find module '/srv/missing.js'", "Node.js v24.21.0"]);
  });

  it("stays within its byte bound, cutting one huge line to its end", () => {
    const tail = new StderrTail();
    for (let i = 0; i < 10; i++) tail.push("x".repeat(1000));
    expect(tail.lines().join("").length).toBeLessThanOrEqual(STDERR_TAIL_CHARS);
    tail.push(`${"y".repeat(10_000)}END`);
    const [only] = tail.lines();
    expect(tail.lines()).toHaveLength(1);
    expect(only?.endsWith("END")).toBe(true);
    expect(only?.length).toBeLessThanOrEqual(STDERR_TAIL_CHARS + 1);
    tail.clear();
    expect(tail.lines()).toEqual([]);
  });
});
