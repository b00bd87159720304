/**
 * The telemetry of one proxied tools/call alone (Prometheus on, as `toolgate serve` runs by default;
 * tracing as each variant says): a SERVER span, an attempt's events, a CLIENT span, the finished call's
 * record. CPU of this process per call, in alternating windows of each variant, so a shared machine's
 * load hits all alike:
 *
 *   native   this tree, per-call metrics aggregated by the gateway (src/telemetry/aggregation.ts)
 *   otel     this tree with `nativeMetrics: false`: the same records through OTel instruments
 *   traced   native, with every call traced (sample ratio 1), each span handed to an exporter that
 *            discards it: the cost of making the spans, without the OTLP serializer's
 *   exported native, with every call traced and batched to OTLP (HTTP/protobuf) to a sink in another
 *            process that discards them: `telemetry.traces.sampleRatio: 1` as an operator runs it
 *   sampled  exported, with `sampleRatio: 0.1` (one call in ten traced)
 *   base     another tree's src/telemetry (e.g. --base /work/main: the code before this change)
 *
 *   taskset -c 0 node bench/telemetry.ts [--base /work/main] --calls 20000 --reps 5 [--only native]
 *
 * Prints one JSON line per window and the median µs of CPU per call of each variant.
 */
import { resolve } from "node:path";
import { ExportResultCode } from "@opentelemetry/core";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { TelemetrySchema } from "../src/config/telemetry-schema.ts";
import { telemetryOptions } from "../src/telemetry/options.ts";
import { createTelemetry } from "../src/telemetry/setup.ts";
import type { Telemetry } from "../src/telemetry/telemetry.ts";
import { benchCli } from "./lib/cli.ts";
import { installCleanup, start, stop, waitForLine } from "./lib/processes.ts";

const cli = benchCli(import.meta.url, {
  base: { type: "string" },
  calls: { type: "string", default: "20000" },
  reps: { type: "string", default: "5" },
  only: { type: "string" },
});
const { values } = cli;
const calls = cli.whole("calls");
const reps = cli.whole("reps");
const only = cli.choice("only", ["native", "otel", "traced", "exported", "sampled", "base"]);
if (only === "base" && !values.base) cli.fail("--only base needs --base DIR");

type Make = (nativeMetrics: boolean) => Telemetry;
const options = (nativeMetrics: boolean) => ({
  ...telemetryOptions(TelemetrySchema.parse({ metrics: { process: false } }), {}),
  nativeMetrics,
});
const discard: SpanExporter = {
  export: (_spans, done) => done({ code: ExportResultCode.SUCCESS }),
  shutdown: async () => {},
};
// The OTLP sink runs in its own process, so this one pays only for what a gateway pays to export.
installCleanup();
const sink = start("otlp-sink", [
  process.execPath,
  "-e",
  `require("node:http").createServer((q, s) => { q.resume(); q.on("end", () => s.end("{}")); })
     .listen(0, "127.0.0.1", function () { console.log(this.address().port); });`,
]);
const port = await waitForLine(sink, (line) => /^\d+$/.test(line));
const exporting = (sampleRatio: number) =>
  createTelemetry(
    telemetryOptions(
      TelemetrySchema.parse({
        traces: {
          exporter: "otlp",
          endpoint: `http://127.0.0.1:${port}/v1/traces`,
          sampleRatio,
        },
        metrics: { process: false },
      }),
      {},
    ),
  );
const variants: Array<[string, Telemetry]> = [
  ["native", createTelemetry(options(true))],
  ["otel", createTelemetry(options(false))],
  ["traced", createTelemetry({ ...options(true), spanExporter: discard })],
  ["exported", exporting(1)],
  ["sampled", exporting(0.1)],
];
if (values.base) {
  const root = resolve(values.base);
  const base = (await import(`${root}/src/telemetry/setup.ts`)) as { createTelemetry: Make };
  const schema = (await import(`${root}/src/config/telemetry-schema.ts`)) as {
    TelemetrySchema: typeof TelemetrySchema;
  };
  const opts = (await import(`${root}/src/telemetry/options.ts`)) as {
    telemetryOptions: typeof telemetryOptions;
  };
  const parsed = schema.TelemetrySchema.parse({ metrics: { process: false } });
  variants.push([
    "base",
    (base.createTelemetry as unknown as Make)(opts.telemetryOptions(parsed, {}) as never),
  ]);
}

if (only) variants.splice(0, variants.length, ...variants.filter(([name]) => name === only));

const tool = "echo__echo";
const upstream = "echo";
const attempt = { tool, upstream, attempt: 1 } as const;
const result = { content: [{ type: "text", text: "x".repeat(32) }] };
const headers = { host: "127.0.0.1", "content-type": "application/json", "mcp-session-id": "s-1" };
for (const [, t] of variants) {
  t.catalogChanged({ tools: [{ name: tool, upstream }], prompts: [], upstreams: [upstream], breakers: [] });
}

async function oneCall(t: Telemetry, id: number): Promise<void> {
  await t.serverSpan(
    {
      method: "tools/call",
      target: tool,
      transport: "tcp",
      protocolVersion: "2025-11-25",
      sessionId: "s-1",
      requestId: id,
      meta: {},
      headers,
    },
    async () => {
      t.onPolicyEvent({ type: "attemptStart", ...attempt });
      const r = await t.clientSpan(
        { method: "tools/call", target: "echo", upstream, transport: "pipe", attempt: 1 },
        async () => result,
      );
      t.onPolicyEvent({ type: "attemptEnd", ...attempt, durationMs: 1, outcome: "success" });
      t.recordCall({ tool, upstream, outcome: "ok", durationMs: 1.3, requestBytes: 32, responseBytes: 80 });
      return r;
    },
  );
}

const perCall: Record<string, number[]> = Object.fromEntries(variants.map(([name]) => [name, []]));
for (let rep = 0; rep <= reps; rep++) {
  for (const [name, t] of variants) {
    const cpu = process.cpuUsage();
    for (let i = 0; i < calls; i++) {
      await oneCall(t, i);
      // A turn of the event loop now and then, as a gateway's calls get: the batch exporter sends there.
      if (i % 64 === 63) await new Promise(setImmediate);
    }
    const used = process.cpuUsage(cpu);
    const us = (used.user + used.system) / calls;
    await t.scrape(); // a scrape per window, as Prometheus would
    if (rep === 0) continue; // warm-up
    perCall[name]?.push(us);
    console.log(JSON.stringify({ variant: name, rep, calls, cpuUsPerCall: Math.round(us * 100) / 100 }));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
console.log(
  JSON.stringify(
    Object.fromEntries(Object.entries(perCall).map(([k, xs]) => [k, Math.round(median(xs) * 100) / 100])),
  ),
);
await Promise.all(variants.map(([, t]) => t.shutdown()));
await stop(sink);
