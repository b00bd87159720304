import { describe, expect, it } from "vitest";
import { exceededLimit } from "../../../src/server/message-limits.ts";

const limits = { maxJsonDepth: 4, maxJsonValues: 10 };

function nest(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe("exceededLimit", () => {
  it("accepts a message at the depth limit, the envelope being level 1", () => {
    expect(exceededLimit({ params: { arguments: { a: 1 } } }, limits)).toBeUndefined();
    expect(exceededLimit(nest(4), limits)).toBeUndefined();
  });

  it("names gateway.maxJsonDepth one level deeper", () => {
    expect(exceededLimit({ params: { arguments: { a: { b: {} } } } }, limits)).toMatch(
      /deeper than 4 levels \(gateway\.maxJsonDepth\)/,
    );
  });

  it("walks 100,000 levels without recursion", () => {
    expect(exceededLimit(nest(100_000), { maxJsonDepth: 200_000, maxJsonValues: 1_000_000 })).toBeUndefined();
    expect(exceededLimit(nest(100_000), { maxJsonDepth: 64, maxJsonValues: 1_000_000 })).toMatch(/64 levels/);
  });

  it("names gateway.maxJsonValues past the value count", () => {
    // The object, the array and its items: 10 values.
    expect(exceededLimit({ list: Array(8).fill(0) }, limits)).toBeUndefined();
    expect(exceededLimit({ list: Array(9).fill(0) }, limits)).toMatch(
      /more than 10 values \(gateway\.maxJsonValues\)/,
    );
  });

  it("accepts primitives and null", () => {
    expect(exceededLimit(null, limits)).toBeUndefined();
    expect(exceededLimit("x", limits)).toBeUndefined();
  });
});
