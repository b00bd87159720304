import { describe, expect, it } from "vitest";
import { extendPolicy, POLICY_DEFAULTS, resolvePolicy } from "../../../src/config/policy.ts";

describe("policy precedence (defaults → upstream → tool)", () => {
  it("fills every field from the defaults when no level sets one", () => {
    expect(resolvePolicy(undefined, {}, undefined)).toEqual(POLICY_DEFAULTS);
  });

  it("lets the most specific level win field by field, keeping the rest", () => {
    const policy = resolvePolicy(
      { timeout: { attemptMs: 10_000 }, retry: { maxAttempts: 2 }, breaker: { volumeThreshold: 20 } },
      { timeout: { attemptMs: 5_000, callMs: 20_000 }, retry: { baseDelayMs: 50 } },
      { retry: { maxAttempts: 1 } },
    );
    expect(policy.timeout).toEqual({ attemptMs: 5_000, callMs: 20_000, resetOnProgress: true });
    expect(policy.retry).toEqual({
      maxAttempts: 1,
      baseDelayMs: 50,
      maxDelayMs: 2_000,
      retryToolErrors: false,
    });
    expect(policy.breaker).toEqual({ ...POLICY_DEFAULTS.breaker, volumeThreshold: 20 });
  });

  it("treats an explicit undefined as not set", () => {
    const policy = resolvePolicy({ retry: { maxAttempts: 4 } }, { retry: { maxAttempts: undefined } });
    expect(policy.retry.maxAttempts).toBe(4);
  });

  it("turns a lock on with true, off with false, and inherits its timeout", () => {
    const upstream = resolvePolicy({ lock: { timeoutMs: 1_000 } });
    expect(upstream.lock).toEqual({ key: undefined, group: undefined, timeoutMs: 1_000 });
    expect(extendPolicy(upstream, { lock: { key: "path", group: "fs-writes" } }).lock).toEqual({
      key: "path",
      group: "fs-writes",
      timeoutMs: 1_000,
    });
    expect(extendPolicy(upstream, { lock: false }).lock).toBeNull();
    expect(resolvePolicy({ lock: true }).lock).toEqual({
      key: undefined,
      group: undefined,
      timeoutMs: 30_000,
    });
  });

  it("replaces fallback routes as a whole and keeps the inherited triggers unless given", () => {
    const base = resolvePolicy({ fallback: { routes: [{ tool: "a__x" }], on: ["timeout"] } });
    const tool = extendPolicy(base, { fallback: { routes: [{ tool: "b__x" }] } });
    expect(tool.fallback).toEqual({ routes: [{ tool: "b__x" }], on: ["timeout"] });
  });

  it("keeps idempotent undecided until a level sets it", () => {
    expect(resolvePolicy({}).idempotent).toBeUndefined();
    expect(resolvePolicy({ idempotent: true }, { idempotent: false }).idempotent).toBe(false);
  });
});
