/**
 * The `toolgate` CLI: argv, env, signals and exit codes. The only module that reads `process.*`.
 */
import { watch } from "node:fs";
import { parseArgs } from "node:util";
import { createGateway, type Gateway } from "./app.ts";
import { ToolPins } from "./catalog/pinning.ts";
import { type LoadedConfig, loadConfigFile } from "./config/load.ts";
import { GatewayError, toGatewayError } from "./errors.ts";
import { createLogger } from "./telemetry/log.ts";

const USAGE = `toolgate: one MCP endpoint over many MCP servers, with policies and telemetry

Usage:
  toolgate serve --config FILE [--http PORT | --stdio] [--host HOST] [--watch]
  toolgate check --config FILE            validate; print the normalized config (secrets redacted)
  toolgate list  --config FILE [--json]   connect to the upstreams; print the aggregated catalog
  toolgate call  --config FILE NAME [JSON-ARGS] [--json]
  toolgate pins  --config FILE [approve UPSTREAM [TOOL]]
                                          list pinned tool definitions, or approve changed ones

Options:
  -c, --config FILE   config file (JSON or YAML; mcpServers-compatible)
  --http PORT         serve MCP over Streamable HTTP (/mcp) and WebSocket (/ws) on PORT
  --stdio             serve MCP over stdin/stdout (for clients that spawn toolgate)
  --host HOST         address to bind (default: gateway.listen.host, 127.0.0.1)
  --watch             reload the config when the file changes (SIGHUP always reloads)
  --json              machine-readable output
  --timeout MS        how long list/call wait for upstreams (default 15000)
  -h, --help          this text

Exit codes: 0 ok, 1 runtime failure (or an isError tool result), 2 usage or config error.`;

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

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
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? EXIT_OK : EXIT_USAGE;
  }
  try {
    if (!values.config) throw new UsageError("--config FILE is required");
    const loaded = await loadConfigFile(values.config, process.env);
    switch (command) {
      case "check":
        return check(loaded, values.json ?? false);
      case "serve":
        return await serve(loaded, values);
      case "list":
        return await list(loaded, values);
      case "call":
        return await call(loaded, rest, values);
      case "pins":
        return await pins(loaded, rest);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`toolgate: ${err.message}\n\n${USAGE}\n`);
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
      timeout: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}

type Values = ReturnType<typeof parse>["values"];

