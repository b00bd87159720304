/**
 * `node bench/batch.ts [--calls N]`: `toolgate batch`'s runner in process against the fault fixture (stdio
 * child), the same N echo calls one by one (`--parallel 1`) and batched (16, 64): calls/s and the gateway's
 * CPU per call (this process only; the fixture's CPU is its own). Numbers are printed, never asserted.
 */
import { join } from "node:path";
import { createGateway } from "../src/app.ts";
import { resolveConfig } from "../src/config/load.ts";
import { runBatch } from "../src/tasks/batch.ts";
import { silentLogger } from "../src/telemetry/log.ts";
import { benchCli } from "./lib/cli.ts";

const cli = benchCli(import.meta.url, { calls: { type: "string", default: "1000" } });
const calls = cli.whole("calls");
const root = new URL("..", import.meta.url).pathname;
const { config } = resolveConfig(
  {
    mcpServers: { f: { command: process.execPath, args: [join(root, "test/fixtures/fault-server.ts")] } },
    telemetry: { metrics: { prometheus: false } },
  },
  process.env,
);
const gateway = await createGateway(config, { log: silentLogger, env: process.env });
await gateway.waitForUpstreams(30_000);
const text = Array.from({ length: calls }, (_, i) =>
  JSON.stringify({ tool: "f__echo", arguments: { text: `n${i}` }, priority: i % 5 }),
).join("\n");

// Warm-up, so the first measured run does not pay for compilation.
await runBatch(text, { parallel: 16, call: (t, a) => gateway.callTool(t, a), write: () => {} });
const rows: string[] = [];
for (const parallel of [1, 16, 64]) {
  let answered = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const outcome = await runBatch(text, {
    parallel,
    call: (tool, args, priority) => gateway.callTool(tool, args, undefined, { priority }),
    write: () => {
      answered++;
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  rows.push(
    `parallel ${String(parallel).padStart(3)}  ${String(answered).padStart(5)} answered, ${outcome.failed} failed  ` +
      `${(calls / seconds).toFixed(0).padStart(6)} calls/s  ${((used.user + used.system) / calls).toFixed(0).padStart(5)} µs CPU/call`,
  );
}
await gateway.stop();
process.stdout.write(
  `toolgate batch, ${calls} echo calls to the fault fixture (stdio)\n${rows.join("\n")}\n`,
);
