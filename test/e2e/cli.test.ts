// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config values use ${VAR} interpolation
/**
 * The `toolgate` CLI as a user runs it: `node src/main.ts <command>` from the repository root, judged by its
 * exit code, stdout and stderr.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { FAULT_SERVER, NODE, ROOT, writeConfig } from "../helpers/gateway.ts";

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the CLI to completion (killed after 90 s, so a hang fails the test instead of stalling it). `list` and
 * `call` wait up to WAIT_MS for their upstreams: a generous bound, since they stop waiting once each upstream
 * is ready or down, and a loaded machine can take many seconds to start one.
 */
const WAIT_MS = "60000";

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, ["src/main.ts", ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A loopback port nothing listens on: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const faultConfig = () => ({ mcpServers: { f: { command: NODE, args: [FAULT_SERVER] } } });

describe("toolgate check", () => {
  const config = {
    mcpServers: {
      github: { command: "gh-mcp", env: { GITHUB_TOKEN: "${TG_TEST_TOKEN}", MODE: "${TG_TEST_MODE:-ro}" } },
      remote: { url: "https://mcp.example.com/mcp", headers: { Authorization: "Bearer ${TG_TEST_TOKEN}" } },
    },
  };

  it("prints the normalized config with every env-interpolated value redacted, exit 0", async () => {
    const file = await writeConfig(config);
    const run = await runCli(["check", "--config", file], { TG_TEST_TOKEN: "ghp_supersecret" });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^config ok: 2 upstream\(s\)\n {2}github \(stdio\)\n {2}remote \(http\)\n/);
    expect(run.stdout).not.toContain("supersecret");
    const normalized = JSON.parse(run.stdout.slice(run.stdout.indexOf("{")));
    expect(normalized.upstreams[0].transport.env).toEqual({
      GITHUB_TOKEN: "<redacted: from environment>",
      MODE: "<redacted: from environment>",
    });
    expect(normalized.upstreams[1].transport.headers).toEqual({
      Authorization: "<redacted: from environment>",
    });
    expect(normalized.upstreams[0].policy.retry.maxAttempts).toBe(3);
    expect(normalized.gateway.listen).toEqual({ host: "127.0.0.1", port: 8080 });
  });

  it("prints only JSON with --json", async () => {
    const run = await runCli(["check", "--json", "--config", await writeConfig(config)], {
      TG_TEST_TOKEN: "t",
    });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).upstreams.map((u: { name: string }) => u.name)).toEqual([
      "github",
      "remote",
    ]);
  });

  it("exits 2 and names the JSON path of each problem", async () => {
    const file = await writeConfig({
      mcpServers: { github: { comand: "gh" }, a: { command: "${TG_TEST_UNSET}" } },
    });
    const run = await runCli(["check", "--config", file]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("$.mcpServers.a.command: environment variable TG_TEST_UNSET is not set");
    const schema = await runCli([
      "check",
      "--config",
      await writeConfig({ mcpServers: { github: { comand: "gh" } } }),
    ]);
    expect(schema.code).toBe(2);
    expect(schema.stderr).toContain("$.mcpServers.github.comand: unknown key");
  });

  it("exits 2 naming a config file it cannot read", async () => {
    const run = await runCli(["check", "--config", "does/not/exist.json"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/cannot read does\/not\/exist\.json/);
  });
});

