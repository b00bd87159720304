import { describe, expect, it } from "vitest";
import { untilReady } from "../../../src/upstreams/upstream.ts";

describe("untilReady: what a caller of a tool of an upstream that is not ready hears", () => {
  it("names the time of the next reconnect while the upstream waits for it", () => {
    expect(untilReady("down", "2026-12-04T17:31:20.143Z")).toBe(
      "toolgate reconnects at 2026-12-04T17:31:20.143Z, call again once it is ready",
    );
  });

  it("says a reconnect is under way when the upstream is down with no retry pending", () => {
    expect(untilReady("down", undefined)).toBe(
      "toolgate is connecting to it now, call again once it is ready",
    );
    expect(untilReady("connecting", undefined)).toBe(
      "toolgate is connecting to it now, call again once it is ready",
    );
  });

  it("says a stopped upstream is not coming back on its own", () => {
    expect(untilReady("stopped", undefined)).toMatch(/^it was stopped \(a reload removed it/);
  });
});
