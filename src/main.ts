/**
 * The `toolgate` CLI: argv, env, signals and exit codes. The only module that reads `process.*`.
 */
import { spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { createGateway, credentialStore, type Gateway } from "./app.ts";
import { pinKey, ToolPins } from "./catalog/pinning.ts";
import { fromClientFormat } from "./config/client-formats.ts";
import { type LoadedConfig, loadConfigFile, parseConfigSource } from "./config/load.ts";
import { watchConfigFile } from "./config/watch.ts";
import { assertNever, ErrorCode, GatewayError, toGatewayError } from "./errors.ts";
import { RedisPinStore } from "./stores/pins.ts";
import { type BatchProgress, runBatch } from "./tasks/batch.ts";
import { createLogger, type Logger, type LogLevel } from "./telemetry/log.ts";
import { login } from "./upstreams/auth/login.ts";
import { loginCommand, oauthClients } from "./upstreams/auth/oauth-provider.ts";
import { describeFailure } from "./upstreams/request-error.ts";

const VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** One line per subcommand in the overview; the full text with `toolgate SUB --help` or `toolgate help SUB`. */
const COMMANDS = {
  serve: {
    line: "serve --config FILE [--http PORT | --stdio] [--host HOST] [--watch]",
    help: `Serve MCP: over Streamable HTTP (/mcp) and WebSocket (/ws), or over stdin/stdout for a client that
spawns toolgate. SIGHUP (or --watch) reloads the config; SIGTERM and SIGINT drain calls and stop.

  --http PORT     listen on PORT (default: gateway.listen.port, 8080)
  --stdio         serve one client on stdin/stdout (logs go to stderr)
  --host HOST     address to bind (default: gateway.listen.host, 127.0.0.1)
  --watch         reload the config when the file changes
  --log-file F    append JSON logs to F instead of stderr

Exit codes: 0 clean stop, 1 failure, 2 usage or config error.`,
  },
  check: {
    line: "check --config FILE [--print | --json]",
    help: `Validate a config. Prints a short summary (upstreams, ignored keys of client config files, the state
directory); --print or --json print the normalized config instead (values from the environment redacted).

Exit codes: 0 valid, 2 invalid (each problem names its JSON path).`,
  },
  list: {
    line: "list --config FILE [--json] [--allow-down] [--timeout MS]",
    help: `Connect to every upstream (progress on stderr) and print the upstreams' states and the catalog.

  --json          the snapshot as JSON
  --allow-down    exit 0 even when some upstream is not ready
  --timeout MS    how long to wait for upstreams (default 15000)

Exit codes: 0 every upstream ready (or --allow-down), 1 some upstream not ready, 2 usage or config error.`,
  },
  call: {
    line: "call --config FILE NAME [JSON-ARGS] [--json]",
    help: `Call one tool (NAME as tools/list shows it) with JSON-ARGS (an object); progress goes to stderr.

  --json          print the whole result as JSON
  --timeout MS    how long to wait for upstreams (default 15000)

Exit codes: 0 ok, 1 error or an isError result, 2 usage or config error.`,
  },
  import: {
    line: "import FILE [--out F]",
    help: `Turn an MCP client's config file (Claude Desktop, Cursor, Claude Code, VS Code's .vscode/mcp.json,
Windsurf, Zed's settings.json, Continue's config.yaml) into a toolgate config: JSON on stdout or in F.
What toolgate does not use is dropped and listed on stderr; \${input:ID} becomes \${ID_IN_CAPITALS}
(set that environment variable). toolgate also reads these files directly with --config.

Exit codes: 0 written, 1 cannot write, 2 unreadable or invalid file.`,
  },
  auth: {
    line: "auth --config FILE (login UPSTREAM | status [--json] | logout UPSTREAM [--principal KIND:ID])",
    help: `Credentials of OAuth-protected upstreams (mcpServers.X.auth.oauth).

  login UPSTREAM  print (and on a desktop open) the authorization URL, wait for the browser on the
                  loopback callback, store the tokens (encrypted, in gateway.stateDir)
  status          each protected upstream: authorized / expired / needs authorization, with expiry
  logout UPSTREAM forget the upstream's tokens and client registration; for an upstream with
                  auth.oauth.perPrincipal, --principal KIND:ID (e.g. apiKey:alice) forgets that
                  principal's tokens (its next call gets the consent link again)

  --timeout MS    how long login waits for the browser (default 300000)

A running gateway picks up new credentials at its next reconnect. Set TOOLGATE_TOKEN_KEY to keep the
encryption key out of the state directory; TOOLGATE_NO_BROWSER=1 never opens a browser.

Exit codes: 0 ok, 1 failure (consent refused or timed out), 2 usage or config error.`,
  },
  batch: {
    line: "batch --config FILE CALLS.jsonl [--parallel N]",
    help: `Run many calls through the gateway's policies without an MCP client: one {"tool", "arguments",
"priority"} per line of CALLS.jsonl; one JSON result line per call on stdout (in input order), a live
progress line on stderr. Higher priorities are admitted first by the bounded queues.

  --parallel N    calls in flight at once (default 16)
  --timeout MS    how long to wait for upstreams (default 15000)

Exit codes: 0 every call answered without error, 1 some call failed, 2 usage or config error.`,
  },
  approvals: {
    line: "approvals --config FILE [approve|deny ID] [--url URL]",
    help: `List, or decide, the calls a running gateway holds for an operator (tool policy approval: "always").
The operator's key comes from TOOLGATE_API_KEY.

  --url URL       the running gateway (default: gateway.listen of the config)

Exit codes: 0 ok, 1 failure, 2 usage or config error.`,
  },
  pins: {
    line: "pins --config FILE [--json] [approve UPSTREAM [TOOL]]",
    help: `List the pinned tool definitions of this config's upstreams (a table; --json for JSON), or approve the
changed definitions of an upstream (or of one of its tools). The gateway serves approved tools after a
reload (SIGHUP). Pins are kept in gateway.stateDir (default: .toolgate beside the config file), or in Redis
with cluster.redis (or TOOLGATE_REDIS_URL), where an approval reaches every replica at once.

Exit codes: 0 ok, 1 failure, 2 usage or config error.`,
  },
} as const;

type Command = keyof typeof COMMANDS;

const USAGE = `toolgate ${VERSION}: one MCP endpoint over many MCP servers, with policies and telemetry

Usage:
${Object.values(COMMANDS)
  .map((c) => `  toolgate ${c.line}`)
  .join("\n")}
  toolgate help [COMMAND]                 the help of one command (or: toolgate COMMAND --help)

Options:
  -c, --config FILE   config file: JSON, JSONC or YAML; toolgate's own format or an MCP client's
                      (Claude Desktop, Cursor, Claude Code, VS Code, Windsurf, Zed, Continue)
  --log-file FILE     append JSON logs to FILE (default: stderr, readable text on a terminal, else JSON)
  -h, --help          this text
  -V, --version       the version

Exit codes: 0 ok, 1 runtime failure (or an isError tool result, or an upstream down for list), 2 usage or
config error.`;

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {
  readonly command: Command | undefined;
  constructor(message: string, command?: Command) {
    super(message);
    this.command = command;
  }
}

/** A whole number of at least 1 given as `--option` (absent: `fallback`); a usage error of `command` otherwise. */
function positiveInteger(
  value: string | undefined,
  option: string,
  fallback: number,
  command?: Command,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${option} needs a positive integer, got ${JSON.stringify(value)}`, command);
  }
  return n;
}

/** Standard output; a reader that went away (`toolgate list | head -1`) ends the output, not the process. */
let stdoutOpen = true;
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
  stdoutOpen = false;
});
function out(text: string): void {
  if (stdoutOpen) process.stdout.write(text);
}

function isCommand(name: string): name is Command {
  return Object.hasOwn(COMMANDS, name);
}

function commandHelp(command: Command): string {
  return `Usage: toolgate ${COMMANDS[command].line}\n\n${COMMANDS[command].help}`;
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    process.stderr.write(`toolgate: ${(err as Error).message}\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.version) {
    out(`toolgate ${VERSION}\n`);
    return EXIT_OK;
  }
  if (command === "help") {
    const topic = rest[0];
    if (topic !== undefined && !isCommand(topic)) {
      process.stderr.write(`toolgate: unknown command "${topic}"\n\n${USAGE}\n`);
      return EXIT_USAGE;
    }
    out(`${topic === undefined ? USAGE : commandHelp(topic)}\n`);
    return EXIT_OK;
  }
  if (!command) {
    out(`${USAGE}\n`);
    return values.help ? EXIT_OK : EXIT_USAGE;
  }
  if (!isCommand(command)) {
    process.stderr.write(`toolgate: unknown command "${command}"\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (values.help) {
    out(`${commandHelp(command)}\n`);
    return EXIT_OK;
  }
  try {
    if (command === "import") return await importFile(rest, values);
    if (!values.config) throw new UsageError("--config FILE is required", command);
    const loaded = await loadConfigFile(values.config, process.env);
    switch (command) {
      case "check":
        return check(loaded, values);
      case "serve":
        return await serve(loaded, values);
      case "list":
        return await list(loaded, values);
      case "call":
        return await call(loaded, rest, values);
      case "batch":
        return await batch(loaded, rest, values);
      case "approvals":
        return await approvals(loaded, rest, values);
      case "pins":
        return await pins(loaded, rest, values);
      case "auth":
        return await authCommand(loaded, rest, values);
      default:
        return assertNever(command);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const help = err.command ? commandHelp(err.command) : USAGE;
      process.stderr.write(`toolgate: ${err.message}\n\n${help}\n`);
      return EXIT_USAGE;
    }
    const e = toGatewayError(err);
    process.stderr.write(`toolgate: ${e.message}\n`);
    return e.code === "ConfigInvalid" ? EXIT_USAGE : EXIT_FAILURE;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      http: { type: "string" },
      stdio: { type: "boolean" },
      host: { type: "string" },
      watch: { type: "boolean" },
      json: { type: "boolean" },
      print: { type: "boolean" },
      "allow-down": { type: "boolean" },
      "log-file": { type: "string" },
      out: { type: "string" },
      timeout: { type: "string" },
      parallel: { type: "string" },
      url: { type: "string" },
      principal: { type: "string" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "V" },
    },
  });
}

type Values = ReturnType<typeof parse>["values"];

function check(loaded: LoadedConfig, values: Values): number {
  const { config } = loaded;
  if (values.print || values.json) {
    out(`${JSON.stringify(redact(config, loaded.secretValues), null, 2)}\n`);
    return EXIT_OK;
  }
  const lines = [`config ok: ${config.upstreams.length} upstream(s)`];
  for (const u of config.upstreams) lines.push(`  ${u.name} (${u.transport.type})`);
  for (const w of loaded.warnings) lines.push(`warning: ${w}`);
  lines.push(`state: ${config.gateway.stateDir}`, "(--print shows the normalized config)");
  out(`${lines.join("\n")}\n`);
  return EXIT_OK;
}

/** Values that came from `${ENV}` are replaced, so `check` never prints a secret. */
function redact(value: unknown, secrets: Set<string>): unknown {
  if (typeof value === "string") return secrets.has(value) ? "<redacted: from environment>" : value;
  if (Array.isArray(value)) return value.map((v) => redact(v, secrets));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, secrets)]));
  }
  return value;
}

/** Logs: `--log-file` gets JSON; stderr gets readable text on a terminal and JSON otherwise. */
function logger(level: LogLevel, values: Values): Logger {
  const file = values["log-file"];
  if (file) {
    const stream = createWriteStream(file, { flags: "a" });
    return createLogger({ level, format: "json", sink: (line) => stream.write(line) });
  }
  return createLogger({ level, format: process.stderr.isTTY ? "text" : "json" });
}

async function start(loaded: LoadedConfig, values: Values, serving: boolean): Promise<Gateway> {
  const level = serving ? loaded.config.gateway.logLevel : "warn";
  const log = logger(level, values);
  for (const warning of loaded.warnings) log.warn(warning);
  // A look (list, call) checks pins without writing them: it leaves no state behind.
  return createGateway(loaded.config, {
    log,
    env: process.env,
    pinsReadOnly: !serving,
    processWideTelemetry: serving,
  });
}

/** `auth login UPSTREAM` (consent in a browser), `auth status`, `auth logout UPSTREAM`. */
async function authCommand(loaded: LoadedConfig, rest: string[], values: Values): Promise<number> {
  const [action, name] = rest;
  const store = credentialStore(loaded.config, process.env);
  const clients = oauthClients(store, (upstream) => loginCommand(upstream, loaded.config.configFile));
  const protectedUpstreams = loaded.config.upstreams.flatMap((u) => {
    const client = clients(u.name, u.transport);
    return client ? [client] : [];
  });
  const pick = () => {
    const client = protectedUpstreams.find((c) => c.upstream === name);
    if (!client) {
      const names = protectedUpstreams.map((c) => c.upstream).join(", ") || "none";
      throw new UsageError(`auth ${action} needs an upstream with auth.oauth (configured: ${names})`, "auth");
    }
    return client;
  };
  switch (action) {
    case "status": {
      const rows: Array<{
        upstream: string;
        url: string;
        state: string;
        expiresAt?: string;
        issuer?: string;
      }> = await Promise.all(
        protectedUpstreams.map(async (c) => {
          if (!c.options.perPrincipal)
            return { upstream: c.upstream, url: c.serverUrl, ...(await c.describe()) };
          // Tokens are each principal's own; the shared entry names whose tokens the catalog uses.
          const shared = await store.get(c.key);
          const issuer = shared?.discovery?.authorizationServerUrl;
          return {
            upstream: c.upstream,
            url: c.serverUrl,
            state: "per principal",
            ...(shared?.catalogPrincipal && { catalogPrincipal: shared.catalogPrincipal }),
            ...(issuer && { issuer }),
          };
        }),
      );
      if (values.json) out(`${JSON.stringify(rows, null, 2)}\n`);
      else if (rows.length === 0) out("no upstream uses OAuth\n");
      else {
        for (const r of rows) {
          const until = r.expiresAt ? `, expires ${r.expiresAt}` : "";
          out(`${r.upstream}  ${r.state}${until}${r.issuer ? `  (issuer ${r.issuer})` : ""}\n`);
        }
      }
      return EXIT_OK;
    }
    case "login": {
      const client = pick();
      if (client.options.perPrincipal) {
        throw new UsageError(
          `upstream "${client.upstream}" has per-principal credentials (auth.oauth.perPrincipal): each principal connects their own account at the gateway's /oauth/upstreams/${client.upstream}/authorize`,
          "auth",
        );
      }
      const timeoutMs = positiveInteger(values.timeout, "--timeout", 5 * 60_000, "auth");
      await login(client, {
        timeoutMs,
        onAuthorizationUrl: (url) => {
          process.stderr.write(
            `Open this URL to authorize toolgate for "${client.upstream}":\n\n  ${url.href}\n\nwaiting for the browser on ${client.redirectUrl} …\n`,
          );
          openBrowser(url.href);
        },
      });
      const state = await client.describe();
      out(`${client.upstream}: ${state.state}${state.expiresAt ? `, expires ${state.expiresAt}` : ""}\n`);
      return EXIT_OK;
    }
    case "logout": {
      const client = pick();
      if (client.options.perPrincipal) {
        if (!values.principal) {
          throw new UsageError(
            `upstream "${client.upstream}" has per-principal credentials: name whose with --principal KIND:ID (e.g. apiKey:alice)`,
            "auth",
          );
        }
        await store.delete(`${client.key} principal ${values.principal}`);
        out(`${client.upstream}: credentials of ${values.principal} removed\n`);
        return EXIT_OK;
      }
      await store.delete(client.key);
      out(`${client.upstream}: credentials removed\n`);
      return EXIT_OK;
    }
    default:
      throw new UsageError("auth takes: login UPSTREAM | status | logout UPSTREAM", "auth");
  }
}