describe("toolgate usage errors", () => {
  it("exits 2 with the usage for an unknown command", async () => {
    const run = await runCli(["frobnicate", "--config", await writeConfig(faultConfig())]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unknown command "frobnicate"');
    expect(run.stderr).toContain("Usage:");
  });

  it("exits 2 with the usage when --config is missing", async () => {
    const run = await runCli(["list"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--config FILE is required");
    expect(run.stderr).toContain("Usage:");
  });

  it("exits 2 with the usage for an unknown option or no command", async () => {
    const option = await runCli(["check", "--frob"]);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("Usage:");
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain("Usage:");
  });

  it("prints the usage and exits 0 for --help", async () => {
    const run = await runCli(["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Exit codes:");
  });
});

describe("toolgate list", () => {
  it("lists a ready stdio upstream with its tools and an unreachable one as down with its error", async () => {
    const port = await closedPort();
    const file = await writeConfig({
      mcpServers: { ...faultConfig().mcpServers, gone: { url: `http://127.0.0.1:${port}/mcp` } },
    });
    const run = await runCli(["list", "--json", "--timeout", WAIT_MS, "--config", file]);
    expect(run.code).toBe(0);
    const snapshot = JSON.parse(run.stdout);
    const byName = Object.fromEntries(snapshot.upstreams.map((u: { name: string }) => [u.name, u]));
    expect(byName.f).toMatchObject({
      state: "ready",
      transport: "stdio",
      serverInfo: { name: "fault-server" },
    });
    expect(byName.gone).toMatchObject({ state: "down", transport: "http", tools: 0 });
    expect(byName.gone.lastError).toMatch(/ECONNREFUSED/);
    const tools = snapshot.tools.map((t: { name: string }) => t.name);
    expect(tools).toEqual(expect.arrayContaining(["f__echo", "f__progress", "f__fail"]));
    expect(snapshot.tools.every((t: { upstream: string }) => t.upstream === "f")).toBe(true);
    expect(run.stderr).toContain("f: ready");
    expect(run.stderr).toContain("gone: down");
  });

  it("prints a readable catalog without --json", async () => {
    const run = await runCli(["list", "--timeout", WAIT_MS, "--config", await writeConfig(faultConfig())]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^f \[stdio\] ready$/m);
    expect(run.stdout).toMatch(/^ {2}f__echo {2}Echoes `text`\.$/m);
    expect(run.stdout).toMatch(/^\d+ tools, 1 prompts, 1 resources$/m);
  });
});

describe("toolgate call", () => {
  it("prints the result and reports progress on stderr, exit 0", async () => {
    const file = await writeConfig(faultConfig());
    const run = await runCli([
      "call",
      "--timeout",
      WAIT_MS,
      "--config",
      file,
      "f__progress",
      '{"steps":3,"intervalMs":5}',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("done\n");
    expect(run.stderr).toContain("  progress 1/3 step 1\n  progress 2/3 step 2\n  progress 3/3 step 3\n");
  });

  it("relays a progress update that arrives together with the result", async () => {
    const file = await writeConfig({ mcpServers: { burst: { command: NODE, args: ["-e", BURST_SERVER] } } });
    const run = await runCli(["call", "--timeout", WAIT_MS, "--config", file, "burst__burst"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("burst done\n");
    expect(run.stderr).toContain("  progress 1/1 all done\n");
  });

  it("prints the whole result as JSON with --json", async () => {
    const run = await runCli([
      "call",
      "--json",
      "--timeout",
      WAIT_MS,
      "--config",
      await writeConfig(faultConfig()),
      "f__echo",
      '{"text":"hi"}',
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ content: [{ type: "text", text: "hi" }] });
  });

  it("exits 1 and prints the error for an isError result", async () => {
    const file = await writeConfig(faultConfig());
    const run = await runCli([
      "call",
      "--timeout",
      WAIT_MS,
      "--config",
      file,
      "f__fail",
      '{"times":1,"mode":"toolError"}',
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("error: failure 1\n");
  });

  it("exits 1 naming a tool that does not exist", async () => {
    const run = await runCli([
      "call",
      "--timeout",
      WAIT_MS,
      "--config",
      await writeConfig(faultConfig()),
      "f__nope",
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("f__nope");
  });

  it("exits 2 when the arguments are not a JSON object", async () => {
    const file = await writeConfig(faultConfig());
    const invalid = await runCli(["call", "--timeout", WAIT_MS, "--config", file, "f__echo", "{text"]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain("arguments are not valid JSON");
    const array = await runCli(["call", "--timeout", WAIT_MS, "--config", file, "f__echo", "[1]"]);
    expect(array.code).toBe(2);
    expect(array.stderr).toContain("arguments must be a JSON object");
  });
});

/**
 * A raw stdio MCP server that writes its last progress update and the result in one write, as a fast tool
 * does: the gateway must relay that update, not lose it to the response overtaking it.
 */
const BURST_SERVER = `
const send = (...messages) => process.stdout.write(messages.map((m) => JSON.stringify(m) + "\\n").join(""));
require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const m = JSON.parse(line);
  const reply = (result) => ({ jsonrpc: "2.0", id: m.id, result });
  if (m.method === "initialize") {
    send(reply({ protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "burst", version: "1.0.0" } }));
  } else if (m.method === "tools/list") {
    send(reply({ tools: [{ name: "burst", inputSchema: { type: "object" } }] }));
  } else if (m.method === "tools/call") {
    const progressToken = m.params._meta && m.params._meta.progressToken;
    send(
      { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken, progress: 1, total: 1, message: "all done" } },
      reply({ content: [{ type: "text", text: "burst done" }] }),
    );
  } else if (m.id !== undefined) {
    send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "method not found" } });
  }
});
`;
