/** bench/lib/hey-output.ts on hey's own output (v0.1.4; captured from runs, trimmed). */
import { describe, expect, it } from "vitest";
import { readHey } from "../../../bench/lib/hey-output.ts";

const summary = (histogram: string, statuses: string, errors = "") => `
Summary:
  Total:\t1.0003 secs
  Requests/sec:\t3544.9603

Response time histogram:
${histogram}

Latency distribution:
  10% in 0.0002 secs
  50% in 0.0011 secs
  99% in 0.0007 secs

Status code distribution:
${statuses}
${errors}
`;

describe("readHey", () => {
  it("reads calls, calls/s and p50, whatever counts the latency histogram holds", () => {
    const out = summary(
      "  0.000 [1]\t|\n  0.001 [312]\t|■■■■\n  0.002 [404]\t|■■■■■",
      "  [200]\t3546 responses",
    );
    expect(readHey(out)).toEqual({ calls: 3546, callsPerSec: 3544.9603, p50Ms: 1.1 });
  });

  it("refuses a window with any other status, naming it", () => {
    const out = summary("  0.001 [3516]\t|■■■■", "  [200]\t3500 responses\n  [503]\t16 responses");
    expect(() => readHey(out, "hey against toolgate")).toThrow("hey against toolgate: status [503]\t16");
  });

  it("refuses a window with transport errors, naming the first", () => {
    const errors = 'Error distribution:\n  [3]\tPost "http://127.0.0.1:1/mcp": EOF\n';
    const out = summary("  0.001 [3516]\t|■■■■", "  [200]\t3513 responses", errors);
    expect(() => readHey(out)).toThrow('hey: errors: [3]\tPost "http://127.0.0.1:1/mcp": EOF');
  });

  it("refuses a window without one answer", () => {
    expect(() => readHey("Error: connection refused")).toThrow("hey: no answer with 200");
  });
});