/** On a desktop, open the consent page; on a server nothing happens and the printed URL serves. */
function openBrowser(url: string): void {
  if (
    process.env.TOOLGATE_NO_BROWSER ||
    !(process.env.DISPLAY || process.env.WAYLAND_DISPLAY || process.platform === "darwin")
  )
    return;
  const opener = process.platform === "darwin" ? "open" : "xdg-open";
  spawn(opener, [url], { stdio: "ignore", detached: true })
    .on("error", () => {})
    .unref();
}

async function serve(loaded: LoadedConfig, values: Values): Promise<number> {
  if (values.stdio && values.http) throw new UsageError("choose one of --stdio and --http", "serve");
  const listen = loaded.config.gateway.listen;
  const host = values.host ?? listen.host;
  const port = values.http === undefined ? listen.port : Number(values.http);
  // Checked before the gateway starts its upstreams.
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--http needs a port, got "${values.http}"`, "serve");
  const gateway = await start(loaded, values, true);
  if (values.stdio) {
    await gateway.serveStdio(process.stdin, process.stdout);
  } else {
    const bound = await gateway.serveHttp(host, port);
    const base = `${displayHost(host)}:${bound}`;
    const urls = { mcp: `http://${base}/mcp`, ws: `ws://${base}/ws`, status: `http://${base}/` };
    gateway.log.info("toolgate listening", urls);
    // A person at a terminal also gets the addresses in plain words.
    if (process.stderr.isTTY && !values["log-file"]) {
      process.stderr.write(
        `\ntoolgate is serving ${loaded.config.upstreams.length} upstream(s)\n` +
          `  MCP (Streamable HTTP)  ${urls.mcp}\n  MCP (WebSocket)        ${urls.ws}\n` +
          `  status page            ${urls.status}\n  metrics                http://${base}/metrics\n\n`,
      );
    }
  }
  const configFile = values.config as string;
  const reload = async (why: string) => {
    try {
      const next = await loadConfigFile(configFile, process.env);
      await gateway.reload(next.config);
      gateway.log.info("config reloaded", { why });
    } catch (err) {
      gateway.log.error("config reload rejected; the running config stays", {
        why,
        error: toGatewayError(err).message,
      });
    }
  };
  process.on("SIGHUP", () => void reload("SIGHUP"));
  const unwatch = values.watch ? watchConfigFile(configFile, () => void reload("file changed")) : undefined;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      unwatch?.(); // a save during shutdown reloads nothing
      gateway.log.info("shutting down", { signal });
      gateway.stop().then(
        () => resolve(EXIT_OK),
        (err) => {
          gateway.log.error("shutdown failed", { err });
          resolve(EXIT_FAILURE);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
    if (values.stdio) process.stdin.once("end", () => stop("stdin closed"));
  });
}

function displayHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

async function connectAll(loaded: LoadedConfig, values: Values, command: Command): Promise<Gateway> {
  const timeoutMs = positiveInteger(values.timeout, "--timeout", 15_000, command);
  process.stderr.write(`connecting to ${loaded.config.upstreams.length} upstream(s)…\n`);
  const gateway = await start(loaded, values, false);
  await gateway.waitForUpstreams(timeoutMs, (status) => {
    const era = status.era ? `, protocol ${status.era}` : "";
    const detail = status.state === "ready" ? `${status.tools} tools${era}` : (status.lastError ?? "");
    process.stderr.write(`  ${status.name}: ${status.state}${detail ? ` (${detail})` : ""}\n`);
  });
  return gateway;
}

async function list(loaded: LoadedConfig, values: Values): Promise<number> {
  const gateway = await connectAll(loaded, values, "list");
  try {
    const snapshot = gateway.snapshot();
    if (values.json) out(`${JSON.stringify(snapshot, null, 2)}\n`);
    else {
      for (const up of snapshot.upstreams) {
        const error = up.lastError ? `, last error: ${up.lastError.replaceAll("\n", "\n    ")}` : "";
        out(`\n${up.name} [${up.transport}] ${up.state}${error}\n`);
        for (const tool of snapshot.tools.filter((t) => t.upstream === up.name)) {
          out(`  ${tool.name}${tool.description ? `  ${firstLine(tool.description)}` : ""}\n`);
        }
      }
      const counts = `${snapshot.tools.length} tools, ${snapshot.prompts.length} prompts, ${snapshot.resources.length} resources`;
      out(`\n${counts}\n`);
      for (const c of snapshot.collisions) out(`warning: ${c}\n`);
    }
    const notReady = snapshot.upstreams.filter((u) => u.state !== "ready").map((u) => u.name);
    if (notReady.length === 0 || values["allow-down"]) return EXIT_OK;
    process.stderr.write(
      `toolgate: ${notReady.length} upstream(s) not ready: ${notReady.join(", ")} (--allow-down exits 0 anyway)\n`,
    );
    return EXIT_FAILURE;
  } finally {
    await gateway.stop();
  }
}

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > 80 ? `${line.slice(0, 77)}…` : line;
}

