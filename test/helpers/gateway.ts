/**
 * Test helpers: run toolgate as a real child process (`node src/main.ts serve`) or in this process, and
 * connect the official SDK Client to it over any downstream transport.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
import { createGateway, type Gateway } from "../../src/app.ts";
import { resolveConfig } from "../../src/config/load.ts";
import { createLogger, type Logger, silentLogger } from "../../src/telemetry/log.ts";
import type { Telemetry } from "../../src/telemetry/telemetry.ts";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const NODE = process.execPath;
export const FAULT_SERVER = join(ROOT, "test/fixtures/fault-server.ts");
export const EVERYTHING = join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
export const MEMORY = join(ROOT, "node_modules/@modelcontextprotocol/server-memory/dist/index.js");

export async function writeConfig(config: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "toolgate-test-"));
  const file = join(dir, "toolgate.json");
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  wsUrl: string;
  base: string;
  /** JSON log lines the gateway wrote to stderr so far. */
  logs: Array<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Spawn `toolgate serve --http 0` (a config object, or the path of a config file) and wait until it listens. */
export async function spawnGateway(
  config: unknown,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  const file = typeof config === "string" ? config : await writeConfig(config);
  const child = spawn(
    NODE,
    [join(ROOT, "src/main.ts"), "serve", "--config", file, "--http", "0", ...extraArgs],
    {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, ...env },
    },
  );
  const logs: Array<Record<string, unknown>> = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stderr as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        logs.push(record);
        if (record.msg === "toolgate listening") resolve(String(record.mcp));
      } catch {
        logs.push({ raw: line });
      }
    });
    exited.then((code) =>
      reject(new Error(`gateway exited with ${code}: ${JSON.stringify(logs.slice(-5))}`)),
    );
  });
  const url = await listening;
  const base = url.replace(/\/mcp$/, "");
  return {
    child,
    url,
    wsUrl: `${base.replace(/^http/, "ws")}/ws`,
    base,
    logs,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface InProcessGateway {
  gateway: Gateway;
  url: string;
  wsUrl: string;
  base: string;
  stop(): Promise<void>;
}

/** A logger at `warn` that keeps each line the gateway logs, as a JSON object, in `warnings`. */
export function warningsLogger(): { log: Logger; warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  return { log: createLogger({ level: "warn", sink: (line) => warnings.push(JSON.parse(line)) }), warnings };
}

/** Build and serve a gateway in this process on 127.0.0.1:0. */
export async function startGateway(
  raw: unknown,
  options: { verbose?: boolean; telemetry?: Telemetry; log?: Logger } = {},
): Promise<InProcessGateway> {
  const { config } = resolveConfig(raw, process.env);
  const log = options.log ?? (options.verbose ? createLogger({ level: "debug" }) : silentLogger);
  const gateway = await createGateway(config, { log, env: process.env, telemetry: options.telemetry });
  const port = await gateway.serveHttp("127.0.0.1", 0);
  const base = `http://127.0.0.1:${port}`;
  return {
    gateway,
    url: `${base}/mcp`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    base,
    stop: () => gateway.stop(),
  };
}

export type Downstream = "http" | "ws" | "stdio";

/** An SDK Client connected to the gateway over `kind`; stdio spawns `toolgate serve --stdio` with `configFile`. */
export async function connectClient(
  kind: Downstream,
  target: { url?: string; wsUrl?: string; configFile?: string },
  capabilities: ConstructorParameters<typeof Client>[1] = {},
): Promise<Client> {
  const client = new Client({ name: "toolgate-test", version: "1.0.0" }, capabilities);
  if (kind === "http") await client.connect(new StreamableHTTPClientTransport(new URL(must(target.url))));
  else if (kind === "ws") await client.connect(new WebSocketClientTransport(new URL(must(target.wsUrl))));
  else {
    await client.connect(
      new StdioClientTransport({
        command: NODE,
        args: [join(ROOT, "src/main.ts"), "serve", "--stdio", "--config", must(target.configFile)],
        cwd: ROOT,
        stderr: "ignore",
      }),
    );
  }
  return client;
}

function must<T>(v: T | undefined): T {
  if (v === undefined) throw new Error("missing connection target");
  return v;
}

/** The text of a tool result's first content item. */
export function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? "").join("");
}

/**
 * Poll `check` until it returns a truthy value. The bound only stops a test whose condition never comes
 * true: it is generous, because a loaded machine can take seconds to start a process or answer a request.
 */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
}
