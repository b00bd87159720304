import { describe, expect, it } from "vitest";
import { declaredVersion, eraOf } from "../../../src/protocol/era.ts";

const modernMeta = { _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } };

describe("eraOf: which face serves a session-less HTTP request", () => {
  it.each([
    ["a legacy initialize", "initialize", { protocolVersion: "2025-11-25" }, undefined, "legacy"],
    ["an initialize sent with the modern header", "initialize", {}, "2026-07-28", "modern"],
    ["an initialize carrying the modern envelope", "initialize", modernMeta, undefined, "modern"],
    ["a legacy version header without an envelope", "tools/list", {}, "2025-06-18", "legacy"],
    [
      "an envelope, even under a legacy header (a mismatch to report)",
      "tools/list",
      modernMeta,
      "2025-11-25",
      "modern",
    ],
    ["no header and no envelope (a modern error to report)", "tools/list", {}, undefined, "modern"],
    ["an unknown version header", "tools/list", {}, "1999-01-01", "modern"],
  ] as const)("%s → %s", (_what, method, params, header, era) => {
    expect(eraOf(method, params, header)).toBe(era);
  });

  it("reads the declared version only when it is a string", () => {
    expect(declaredVersion(modernMeta)).toBe("2026-07-28");
    expect(declaredVersion({ _meta: { "io.modelcontextprotocol/protocolVersion": 7 } })).toBeUndefined();
    expect(declaredVersion(undefined)).toBeUndefined();
  });
});