async function call(loaded: LoadedConfig, rest: string[], values: Values): Promise<number> {
  const [name, json] = rest;
  if (!name) throw new UsageError("call needs a tool NAME", "call");
  let args: unknown = {};
  if (json !== undefined) {
    try {
      args = JSON.parse(json);
    } catch (err) {
      throw new UsageError(`arguments are not valid JSON: ${(err as Error).message}`, "call");
    }
    if (!args || typeof args !== "object" || Array.isArray(args))
      throw new UsageError("arguments must be a JSON object", "call");
  }
  const gateway = await connectAll(loaded, values, "call");
  try {
    const result = await gateway.callTool(name, args as Record<string, unknown>, (p) => {
      const total = p.total === undefined ? "" : `/${p.total}`;
      process.stderr.write(`  progress ${p.progress}${total}${p.message ? ` ${p.message}` : ""}\n`);
    });
    if (values.json) out(`${JSON.stringify(result, null, 2)}\n`);
    else out(`${renderResult(result)}\n`);
    return result.isError === true ? EXIT_FAILURE : EXIT_OK;
  } finally {
    await gateway.stop();
  }
}

async function batch(loaded: LoadedConfig, rest: string[], values: Values): Promise<number> {
  const [file] = rest;
  if (!file) throw new UsageError("batch needs a JSON Lines FILE", "batch");
  const parallel = positiveInteger(values.parallel, "--parallel", 16, "batch");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, "batch");
  }
  const gateway = await connectAll(loaded, values, "batch");
  const tty = process.stderr.isTTY === true;
  let shown = -1;
  const show = (p: BatchProgress) => {
    const line = `  ${p.done}/${p.total} answered, ${p.failed} failed`;
    if (tty) process.stderr.write(`\r${bar(p)} ${line}`);
    else {
      // Without a terminal, one line per tenth.
      const tenth = Math.floor((p.done * 10) / Math.max(1, p.total));
      if (tenth !== shown || p.done === p.total) process.stderr.write(`${line}\n`);
      shown = tenth;
    }
  };
  try {
    const outcome = await runBatch(text, {
      parallel,
      call: (tool, args, priority) => gateway.callTool(tool, args, undefined, { priority }),
      write: (json) => process.stdout.write(`${json}\n`),
      progress: show,
    });
    if (tty) process.stderr.write("\n");
    return outcome.failed > 0 ? EXIT_FAILURE : EXIT_OK;
  } finally {
    await gateway.stop();
  }
}

