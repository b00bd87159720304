// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config values use ${VAR} interpolation
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type ConfigIssue,
  loadConfigFile,
  parseConfigText,
  resolveConfig,
} from "../../../src/config/load.ts";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";

/** The issues a config is rejected with (fails the test if it is accepted). */
function issuesOf(raw: unknown, env: NodeJS.ProcessEnv = {}): ConfigIssue[] {
  try {
    resolveConfig(raw, env);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe(ErrorCode.ConfigInvalid);
    return (err as GatewayError).data?.issues as ConfigIssue[];
  }
  throw new Error("config was accepted");
}

function messageOf(raw: unknown, env: NodeJS.ProcessEnv = {}): string {
  try {
    resolveConfig(raw, env);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("config was accepted");
}

const stdio = (env: Record<string, string>) => ({ mcpServers: { github: { command: "gh-mcp", env } } });
const envOf = (raw: unknown, env: NodeJS.ProcessEnv) => {
  const [upstream] = resolveConfig(raw, env).config.upstreams;
  return upstream?.transport.type === "stdio" ? upstream.transport.env : undefined;
};

describe("${VAR} interpolation", () => {
  it("replaces ${VAR}, ${env:VAR} and several references in one string", () => {
    const env = envOf(stdio({ A: "${TOKEN}", B: "Bearer ${env:TOKEN}", C: "${USER_NAME}@${HOST_NAME}" }), {
      TOKEN: "t0k",
      USER_NAME: "me",
      HOST_NAME: "box",
    });
    expect(env).toEqual({ A: "t0k", B: "Bearer t0k", C: "me@box" });
  });

  it("uses the default of ${VAR:-default} when the variable is unset or empty", () => {
    const raw = stdio({
      A: "${UNSET:-fallback}",
      B: "${EMPTY:-fallback}",
      C: "${SET:-fallback}",
      D: "${UNSET:-}",
    });
    expect(envOf(raw, { EMPTY: "", SET: "value" })).toEqual({
      A: "fallback",
      B: "fallback",
      C: "value",
      D: "",
    });
  });

  it("interpolates anywhere in the file, numbers and booleans untouched", () => {
    const { config } = resolveConfig(
      { gateway: { name: "${NAME}", listen: { port: 9000 } }, mcpServers: { a: { url: "${URL}/mcp" } } },
      { NAME: "gw", URL: "https://mcp.example.com" },
    );
    expect(config.gateway.name).toBe("gw");
    expect(config.gateway.listen.port).toBe(9000);
    expect(config.upstreams[0]?.transport).toMatchObject({
      type: "http",
      url: "https://mcp.example.com/mcp",
    });
  });

  it("rejects a missing variable with the JSON path of the value and how to give a default", () => {
    const issues = issuesOf({ mcpServers: { github: { command: "gh", args: ["--token", "${GH_TOKEN}"] } } });
    expect(issues).toEqual([
      {
        path: "$.mcpServers.github.args[1]",
        message: "environment variable GH_TOKEN is not set (use ${GH_TOKEN:-default} for a default)",
      },
    ]);
  });

  it("quotes path segments that are not identifiers", () => {
    const issues = issuesOf({ mcpServers: { "mcp.memory": { command: "m", env: { "X-KEY": "${NOPE}" } } } });
    expect(issues.map((i) => i.path)).toEqual(['$.mcpServers["mcp.memory"].env["X-KEY"]']);
  });

  it("reports every missing variable at once", () => {
    const issues = issuesOf(stdio({ A: "${ONE}", B: "${TWO}" }));
    expect(issues.map((i) => i.path)).toEqual(["$.mcpServers.github.env.A", "$.mcpServers.github.env.B"]);
  });

  it("records interpolated values as secrets, and leaves literal strings out", () => {
    const { secretValues } = resolveConfig(stdio({ A: "Bearer ${TOKEN}", B: "literal" }), {
      TOKEN: "s3cret",
    });
    expect([...secretValues]).toEqual(["Bearer s3cret"]);
  });
});

describe("strict schema", () => {
  it("names the path of an unknown key", () => {
    const message = messageOf({ mcpServers: { github: { comand: "gh" } } });
    expect(message).toContain("$.mcpServers.github.comand: unknown key");
  });

  it("reports each unknown key at its own path, at any depth, with the nearest valid key", () => {
    const issues = issuesOf({
      mcpServers: { a: { comand: "a" } },
      gateway: { lisen: {} },
      upstreams: { a: { policies: { retry: { attempts: 2 } } } },
      gatway: {},
      defaults: { zzz: 1 },
    });
    expect(issues.map((i) => `${i.path}: ${i.message}`).sort()).toEqual([
      "$.defaults.zzz: unknown key",
      '$.gateway.lisen: unknown key (did you mean "listen"?)',
      '$.gatway: unknown key (did you mean "gateway"?)',
      '$.mcpServers.a.comand: unknown key (did you mean "command"?)',
      '$.upstreams.a.policies.retry.attempts: unknown key (did you mean "maxAttempts"?)',
    ]);
  });

  it("says which names an upstream may have, not only that a key is invalid", () => {
    const issues = issuesOf({ mcpServers: { "my server!": { command: "a" }, ok: { command: "b" } } });
    expect(issues).toEqual([
      {
        path: '$.mcpServers["my server!"]',
        message:
          "not a valid name: upstream names are 1-64 of A-Z a-z 0-9 _ . - (they prefix the upstream's tool names), e.g. my-server",
      },
    ]);
  });

  it("ignores, with a warning, top-level keys of a client's file that are not toolgate settings", () => {
    const { config, warnings } = resolveConfig(
      { globalShortcut: "Ctrl+Space", mcpServers: { a: { command: "a" } } },
      {},
    );
    expect(config.upstreams.map((u) => u.name)).toEqual(["a"]);
    expect(warnings).toEqual(["ignored top-level keys that are not toolgate settings: globalShortcut"]);
  });

  it("accepts JSON with comments and trailing commas, and locates a syntax error", () => {
    const { config } = parseConfigText(
      '{ // servers\n "mcpServers": { "a": { "command": "a", }, }, }',
      "c.json",
      {},
    );
    expect(config.upstreams[0]?.name).toBe("a");
    expect(() => parseConfigText('{\n  "mcpServers": {\n    "a": }\n}', "c.json", {})).toThrow(
      /c\.json is not valid JSON: ValueExpected at line 3, column 10/,
    );
  });

  it("asks for a VS Code input's value in the environment, naming the input", () => {
    const raw = {
      inputs: [{ type: "promptString", id: "api-key", description: "The API key", password: true }],
      servers: { s: { command: "x", env: { KEY: "${input:api-key}" } } },
    };
    expect(messageOf(raw)).toContain(
      '$.servers.s.env.KEY: VS Code input "api-key" (The API key) has no value here: set the environment variable API_KEY',
    );
    const { config, secretValues } = resolveConfig(raw, { API_KEY: "k-123" });
    expect(config.upstreams[0]?.transport).toMatchObject({ env: { KEY: "k-123" } });
    expect(secretValues.has("k-123")).toBe(true);
  });

  it("names a Continue list entry without a name", () => {
    expect(issuesOf({ mcpServers: [{ command: "x" }] })).toEqual([
      { path: "$.mcpServers[0].name", message: "a server in a list needs a name" },
    ]);
  });

  it("rejects options for an upstream that is not in mcpServers", () => {
    const issues = issuesOf({
      mcpServers: { github: { command: "gh" } },
      upstreams: { gitlab: { prefix: "gl" } },
    });
    expect(issues).toEqual([{ path: "$.upstreams.gitlab", message: 'no server "gitlab" in mcpServers' }]);
  });

  it("rejects values of the wrong type or out of range, with their path", () => {
    const issues = issuesOf({
      mcpServers: { a: { command: "a", args: "not-an-array" } },
      gateway: { listen: { port: 70000 } },
      defaults: { retry: { maxAttempts: 0 } },
    });
    expect(issues.map((i) => i.path).sort()).toEqual([
      "$.defaults.retry.maxAttempts",
      "$.gateway.listen.port",
      "$.mcpServers.a.args",
    ]);
  });

  it("refuses a duration Node's timers cannot wait (over 2^31 − 1 ms), with its path and the limit", () => {
    const issues = issuesOf({
      mcpServers: { a: { command: "a" } },
      defaults: { retry: { maxDelayMs: 2 ** 31 }, breaker: { resetTimeoutMs: 30 * 86_400_000 } },
      tasks: { pollIntervalMs: 3e9 },
    });
    expect(issues.map((i) => i.path).sort()).toEqual([
      "$.defaults.breaker.resetTimeoutMs",
      "$.defaults.retry.maxDelayMs",
      "$.tasks.pollIntervalMs",
    ]);
    for (const issue of issues) expect(issue.message).toMatch(/at most 2147483647 ms \(about 24\.8 days\)/);
    // The limit itself is a valid setting.
    const { config } = resolveConfig(
      { mcpServers: { a: { command: "a" } }, defaults: { retry: { maxDelayMs: 2 ** 31 - 1 } } },
      {},
    );
    expect(config.defaults.retry?.maxDelayMs).toBe(2 ** 31 - 1);
  });

  it("rejects upstream names and prefixes outside the public-name alphabet", () => {
    expect(issuesOf({ mcpServers: { "my server": { command: "a" } } })[0]?.path).toBe(
      '$.mcpServers["my server"]',
    );
    const prefix = issuesOf({ mcpServers: { a: { command: "a" } }, upstreams: { a: { prefix: "a/b" } } });
    expect(prefix.map((i) => i.path)).toEqual(["$.upstreams.a.prefix"]);
  });

  it("requires mcpServers", () => {
    expect(issuesOf({}).map((i) => i.path)).toEqual(["$.mcpServers"]);
  });
});

describe("transports", () => {
  const transportOf = (entry: Record<string, unknown>) =>
    resolveConfig({ mcpServers: { s: entry } }, {}).config.upstreams[0]?.transport;

  it("infers stdio from a command, and ws, sse or Streamable HTTP from a url", () => {
    expect(transportOf({ command: "srv" })).toEqual({
      type: "stdio",
      command: "srv",
      args: [],
      env: {},
      cwd: undefined,
    });
    expect(transportOf({ url: "ws://127.0.0.1:1/mcp" })?.type).toBe("ws");
    expect(transportOf({ url: "https://h.example/v1/sse" })?.type).toBe("sse");
    expect(transportOf({ url: "https://h.example/sse/" })?.type).toBe("sse");
    expect(transportOf({ url: "https://h.example/sse-tools/mcp" })?.type).toBe("http");
  });

  it("normalizes the type spellings of MCP clients", () => {
    for (const type of ["http", "streamable-http", "streamableHttp"]) {
      expect(transportOf({ type, url: "https://h.example/x" })?.type).toBe("http");
    }
    expect(transportOf({ type: "websocket", url: "https://h.example/x" })?.type).toBe("ws");
    expect(transportOf({ type: "sse", url: "https://h.example/x" })?.type).toBe("sse");
  });

  it("drops disabled servers", () => {
    const { config } = resolveConfig({
      mcpServers: { on: { command: "a" }, off: { command: "b", disabled: true } },
    });
    expect(config.upstreams.map((u) => u.name)).toEqual(["on"]);
  });

  it("rejects a stdio server without a command and a remote server without a url", () => {
    expect(issuesOf({ mcpServers: { s: { type: "stdio", url: "https://h.example/mcp" } } })).toEqual([
      { path: "$.mcpServers.s.command", message: "a stdio server needs a command" },
    ]);
    expect(issuesOf({ mcpServers: { s: { type: "http" } } })).toEqual([
      { path: "$.mcpServers.s.url", message: "a remote server needs a url (or give a command for stdio)" },
    ]);
  });

  it("rejects a url whose scheme cannot reach the server's transport, and accepts http(s) for WebSocket", () => {
    const issues = issuesOf({
      mcpServers: {
        ftp: { url: "ftp://h.example/mcp" },
        sse: { type: "sse", url: "file:///sse" },
        ws: { type: "ws", url: "https://h.example/ws" },
        wss: { url: "wss://h.example/ws" },
        upper: { url: "HTTPS://h.example/mcp" },
      },
    });
    expect(issues).toEqual([
      {
        path: "$.mcpServers.ftp.url",
        message: "ftp:// cannot reach an http server: use http:// or https://",
      },
      {
        path: "$.mcpServers.sse.url",
        message: "file:// cannot reach an sse server: use http:// or https://",
      },
    ]);
  });

  it("rejects a server with both a command and a remote type", () => {
    const issues = issuesOf({
      mcpServers: { s: { type: "sse", command: "a", url: "https://h.example/sse" } },
    });
    expect(issues).toEqual([{ path: "$.mcpServers.s.command", message: "a remote server takes no command" }]);
  });
});

describe("config files", () => {
  it("parses YAML by extension, comments and anchors included", () => {
    const yaml = [
      "# shared retry settings",
      "defaults:",
      "  retry: &retry { maxAttempts: 5 }",
      "mcpServers:",
      "  a: { command: node, args: [a.js] }",
      "upstreams:",
      "  a:",
      "    policies: { retry: *retry }",
    ].join("\n");
    for (const file of ["toolgate.yaml", "toolgate.YML"]) {
      const { config } = parseConfigText(yaml, file, {});
      expect(config.defaults.retry.maxAttempts).toBe(5);
      expect(config.upstreams[0]?.policy.retry.maxAttempts).toBe(5);
    }
  });

  it("reports a YAML or JSON syntax error at $ with the file name", () => {
    expect(() => parseConfigText("mcpServers: [unclosed", "bad.yaml", {})).toThrow(
      /\$: bad\.yaml is not valid YAML/,
    );
    expect(() => parseConfigText("{ mcpServers: ", "bad.json", {})).toThrow(
      /\$: bad\.json is not valid JSON/,
    );
  });

  it("reads a file from disk, and names a file it cannot read", async () => {
    const dir = await mkdtemp(join(tmpdir(), "toolgate-config-"));
    const file = join(dir, "toolgate.json");
    await writeFile(file, JSON.stringify({ mcpServers: { a: { command: "${CMD}" } } }));
    const { config } = await loadConfigFile(file, { CMD: "node" });
    expect(config.upstreams[0]?.transport).toMatchObject({ command: "node" });
    await expect(loadConfigFile(join(dir, "missing.json"))).rejects.toThrow(/cannot read .*missing\.json/);
  });
});

describe("paths relative to the config file", () => {
  const transportOf = (entry: Record<string, unknown>, file?: string) =>
    resolveConfig({ mcpServers: { s: entry } }, {}, { file }).config.upstreams[0]?.transport;

  it("resolves a relative cwd, and ./ or ../ commands and arguments, against the config file's directory", () => {
    const file = "/etc/toolgate/toolgate.json";
    expect(
      transportOf({ command: "./bin/server", args: ["../data/x.db", "plain", "/abs", "-v"] }, file),
    ).toMatchObject({
      command: "/etc/toolgate/bin/server",
      args: ["/etc/data/x.db", "plain", "/abs", "-v"],
      cwd: undefined,
    });
    // With a cwd, the child resolves its own relative paths against it.
    expect(transportOf({ command: "./server", args: ["./x"], cwd: "srv" }, file)).toMatchObject({
      command: "./server",
      args: ["./x"],
      cwd: "/etc/toolgate/srv",
    });
    expect(transportOf({ command: "npx", args: ["-y", "pkg"], cwd: "/opt" }, file)).toMatchObject({
      command: "npx",
      cwd: "/opt",
    });
  });

  it("keeps state beside the config file unless gateway.stateDir says otherwise", () => {
    const at = (raw: Record<string, unknown>) =>
      resolveConfig({ mcpServers: {}, ...raw }, {}, { file: "/etc/toolgate/toolgate.json" }).config;
    expect(at({}).gateway.stateDir).toBe("/etc/toolgate/.toolgate");
    expect(at({}).security.pinning.file).toBe("/etc/toolgate/.toolgate/pins.json");
    expect(at({ gateway: { stateDir: "/var/lib/toolgate" } }).security.pinning.file).toBe(
      "/var/lib/toolgate/pins.json",
    );
    expect(at({ gateway: { stateDir: "state" } }).gateway.stateDir).toBe("/etc/toolgate/state");
    expect(at({ security: { pinning: { file: "p.json" } } }).security.pinning.file).toBe(
      "/etc/toolgate/p.json",
    );
  });
});
