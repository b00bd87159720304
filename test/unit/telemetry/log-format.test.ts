import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/telemetry/log.ts";

describe("log formats", () => {
  it("writes one JSON object per line by default", () => {
    const lines: string[] = [];
    createLogger({ sink: (l) => lines.push(l) }).warn("upstream down", { upstream: "fs", retryInMs: 500 });
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      level: "warn",
      msg: "upstream down",
      upstream: "fs",
    });
  });

  it("writes readable lines for a terminal: time, level, message, key=value", () => {
    const lines: string[] = [];
    const log = createLogger({ format: "text", sink: (l) => lines.push(l) }).child({ upstream: "fs" });
    log.warn("upstream down", { error: "the process exited", retryInMs: 500, detail: { a: 1 } });
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} WARN {2}upstream down upstream=fs error="the process exited" retryInMs=500 detail=\{"a":1\}\n$/,
    );
  });
});
