import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { atExpiry, type Principal } from "../../../src/server/auth/principal.ts";

const DAY = 24 * 60 * 60 * 1000;
const token = (expiresAt?: number): Principal => ({
  id: "carol",
  kind: "oauth",
  scopes: [],
  ...(expiresAt !== undefined && { expiresAt }),
});

describe("atExpiry", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("ends at the expiry, not before", () => {
    const end = vi.fn();
    atExpiry(token(Date.now() + 5_000), end);
    vi.advanceTimersByTime(4_999);
    expect(end).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(end).toHaveBeenCalledTimes(1);
  });

  it("waits out an expiry beyond the longest timer (about 24.8 days) instead of ending at once", () => {
    const end = vi.fn();
    atExpiry(token(Date.now() + 30 * DAY), end);
    vi.advanceTimersByTime(29 * DAY);
    expect(end).not.toHaveBeenCalled();
    vi.advanceTimersByTime(DAY);
    expect(end).toHaveBeenCalledTimes(1);
  });

  it("ends on the next turn for credentials already past their expiry", () => {
    const end = vi.fn();
    atExpiry(token(Date.now() - 1), end);
    expect(end).not.toHaveBeenCalled();
    vi.advanceTimersByTime(0);
    expect(end).toHaveBeenCalledTimes(1);
  });

  it("does nothing once cancelled, or for credentials without an expiry", () => {
    const end = vi.fn();
    atExpiry(token(Date.now() + 5_000), end)();
    atExpiry(token(), end);
    vi.advanceTimersByTime(365 * DAY);
    expect(end).not.toHaveBeenCalled();
  });
});
