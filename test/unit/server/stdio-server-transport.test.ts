/**
 * The stdio face's output to a client that stops reading: notifications stop being added past
 * MAX_UNSENT_BYTES (said once), responses are still written, and writing resumes once the client reads.
 */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { MAX_UNSENT_BYTES } from "../../../src/server/slow-reader.ts";
import { StdioServerTransport } from "../../../src/server/stdio-server-transport.ts";

const MIB = 1024 * 1024;
const progress = (n: number) => ({
  jsonrpc: "2.0" as const,
  method: "notifications/progress",
  params: { progressToken: "p", progress: n, message: "x".repeat(MIB) },
});

describe("StdioServerTransport to a client that stops reading", () => {
  it("drops notifications past the bound, keeps responses, and resumes once the client reads", async () => {
    const output = new PassThrough(); // nobody reads it
    const transport = new StdioServerTransport(new PassThrough(), output, MIB);
    const errors: string[] = [];
    transport.onerror = (err) => errors.push(err.message);
    await transport.start();
    for (let n = 0; n < 40; n++) void transport.send(progress(n));
    // Sixteen or seventeen 1 MiB updates were written; the rest were dropped, and said once.
    expect(output.writableLength).toBeGreaterThan(MAX_UNSENT_BYTES);
    expect(output.writableLength).toBeLessThan(MAX_UNSENT_BYTES + 2 * MIB);
    expect(errors).toEqual([expect.stringContaining("stopped reading toolgate's stdout")]);

    const before = output.writableLength;
    void transport.send({ jsonrpc: "2.0", id: 7, result: { content: [] } });
    expect(output.writableLength).toBeGreaterThan(before);

    // The client reads everything: notifications are written again.
    output.resume();
    await new Promise((resolve) => output.once("drain", resolve));
    const lines: string[] = [];
    output.on("data", (chunk: Buffer) => lines.push(String(chunk)));
    await transport.send(progress(99));
    expect(lines.join("")).toContain('"progress":99');
    expect(errors).toHaveLength(1);
  });
});
