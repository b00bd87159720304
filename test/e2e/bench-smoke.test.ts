/**
 * The benchmark must keep working: `bench/run.ts --quick` completes and writes well-formed results.
 * Figures are never asserted here (they belong to the benchmark's own report). Three toolgate setups keep it
 * short (the 2026-07-28 one drives the 2025 one's gateway); `npm run bench -- --quick` runs every setup and peer.
 * `bench/wake-cost.ts` runs briefly too.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { NODE, ROOT } from "../helpers/gateway.ts";

it("runs the quick benchmark to completion and writes its results as JSON", async () => {
  const out = join(await mkdtemp(join(tmpdir(), "toolgate-bench-")), "results.json");
  const child = spawn(
    NODE,
    [
      join(ROOT, "bench/run.ts"),
      "--quick",
      // Two windows per setup: enough for each ratio's spread between adjacent windows.
      "--reps",
      "2",
      // Windows and warm-ups of the caller's length rather than the plan's (shorter here, to keep the test short).
      "--window-ms",
      "700",
      "--warmup-ms",
      "700",
      "--only",
      "echo,toolgate-http,toolgate-http-2026,toolgate-stdio",
      "--json",
      out,
    ],
    {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr = (stderr + String(chunk)).slice(-4_000);
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  expect(code, stderr).toBe(0);
  const results = JSON.parse(await readFile(out, "utf8")) as Record<string, unknown>;
  expect(Object.keys(results)).toEqual(expect.arrayContaining(["meta", "targets", "summary", "windows"]));
  expect(results.failures).toEqual([]);
  // Both eras were measured, without errors, and compared.
  const windows = results.windows as Array<{
    setup: string;
    tool: string;
    target?: string;
    calls: number;
    errors: number;
    elapsedMs: number;
  }>;
  const meta = results.meta as { plan: { windowMs: number }; client: string };
  expect(meta.plan.windowMs).toBe(700);
  // The load generator's lean client by default (bench/lib/wire-client.ts), for both eras.
  expect(meta.client).toBe("wire");
  expect(windows.every((w) => w.elapsedMs >= 700)).toBe(true);
  for (const setup of ["toolgate-http", "toolgate-http-2026", "toolgate-stdio"]) {
    const own = windows.filter((w) => w.setup === setup);
    expect(own.length, setup).toBeGreaterThan(0);
    expect(
      own.every((w) => w.calls > 0 && w.errors === 0),
      setup,
    ).toBe(true);
  }
  // One load generator drives the systems side by side: each echo window came from the target it is filed under.
  for (const w of windows) {
    if (w.tool.endsWith("echo")) expect(w.target, w.setup).toBe(w.setup);
  }
  // Where the kernel counts function-call interrupts, every window says how many each CPU took.
  if (/^\s*CAL:/m.test(readFileSync("/proc/interrupts", "utf8"))) {
    for (const w of windows as Array<{ setup: string; wakeUps?: number[] }>) {
      expect(w.wakeUps?.length, w.setup).toBeGreaterThan(0);
      expect(
        w.wakeUps?.every((n) => Number.isInteger(n) && n >= 0),
        w.setup,
      ).toBe(true);
    }
  }
  // Every window says what share of each CPU's time the hypervisor took (0 on a machine of its own).
  for (const w of windows as Array<{ setup: string; steal?: Array<number | null> }>) {
    expect(w.steal?.length, w.setup).toBe(cpus().length);
    expect(
      w.steal?.every((share) => share === null || (share >= 0 && share <= 1)),
      w.setup,
    ).toBe(true);
  }
  const targets = results.targets as Array<{ target: string; measured: string; verdict: string }>;
  const eras = targets.find((t) => t.target.startsWith("2026-07-28 calls"));
  expect(eras?.verdict).toMatch(/^(PASS|MISS)$/);
  // The worst row's ratio comes with its middle half over the window pairs, low end first.
  const spread = /worst [\d.]+× \[([\d.]+)–([\d.]+)\]$/.exec(eras?.measured ?? "");
  expect(spread, eras?.measured).not.toBeNull();
  expect(Number(spread?.[1])).toBeLessThanOrEqual(Number(spread?.[2]));
}, 240_000);

it("measures the wake-up cost in both modes and writes it as JSON", async () => {
  const out = join(await mkdtemp(join(tmpdir(), "toolgate-bench-")), "wake-cost.json");
  const child = spawn(
    NODE,
    [join(ROOT, "bench/wake-cost.ts"), "--window-ms", "300", "--reps", "2", "--json", out],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  const keep = (chunk: unknown) => {
    output = (output + String(chunk)).slice(-4_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  expect(code, output).toBe(0);
  const results = JSON.parse(await readFile(out, "utf8")) as {
    windows: Array<{ mode: string; calls: number; upstreamUsPerCall: number }>;
    summary: Array<{ mode: string }>;
  };
  expect(results.summary.map((s) => s.mode)).toEqual(["sleep", "poll"]);
  // Two reps, each mode once per rep; every window made calls and saw the upstream spend CPU on them.
  expect(results.windows.map((w) => w.mode).sort()).toEqual(["poll", "poll", "sleep", "sleep"]);
  for (const w of results.windows) {
    expect(w.calls, w.mode).toBeGreaterThan(0);
    expect(w.upstreamUsPerCall, w.mode).toBeGreaterThan(0);
  }
  expect(output).toContain("waking this process cost the upstream");
}, 60_000);
