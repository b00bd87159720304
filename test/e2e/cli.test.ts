// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config values use ${VAR} interpolation
/**
 * The `toolgate` CLI as a user runs it: `node src/main.ts <command>` from the repository root, judged by its
 * exit code, stdout and stderr. Every test has its own config file and directories and runs its own
 * processes, so the tests run side by side (the e2e project's maxConcurrency at a time), each asserting
 * with its own context's expect.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { EVERYTHING, FAULT_SERVER, NODE, ROOT, writeConfig } from "../helpers/gateway.ts";

/**
 * `list` and `call` wait up to WAIT_MS for their upstreams: a generous bound, since they stop waiting once each upstream
 * is ready or down, and a loaded machine can take many seconds to start one.
 */
const WAIT_MS = "60000";

/** A loopback port nothing listens on: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const faultConfig = () => ({ mcpServers: { f: { command: NODE, args: [FAULT_SERVER] } } });

describe.concurrent("toolgate check", () => {
  const config = {
    mcpServers: {
      github: { command: "gh-mcp", env: { GITHUB_TOKEN: "${TG_TEST_TOKEN}", MODE: "${TG_TEST_MODE:-ro}" } },
      remote: { url: "https://mcp.example.com/mcp", headers: { Authorization: "Bearer ${TG_TEST_TOKEN}" } },
    },
  };

  it("prints a short summary by default, exit 0", async ({ expect }) => {
    const file = await writeConfig(config);
    const run = await runCli(["check", "--config", file], { TG_TEST_TOKEN: "ghp_supersecret" });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^config ok: 2 upstream\(s\)\n {2}github \(stdio\)\n {2}remote \(http\)\n/);
    expect(run.stdout).toContain(`state: ${join(dirname(file), ".toolgate")}`);
    expect(run.stdout.split("\n").length).toBeLessThan(10);
    expect(run.stdout).not.toContain("{");
  });

  it("prints the normalized config with --print, every env-interpolated value redacted", async ({
    expect,
  }) => {
    const file = await writeConfig(config);
    const run = await runCli(["check", "--print", "--config", file], { TG_TEST_TOKEN: "ghp_supersecret" });
    expect(run.code).toBe(0);
    expect(run.stdout).not.toContain("supersecret");
    const normalized = JSON.parse(run.stdout);
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

  it("prints only JSON with --json", async ({ expect }) => {
    const run = await runCli(["check", "--json", "--config", await writeConfig(config)], {
      TG_TEST_TOKEN: "t",
    });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).upstreams.map((u: { name: string }) => u.name)).toEqual([
      "github",
      "remote",
    ]);
  });

  it("exits 2 and names the JSON path of each problem", async ({ expect }) => {
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

  it("exits 2 naming a config file it cannot read", async ({ expect }) => {
    const run = await runCli(["check", "--config", "does/not/exist.json"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/cannot read does\/not\/exist\.json/);
  });
});

describe.concurrent("toolgate usage errors", () => {
  it("exits 2 with the usage for an unknown command", async ({ expect }) => {
    const run = await runCli(["frobnicate", "--config", await writeConfig(faultConfig())]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unknown command "frobnicate"');
    expect(run.stderr).toContain("Usage:");
  });

  it("exits 2 with the usage when --config is missing", async ({ expect }) => {
    const run = await runCli(["list"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--config FILE is required");
    expect(run.stderr).toContain("Usage:");
  });

  it("exits 2 with the usage for an unknown option or no command", async ({ expect }) => {
    const option = await runCli(["check", "--frob"]);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("Usage:");
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain("Usage:");
  });

  it("exits 2 for a port that is not one, before it starts anything", async ({ expect }) => {
    const run = await runCli(["serve", "--config", await writeConfig(faultConfig()), "--http", "80800"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--http needs a port, got "80800"');
    // No log line: the gateway did not start (nor its upstreams) before the mistake was found.
    expect(run.stderr).not.toContain('"level"');
  });

  it("exits 2 for a --timeout or --parallel that is not a positive integer, before it connects anything", async ({
    expect,
  }) => {
    const file = await writeConfig(faultConfig());
    for (const args of [
      ["list", "--timeout", "abc"],
      ["call", "f__echo", "--timeout=-5"],
      ["batch", "calls.jsonl", "--parallel", "0"],
    ]) {
      const run = await runCli([...args, "--config", file]);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(
        /^toolgate: --(timeout|parallel) needs a positive integer, got "(abc|-5|0)"/,
      );
      expect(run.stderr).toContain(`Usage: toolgate ${args[0]} `);
      expect(run.stderr).not.toContain("connecting to");
    }
  });

  it("prints the usage and exits 0 for --help", async ({ expect }) => {
    const run = await runCli(["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Exit codes:");
  });
});

describe.concurrent("toolgate list", () => {
  it("lists a ready stdio upstream with its tools and an unreachable one as down with its error, exit 1", async ({
    expect,
  }) => {
    const port = await closedPort();
    const file = await writeConfig({
      mcpServers: { ...faultConfig().mcpServers, gone: { url: `http://127.0.0.1:${port}/mcp` } },
    });
    const run = await runCli(["list", "--json", "--timeout", WAIT_MS, "--config", file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("1 upstream(s) not ready: gone");
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

  it("exits 0 with --allow-down when an upstream is down", async ({ expect }) => {
    const file = await writeConfig({
      mcpServers: { gone: { url: `http://127.0.0.1:${await closedPort()}/mcp` } },
    });
    const down = await runCli(["list", "--config", file]);
    expect(down.code).toBe(1);
    const allowed = await runCli(["list", "--allow-down", "--config", file]);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/^gone \[http\] down, last error: .*ECONNREFUSED/m);
  });

  it("prints a readable catalog without --json", async ({ expect }) => {
    const run = await runCli(["list", "--timeout", WAIT_MS, "--config", await writeConfig(faultConfig())]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^f \[stdio\] ready$/m);
    expect(run.stdout).toMatch(/^ {2}f__echo {2}Echoes `text`\.$/m);
    expect(run.stdout).toMatch(/^\d+ tools, 1 prompts, 1 resources$/m);
  });
});

describe.concurrent("toolgate call", () => {
  it("prints the result and reports progress on stderr, exit 0", async ({ expect }) => {
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

  it("relays a progress update that arrives together with the result", async ({ expect }) => {
    const file = await writeConfig({ mcpServers: { burst: { command: NODE, args: ["-e", BURST_SERVER] } } });
    const run = await runCli(["call", "--timeout", WAIT_MS, "--config", file, "burst__burst"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("burst done\n");
    expect(run.stderr).toContain("  progress 1/1 all done\n");
  });

  it("prints the whole result as JSON with --json", async ({ expect }) => {
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

  it("exits 1 and prints the error for an isError result", async ({ expect }) => {
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

  it("exits 1 naming a tool that does not exist", async ({ expect }) => {
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

  it("prints an image or a resource link by what identifies it, not as a bare content type", async ({
    expect,
  }) => {
    const file = await writeConfig({ mcpServers: { e: { command: NODE, args: [EVERYTHING, "stdio"] } } });
    const image = await runCli(["call", "--timeout", WAIT_MS, "--config", file, "e__get-tiny-image"]);
    expect(image.code).toBe(0);
    expect(image.stdout).toMatch(/^\[image: image\/png, \d+(\.\d)? KiB\]$/m);
    const links = await runCli([
      "call",
      "--timeout",
      WAIT_MS,
      "--config",
      file,
      "e__get-resource-links",
      '{"count":1}',
    ]);
    expect(links.stdout).toMatch(/^\[resource link: demo:\/\/\S+ \(.+\)\]$/m);
  });

  it("approvals says what it means when no gateway answers at the address, exit 1", async ({ expect }) => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const run = await runCli(["approvals", "--config", await writeConfig(faultConfig()), "--url", url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `cannot reach the gateway at ${url} (--url names another): fetch failed (ECONNREFUSED): nothing accepts connections`,
    );
  });

  it("exits 2 when the arguments are not a JSON object", async ({ expect }) => {
    const file = await writeConfig(faultConfig());
    const invalid = await runCli(["call", "--timeout", WAIT_MS, "--config", file, "f__echo", "{text"]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain("arguments are not valid JSON");
    const array = await runCli(["call", "--timeout", WAIT_MS, "--config", file, "f__echo", "[1]"]);
    expect(array.code).toBe(2);
    expect(array.stderr).toContain("arguments must be a JSON object");
  });
});

describe.concurrent("toolgate CLI manners", () => {
  it("prints its version", async ({ expect }) => {
    const { version } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8"));
    for (const flag of ["--version", "-V"]) {
      const run = await runCli([flag]);
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(`toolgate ${version}\n`);
    }
  });

  it("SUB --help and help SUB print that command's help, without asking for --config", async ({ expect }) => {
    for (const args of [
      ["list", "--help"],
      ["help", "list"],
    ]) {
      const run = await runCli(args);
      expect(run.code).toBe(0);
      expect(run.stderr).toBe("");
      expect(run.stdout).toMatch(/^Usage: toolgate list --config FILE/);
      expect(run.stdout).toContain("--allow-down");
      expect(run.stdout).not.toContain("toolgate serve");
    }
    const help = await runCli(["help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("toolgate pins");
  });

  it("an unknown command is named before any complaint about --config", async ({ expect }) => {
    const run = await runCli(["frobnicate"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^toolgate: unknown command "frobnicate"/);
    expect(run.stderr).not.toContain("--config FILE is required");
  });

  it("`list | head -1` ends quietly when the reader goes away", async ({ expect }) => {
    // Far more output than a pipe buffers, so writes go on after `head` has exited.
    const file = await writeConfig({
      mcpServers: { f: { command: NODE, args: [FAULT_SERVER, "--extra-tools", "3000"] } },
    });
    const child = spawn(
      "sh",
      ["-c", `"${NODE}" src/main.ts list --timeout ${WAIT_MS} --config "${file}" | head -2; echo "exit $?"`],
      {
        cwd: ROOT,
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c;
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c;
    });
    await new Promise((resolve) => child.once("close", resolve));
    expect(stdout).toBe("\nf [stdio] ready\nexit 0\n");
    expect(stderr).not.toContain("EPIPE");
    expect(stderr).not.toContain("Error");
  });

  it("logs JSON lines when stderr is not a terminal, readable text on a terminal, JSON to --log-file", async ({
    expect,
  }) => {
    const file = await writeConfig({
      mcpServers: { gone: { url: `http://127.0.0.1:${await closedPort()}/mcp` } },
    });
    const piped = await runCli(["list", "--allow-down", "--config", file]);
    const jsonLine = piped.stderr.split("\n").find((l) => l.startsWith("{"));
    expect(JSON.parse(jsonLine as string)).toMatchObject({
      level: "warn",
      msg: "upstream down",
      upstream: "gone",
    });

    // `script` gives the CLI a pseudo-terminal, as a person's shell does.
    const cmd = `"${NODE}" src/main.ts list --allow-down --config "${file}"`;
    const tty = await new Promise<string>((resolve) => {
      const child = spawn("script", ["-qec", cmd, "/dev/null"], { cwd: ROOT });
      let text = "";
      child.stdout.on("data", (c: Buffer) => {
        text += c;
      });
      child.once("close", () => resolve(text));
    });
    expect(tty).toMatch(/\d\d:\d\d:\d\d\.\d{3} WARN {2}upstream down upstream=gone/);
    expect(tty).not.toMatch(/^\{"time"/m);

    const logFile = join(dirname(file), "toolgate.log");
    const logged = await runCli(["list", "--allow-down", "--log-file", logFile, "--config", file]);
    expect(logged.stderr).not.toContain("upstream down");
    const lines = (await readFile(logFile, "utf8")).trim().split("\n");
    expect(JSON.parse(lines[0] as string)).toMatchObject({ msg: "upstream down" });
  });
});

describe.concurrent("paths and state beside the config file", () => {
  it("the example config works from any directory", async ({ expect }) => {
    const elsewhere = await mkdtemp(join(tmpdir(), "toolgate-cwd-"));
    const run = await runCli(
      ["list", "--json", "--timeout", WAIT_MS, "--config", join(ROOT, "config/toolgate.example.json")],
      { TOOLGATE_MEMORY_FILE: join(elsewhere, "memory.jsonl") },
      elsewhere,
    );
    expect(run.stderr).not.toContain("down");
    expect(run.code).toBe(0);
    const states = JSON.parse(run.stdout).upstreams.map((u: { name: string; state: string }) => [
      u.name,
      u.state,
    ]);
    expect(states).toEqual([
      ["everything", "ready"],
      ["memory", "ready"],
      ["faults", "ready"],
    ]);
    // A look at the catalog leaves no state behind, in the working directory or beside the config.
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it("relative ./ paths and cwd resolve against the config's directory; a crash shows its useful stderr", async ({
    expect,
  }) => {
    const dir = await mkdtemp(join(tmpdir(), "toolgate-paths-"));
    await mkdir(join(dir, "servers"));
    await symlink(FAULT_SERVER, join(dir, "servers", "fault.ts"));
    const file = join(dir, "toolgate.json");
    await writeFile(
      file,
      JSON.stringify({
        mcpServers: {
          dotted: { command: NODE, args: ["./servers/fault.ts"] },
          incwd: { command: NODE, args: ["fault.ts"], cwd: "servers" },
          missing: { command: NODE, args: ["./servers/missing.mjs"] },
        },
        upstreams: { missing: { reconnect: { initialDelayMs: 60_000 } } },
      }),
    );
    const elsewhere = await mkdtemp(join(tmpdir(), "toolgate-cwd-"));
    const run = await runCli(["list", "--json", "--timeout", WAIT_MS, "--config", file], {}, elsewhere);
    expect(run.code).toBe(1);
    const byName = Object.fromEntries(
      JSON.parse(run.stdout).upstreams.map((u: { name: string }) => [u.name, u]),
    );
    expect(byName.dotted.state).toBe("ready");
    expect(byName.incwd.state).toBe("ready");
    expect(byName.missing.state).toBe("down");
    expect(byName.missing.lastError).toContain("Cannot find module");
    expect(byName.missing.lastError).toContain(join(dir, "servers", "missing.mjs"));
  });
});

describe.concurrent("client config files", () => {
  it("check reads a VS Code .vscode/mcp.json (JSONC, inputs, ${workspaceFolder}) and names what it ignores", async ({
    expect,
  }) => {
    const project = await mkdtemp(join(tmpdir(), "toolgate-vscode-"));
    await mkdir(join(project, ".vscode"));
    const file = join(project, ".vscode", "mcp.json");
    await writeFile(
      file,
      `{
  // as VS Code writes it
  "inputs": [{ "type": "promptString", "id": "api-key", "description": "API key", "password": true }],
  "servers": {
    "fs": { "type": "stdio", "command": "npx", "args": ["-y", "server-fs", "\${workspaceFolder}"], "envFile": ".env" },
    "api": { "type": "http", "url": "https://mcp.example.com/mcp", "headers": { "Authorization": "\${input:api-key}" } },
  },
}`,
    );
    const missing = await runCli(["check", "--config", file]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(
      'VS Code input "api-key" (API key) has no value here: set the environment variable API_KEY',
    );
    const run = await runCli(["check", "--config", file], { API_KEY: "Bearer k" });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("config ok: 2 upstream(s)");
    expect(run.stdout).toContain("warning: ignored server settings toolgate does not use: envFile");
    const printed = JSON.parse(
      (await runCli(["check", "--print", "--config", file], { API_KEY: "Bearer k" })).stdout,
    );
    expect(printed.upstreams[0].transport.args).toEqual(["-y", "server-fs", project]);
  });

  it("import writes a toolgate config from Zed's settings and says what it dropped", async ({ expect }) => {
    const dir = await mkdtemp(join(tmpdir(), "toolgate-import-"));
    const zed = join(dir, "settings.json");
    await writeFile(
      zed,
      JSON.stringify({
        theme: "One Dark",
        context_servers: { f: { source: "custom", command: NODE, args: [FAULT_SERVER] } },
      }),
    );
    const out = join(dir, "toolgate.json");
    const run = await runCli(["import", zed, "--out", out]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("dropped: top-level keys that are not toolgate settings: theme");
    expect(run.stderr).toContain("dropped: server settings toolgate does not use: source");
    expect(JSON.parse(await readFile(out, "utf8"))).toEqual({
      mcpServers: { f: { command: NODE, args: [FAULT_SERVER] } },
    });
    const check = await runCli(["check", "--config", out]);
    expect(check.code).toBe(0);
    expect(check.stdout).not.toContain("warning");
  });
});

describe.concurrent("toolgate pins", () => {
  async function heldSetup() {
    const file = await writeConfig({
      mcpServers: faultConfig().mcpServers,
      security: { pinning: { mode: "hold" } },
    });
    const { resolveConfig } = await import("../../src/config/load.ts");
    const { pinKey } = await import("../../src/catalog/pinning.ts");
    const upstream = resolveConfig(JSON.parse(await readFile(file, "utf8")), {}, { file }).config
      .upstreams[0];
    const key = pinKey(upstream as NonNullable<typeof upstream>);
    const pins = join(dirname(file), ".toolgate", "pins.json");
    await mkdir(dirname(pins));
    const pinnedAt = "2026-11-01T00:00:00.000Z";
    await writeFile(
      pins,
      JSON.stringify({
        version: 2,
        tools: {
          [key]: {
            echo: { hash: "sha256:old", pinnedAt, pending: { hash: "sha256:new", seenAt: pinnedAt } },
            fail: { hash: "sha256:kept", pinnedAt },
          },
          "other#000000000000": { echo: { hash: "sha256:x", pinnedAt } },
        },
      }),
    );
    return { file, pins };
  }

  it("prints a table of this config's pins, JSON with --json", async ({ expect }) => {
    const { file } = await heldSetup();
    const run = await runCli(["pins", "--config", file]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^UPSTREAM +TOOL +STATE +PINNED AT$/m);
    expect(run.stdout).toMatch(/^f +echo +changed: needs approval +2026-11-01/m);
    expect(run.stdout).toMatch(/^f +fail +pinned +2026-11-01/m);
    expect(run.stdout).not.toContain("other");
    expect(run.stdout).toContain(`toolgate pins approve f --config ${file}`);
    const json = await runCli(["pins", "--json", "--config", file]);
    expect(
      JSON.parse(json.stdout).map((p: { upstream: string; tool: string }) => `${p.upstream}/${p.tool}`),
    ).toEqual(["f/echo", "f/fail"]);
  });

  it("a held tool's error names the approve command with --config", async ({ expect }) => {
    const { file } = await heldSetup();
    const run = await runCli(["call", "--config", file, "f__echo", '{"text":"x"}']);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`toolgate pins approve f --config ${file}`);
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