function check(loaded: LoadedConfig, json: boolean): number {
  const redacted = redact(loaded.config, loaded.secretValues);
  if (json) process.stdout.write(`${JSON.stringify(redacted, null, 2)}\n`);
  else {
    const upstreams = loaded.config.upstreams.map((u) => `  ${u.name} (${u.transport.type})`).join("\n");
    process.stdout.write(`config ok: ${loaded.config.upstreams.length} upstream(s)\n${upstreams}\n\n`);
    process.stdout.write(`${JSON.stringify(redacted, null, 2)}\n`);
  }
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

async function start(loaded: LoadedConfig, serving: boolean): Promise<Gateway> {
  const level = serving ? loaded.config.gateway.logLevel : "warn";
  const log = createLogger({ level });
  return createGateway(loaded.config, { log, env: process.env });
}

async function serve(loaded: LoadedConfig, values: Values): Promise<number> {
  if (values.stdio && values.http) throw new UsageError("choose one of --stdio and --http");
  const gateway = await start(loaded, true);
  const listen = loaded.config.gateway.listen;
  const host = values.host ?? listen.host;
  if (values.stdio) {
    await gateway.serveStdio(process.stdin, process.stdout);
  } else {
    const port = values.http === undefined ? listen.port : Number(values.http);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError(`--http needs a port, got "${values.http}"`);
    const bound = await gateway.serveHttp(host, port);
    const base = `${displayHost(host)}:${bound}`;
    const urls = { mcp: `http://${base}/mcp`, ws: `ws://${base}/ws`, status: `http://${base}/` };
    gateway.log.info("toolgate listening", urls);
    // The log is JSON for machines; a person at a terminal also gets the addresses in plain words.
    if (process.stderr.isTTY) {
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
  if (values.watch) {
    let timer: NodeJS.Timeout | undefined;
    watch(configFile, () => {
      clearTimeout(timer);
      timer = setTimeout(() => void reload("file changed"), 200);
    });
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
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

async function connectAll(loaded: LoadedConfig, values: Values): Promise<Gateway> {
  const gateway = await start(loaded, false);
  const timeoutMs = values.timeout ? Number(values.timeout) : 15_000;
  await gateway.waitForUpstreams(timeoutMs, (status) => {
    const era = status.era ? `, protocol ${status.era}` : "";
    const detail = status.state === "ready" ? `${status.tools} tools${era}` : (status.lastError ?? "");
    process.stderr.write(`  ${status.name}: ${status.state}${detail ? ` (${detail})` : ""}\n`);
  });
  return gateway;
}

async function list(loaded: LoadedConfig, values: Values): Promise<number> {
  process.stderr.write(`connecting to ${loaded.config.upstreams.length} upstream(s)…\n`);
  const gateway = await connectAll(loaded, values);
  try {
    const snapshot = gateway.snapshot();
    if (values.json) {
      process.stdout.write(`${JSON.stringify(snapshot, null, 2)}\n`);
      return EXIT_OK;
    }
    for (const up of snapshot.upstreams) {
      const error = up.lastError ? `, last error: ${up.lastError}` : "";
      process.stdout.write(`\n${up.name} [${up.transport}] ${up.state}${error}\n`);
      for (const tool of snapshot.tools.filter((t) => t.upstream === up.name)) {
        process.stdout.write(`  ${tool.name}${tool.description ? `  ${firstLine(tool.description)}` : ""}\n`);
      }
    }
    const counts = `${snapshot.tools.length} tools, ${snapshot.prompts.length} prompts, ${snapshot.resources.length} resources`;
    process.stdout.write(`\n${counts}\n`);
    for (const c of snapshot.collisions) process.stdout.write(`warning: ${c}\n`);
    return EXIT_OK;
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
  if (!name) throw new UsageError("call needs a tool NAME");
  let args: unknown = {};
  if (json !== undefined) {
    try {
      args = JSON.parse(json);
    } catch (err) {
      throw new UsageError(`arguments are not valid JSON: ${(err as Error).message}`);
    }
    if (!args || typeof args !== "object" || Array.isArray(args))
      throw new UsageError("arguments must be a JSON object");
  }
  const gateway = await connectAll(loaded, values);
  try {
    const result = await gateway.callTool(name, args as Record<string, unknown>, (p) => {
      const total = p.total === undefined ? "" : `/${p.total}`;
      process.stderr.write(`  progress ${p.progress}${total}${p.message ? ` ${p.message}` : ""}\n`);
    });
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else process.stdout.write(`${renderResult(result)}\n`);
    return result.isError === true ? EXIT_FAILURE : EXIT_OK;
  } finally {
    await gateway.stop();
  }
}

function renderResult(result: Record<string, unknown>): string {
  const content = Array.isArray(result.content) ? (result.content as Array<Record<string, unknown>>) : [];
  const parts = content.map((c) => (c.type === "text" ? String(c.text) : `[${String(c.type)} content]`));
  if (result.structuredContent !== undefined) parts.push(JSON.stringify(result.structuredContent, null, 2));
  return `${result.isError === true ? "error: " : ""}${parts.join("\n")}`;
}

async function pins(loaded: LoadedConfig, rest: string[]): Promise<number> {
  const store = await ToolPins.open(loaded.config.security.pinning.file);
  const [action, upstream, tool] = rest;
  if (action === undefined) {
    process.stdout.write(`${JSON.stringify(store.list(), null, 2)}\n`);
    return EXIT_OK;
  }
  if (action !== "approve" || !upstream) {
    throw new UsageError("pins takes no argument (list) or: approve UPSTREAM [TOOL]");
  }
  const approved = await store.approve(upstream, tool);
  await store.flush();
  const what = approved.map((p) => `${p.upstream}/${p.tool}`).join(", ") || "nothing was pending";
  process.stdout.write(`approved: ${what}\n`);
  return EXIT_OK;
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