async function approvals(loaded: LoadedConfig, rest: string[], values: Values): Promise<number> {
  const [action, id] = rest;
  if (action !== undefined && ((action !== "approve" && action !== "deny") || !id)) {
    throw new UsageError("approvals takes no argument (list) or: approve ID | deny ID");
  }
  const { host, port } = loaded.config.gateway.listen;
  const base = (values.url ?? `http://${displayHost(host)}:${port}`).replace(/\/$/, "");
  const key = process.env.TOOLGATE_API_KEY;
  const response = await fetch(
    action ? `${base}/approvals/${encodeURIComponent(id as string)}/${action}` : `${base}/approvals`,
    {
      method: action ? "POST" : "GET",
      headers: key ? { authorization: `Bearer ${key}` } : {},
    },
  ).catch((err: unknown) => {
    throw new GatewayError(
      "UpstreamUnavailable",
      `cannot reach the gateway at ${base} (--url names another): ${describeFailure(err)}`,
    );
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const error = body.error as { message?: string } | undefined;
    process.stderr.write(`toolgate: ${error?.message ?? `HTTP ${response.status}`}\n`);
    return EXIT_FAILURE;
  }
  if (action) {
    process.stdout.write(`${action === "approve" ? "approved" : "denied"}: ${id}\n`);
    return EXIT_OK;
  }
  const pending = (body.pending ?? []) as Array<Record<string, string>>;
  if (values.json) process.stdout.write(`${JSON.stringify(pending, null, 2)}\n`);
  else if (pending.length === 0) process.stdout.write("no call is waiting for approval\n");
  else {
    for (const p of pending) {
      process.stdout.write(
        `${p.id}  ${p.tool} (upstream ${p.upstream}) by ${p.principal} at ${p.createdAt}\n  arguments: ${p.arguments}\n`,
      );
    }
  }
  return EXIT_OK;
}

function bar(p: BatchProgress): string {
  const width = 30;
  const filled = Math.round((p.done / Math.max(1, p.total)) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

function renderResult(result: Record<string, unknown>): string {
  const content = Array.isArray(result.content) ? (result.content as Array<Record<string, unknown>>) : [];
  const parts = content.map(renderContent);
  if (result.structuredContent !== undefined) parts.push(JSON.stringify(result.structuredContent, null, 2));
  return `${result.isError === true ? "error: " : ""}${parts.join("\n")}`;
}

/** One content block for a person: text as it is, anything else named with what identifies it (--json has all). */
function renderContent(c: Record<string, unknown>): string {
  const size = (data: unknown) =>
    typeof data === "string" ? `, ${Math.round((data.length * 3) / 4 / 102.4) / 10} KiB` : "";
  switch (c.type) {
    case "text":
      return String(c.text);
    case "image":
    case "audio":
      return `[${c.type}: ${String(c.mimeType)}${size(c.data)}]`;
    case "resource_link":
      return `[resource link: ${String(c.uri)}${c.name ? ` (${String(c.name)})` : ""}]`;
    case "resource": {
      const resource = (c.resource ?? {}) as Record<string, unknown>;
      return typeof resource.text === "string"
        ? `[resource ${String(resource.uri)}]\n${resource.text}`
        : `[resource ${String(resource.uri)}: ${String(resource.mimeType ?? "binary")}${size(resource.blob)}]`;
    }
    default:
      return `[${String(c.type)} content]`;
  }
}

async function pins(loaded: LoadedConfig, rest: string[], values: Values): Promise<number> {
  const { config } = loaded;
  const { cluster } = config;
  // With cluster.redis (or TOOLGATE_REDIS_URL) the replicas share pins in Redis: read and approve them there.
  const where =
    cluster.redis === undefined
      ? config.security.pinning.file
      : await RedisPinStore.connect(cluster.redis, cluster.keyPrefix, cluster.commandTimeoutMs);
  try {
    return await pinsIn(await ToolPins.open(where), loaded, rest, values);
  } finally {
    if (typeof where !== "string") await where.close();
  }
}

async function pinsIn(
  store: ToolPins,
  loaded: LoadedConfig,
  rest: string[],
  values: Values,
): Promise<number> {
  const { config } = loaded;
  const unreadable = store.unreadable;
  if (unreadable !== undefined) {
    throw new GatewayError(
      ErrorCode.Internal,
      `cannot read the tool pins (${store.store.where}): ${unreadable}`,
    );
  }
  // This config's upstreams by pin key: pins of other servers that share the state directory stay out of it.
  const names = new Map(config.upstreams.map((u) => [pinKey(u), u.name]));
  const [action, upstream, tool] = rest;
  if (action === undefined) {
    const entries = store
      .list()
      .filter((p) => names.has(p.upstream))
      .map((p) => ({ ...p, key: p.upstream, upstream: names.get(p.upstream) as string }));
    if (values.json) out(`${JSON.stringify(entries, null, 2)}\n`);
    else if (entries.length === 0)
      out(`no pins yet (${store.store.where}); the gateway pins tools as it first sees them\n`);
    else {
      const rows = entries.map((p) => [
        p.upstream,
        p.tool,
        p.pending ? "changed: needs approval" : "pinned",
        p.pinnedAt,
      ]);
      out(`${table(["UPSTREAM", "TOOL", "STATE", "PINNED AT"], rows)}\n`);
      const changed = new Set(entries.filter((p) => p.pending).map((p) => p.upstream));
      for (const name of changed)
        out(`approve with: toolgate pins approve ${name} --config ${values.config}\n`);
    }
    return EXIT_OK;
  }
  if (action !== "approve" || !upstream) {
    throw new UsageError("pins takes no argument (list) or: approve UPSTREAM [TOOL]", "pins");
  }
  const configured = config.upstreams.find((u) => u.name === upstream);
  if (!configured) throw new UsageError(`no upstream "${upstream}" in ${values.config}`, "pins");
  const approved = await store.approve(pinKey(configured), tool);
  await store.flush();
  const what = approved.map((p) => `${upstream}/${p.tool}`).join(", ") || "nothing was pending";
  out(`approved: ${what}\n`);
  return EXIT_OK;
}

async function importFile(rest: string[], values: Values): Promise<number> {
  const [file] = rest;
  if (!file || rest.length > 1) throw new UsageError("import needs one FILE", "import");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new GatewayError(ErrorCode.ConfigInvalid, `cannot read ${file}: ${(err as Error).message}`);
  }
  const adapted = fromClientFormat(parseConfigSource(text, file), {
    file: resolve(file),
    env: process.env,
    checkInputs: false,
  });
  if (adapted.issues.length) {
    const lines = adapted.issues.map((i) => `  ${i.path}: ${i.message}`).join("\n");
    throw new GatewayError(ErrorCode.ConfigInvalid, `cannot import ${file}:\n${lines}`);
  }
  for (const warning of adapted.warnings)
    process.stderr.write(`dropped: ${warning.replace(/^ignored /, "")}\n`);
  const json = `${JSON.stringify(adapted.raw, null, 2)}\n`;
  if (values.out) {
    await writeFile(values.out, json);
    process.stderr.write(`wrote ${values.out}; check it with: toolgate check --config ${values.out}\n`);
  } else out(json);
  return EXIT_OK;
}

/** Columns padded to their widest cell. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Upstream child processes and sockets are closed by now; exit rather than wait for stray handles.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (err: unknown) => {
    process.stderr.write(
      `toolgate: unexpected failure: ${err instanceof GatewayError ? err.message : String(err)}\n`,
    );
    process.exit(EXIT_FAILURE);
  },
);
