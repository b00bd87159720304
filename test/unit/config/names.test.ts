import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fitName, MAX_NAME_LENGTH, publicName } from "../../../src/catalog/names.ts";

const LLM_SAFE = /^[A-Za-z0-9_-]{1,64}$/;

describe("public tool names", () => {
  it("joins prefix, separator and name, or keeps the name when the prefix is empty", () => {
    expect(publicName("github", "__", "create_issue")).toBe("github__create_issue");
    expect(publicName("gh", "-", "create_issue")).toBe("gh-create_issue");
    expect(publicName("", "__", "test_simple_text")).toBe("test_simple_text");
  });

  it("replaces characters outside [A-Za-z0-9_-] with _", () => {
    expect(publicName("fs", "__", "files.read/all")).toBe("fs__files_read_all");
    expect(fitName("résumé tool")).toBe("r_sum__tool");
    expect(fitName("")).toBe("_");
  });

  it("keeps a name of exactly 64 characters", () => {
    const name = "a".repeat(MAX_NAME_LENGTH);
    expect(fitName(name)).toBe(name);
  });

  it("shortens a longer name to 55 characters, _ and 8 hex digits of its SHA-256", () => {
    const name = `${"a".repeat(60)}_tail`;
    const fitted = fitName(name);
    expect(fitted).toHaveLength(MAX_NAME_LENGTH);
    expect(fitted).toMatch(/^a{55}_[0-9a-f]{8}$/);
    expect(fitName(name)).toBe(fitted);
  });

  it("gives long names that differ only past the cut different public names", () => {
    const base = "x".repeat(70);
    expect(fitName(`${base}_one`)).not.toBe(fitName(`${base}_two`));
    // The hash covers the original name, so names equal after sanitizing still differ once shortened.
    expect(fitName(`${base}.a`)).not.toBe(fitName(`${base}_a`));
  });

  it("always yields a name every LLM API accepts, and leaves such names unchanged", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.string({ maxLength: 10 }), (name, prefix) => {
        expect(publicName(prefix.replace(/[^A-Za-z0-9_-]/g, ""), "__", name)).toMatch(LLM_SAFE);
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(LLM_SAFE), (name) => {
        expect(fitName(name)).toBe(name);
      }),
    );
  });
});
