/**
 * The bench scripts' command lines (bench/lib/cli.ts): `--help` prints a script's usage, and a mistake is
 * one line naming it, exit 2, before anything starts (no stack trace, no run that measures NaN calls).
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { usageOf } from "../../bench/lib/cli.ts";
import { NODE, ROOT } from "../helpers/gateway.ts";

function run(
  script: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(NODE, [join(ROOT, script), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += String(chunk);
  });
  child.stderr.on("data", (chunk) => {
    stderr += String(chunk);
  });
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

const SCRIPTS = readdirSync(join(ROOT, "bench"))
  .filter((file) => file.endsWith(".ts"))
  .map((file) => `bench/${file}`);

describe.concurrent("bench scripts' command lines", () => {
  it.each(SCRIPTS)("%s --help prints its usage, its header comment", async (script) => {
    const { code, stdout, stderr } = await run(script, ["--help"]);
    expect(code, stderr).toBe(0);
    const usage = usageOf(join(ROOT, script));
    expect(usage.length).toBeGreaterThan(100);
    expect(usage).not.toMatch(/^\s*\*|\*\//m);
    expect(stdout).toBe(usage);
  });

  it.each([
    ["bench/run.ts", ["--bogus"], "Unknown option '--bogus'"],
    ["bench/run.ts", ["--reps", "0"], '--reps is a whole number ≥ 1, not "0"'],
    ["bench/run.ts", ["--window-ms", "50"], '--window-ms is a whole number ≥ 100, not "50"'],
    ["bench/run.ts", ["--layout", "sideways"], '--layout is split or shared, not "sideways"'],
    ["bench/run.ts", ["--only", "toolgate-htp"], 'not "toolgate-htp"'],
    ["bench/run.ts", ["--concurrency", "1,x"], '--concurrency is a whole number ≥ 1, not "x"'],
    ["bench/batch.ts", ["--calls", "abc"], '--calls is a whole number ≥ 1, not "abc"'],
    ["bench/load.ts", ["--url", "http://127.0.0.1:9/mcp", "--watch", "up:notapid"], "--watch is role:PID"],
    ["bench/load.ts", ["--stdio", "node server.js"], "--stdio is a JSON array of strings"],
    ["bench/load.ts", ["--concurrency", "4"], "pass --url URL or --stdio"],
    ["bench/load.ts", ["--url", "not a url"], '--url is a URL, not "not a url"'],
    ["bench/load.ts", ["--serve", "--sessions", "3"], "--sessions and --serve are separate runs"],
    ["bench/load.ts", ["--serve", "--watch", "up:1"], "--watch belongs to a target"],
    ["bench/gc.ts", ["--era", "future"], '--era is legacy or modern, not "future"'],
    ["bench/upstream-echo.ts", ["--fail-rate", "2"], "--fail-rate is a probability between 0 and 1"],
    ["bench/big-result.ts", ["--mib", ""], '--mib is a number ≥ 0.001, not ""'],
  ] as const)("%s %j: one line naming the mistake, exit 2", async (script, args, message) => {
    const { code, stdout, stderr } = await run(script, [...args]);
    expect(code, stderr).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain(message);
    expect(stderr.startsWith(`${script}: `), stderr).toBe(true);
    expect(stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(stderr).toContain(`(node ${script} --help for its options)`);
  });
});

describe("bench/load.ts --serve", () => {
  it("answers each request line, a target it cannot use with a failed line naming why, and goes on", async () => {
    const child = spawn(NODE, [join(ROOT, "bench/load.ts"), "--serve"], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
    const ask = (request: object) => {
      child.stdin.write(`${JSON.stringify(request)}\n`);
      return next();
    };
    try {
      expect(await next()).toEqual({ kind: "ready" });
      expect(await ask({ connect: { name: "a", url: "not a url" } })).toEqual({
        kind: "failed",
        target: "a",
        error: '--url is a URL, not "not a url"',
      });
      expect(await ask({ connect: { name: "b", url: "http://127.0.0.1:9/mcp", era: "future" } })).toEqual({
        kind: "failed",
        target: "b",
        error: 'era is legacy or modern, not "future"',
      });
      expect(await ask({ connect: { name: "d", url: "http://127.0.0.1:9/mcp", client: "curl" } })).toEqual({
        kind: "failed",
        target: "d",
        error: 'client is sdk or wire, not "curl"',
      });
      // Nothing listens on port 9: the connect fails (after the generator's bounded retries) and is said so.
      const refused = await ask({ connect: { name: "c", url: "http://127.0.0.1:9/mcp" } });
      expect(refused).toMatchObject({ kind: "failed", target: "c" });
      expect(String(refused.error)).toMatch(/fetch failed|ECONNREFUSED/);
      expect(await ask({ target: "a", payload: 32, concurrency: 1, warmupMs: 0, windowMs: 100 })).toEqual({
        kind: "failed",
        target: "a",
        error: "no target named a is connected",
      });
      expect(await ask({ payload: 32, concurrency: 1, warmupMs: 0, windowMs: 100 })).toMatchObject({
        kind: "failed",
        error: "no target named default is connected",
      });
    } finally {
      child.stdin.end();
    }
    const code = await new Promise((resolve) => child.once("close", resolve));
    expect(code).toBe(0);
  });
});

describe("bench/load.ts clients", () => {
  /** An echo upstream whose `flaky` tool always fails (-32603); over HTTP, its URL once it listens. */
  async function upstream(args: string[]): Promise<{ url: string; stop(): void }> {
    const child = spawn(NODE, [join(ROOT, "bench/upstream-echo.ts"), "--fail-rate", "1", ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const first = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
    return { url: (JSON.parse(first.value as string) as { url: string }).url, stop: () => child.kill() };
  }

  it("drives SSE, JSON and stdio upstreams with either client: answers counted as calls, JSON-RPC errors as errors", async () => {
    const sse = await upstream(["--http", "0"]);
    const json = await upstream(["--http", "0", "--json-response"]);
    const child = spawn(
      NODE,
      [join(ROOT, "bench/load.ts"), "--serve", "--concurrency", "4", "--clients", "2"],
      {
        cwd: ROOT,
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const ask = async (request: object) => {
      child.stdin.write(`${JSON.stringify(request)}\n`);
      return JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
    };
    const endpoints = {
      sse: { url: sse.url },
      json: { url: json.url },
      stdio: { stdio: [NODE, join(ROOT, "bench/upstream-echo.ts"), "--fail-rate", "1"] },
    };
    try {
      await lines.next(); // ready
      for (const client of ["sdk", "wire"]) {
        for (const [kind, endpoint] of Object.entries(endpoints)) {
          for (const tool of ["echo", "flaky"]) {
            const name = `${client} ${kind} ${tool}`;
            expect(await ask({ connect: { name, ...endpoint, tool, client } }), name).toEqual({
              kind: "ready",
              target: name,
            });
            const window = await ask({
              target: name,
              payload: 32,
              concurrency: 4,
              warmupMs: 0,
              windowMs: 200,
            });
            expect(window, name).toMatchObject({
              kind: "window",
              target: name,
              clients: kind === "stdio" ? 1 : 2,
            });
            expect(window.calls as number, name).toBeGreaterThan(0);
            if (tool === "echo") expect(window.errors, name).toBe(0);
            else {
              expect(window.errors, name).toBe(window.calls);
              expect(String(window.errorSample), name).toContain("-32603");
            }
          }
        }
      }
    } finally {
      child.stdin.end();
      sse.stop();
      json.stop();
    }
    expect(await new Promise((resolve) => child.once("close", resolve))).toBe(0);
  });
});
