/**
 * "Paste your existing config": the files MCP clients write, turned into toolgate's shape before the strict
 * schema sees them. Claude Desktop, Cursor and Claude Code (`mcpServers`), VS Code (`servers` + `inputs`,
 * `${workspaceFolder}`, `${input:ID}`), Windsurf (`serverUrl`), Zed (`context_servers`) and Continue
 * (`mcpServers` as a list). A client's own settings are dropped with a warning; toolgate's own keys stay
 * strict, so a misspelt toolgate key is still an error.
 */
import { homedir } from "node:os";
import { basename, dirname } from "node:path";
import { type ConfigIssue, childPath } from "./issues.ts";
import { ConfigSchema } from "./schema.ts";

/** Top-level keys toolgate owns (its schema rejects anything else): read from the schema, never listed twice. */
const OWN_KEYS = Object.keys(ConfigSchema.shape);

/** Top-level keys of clients' files that resemble toolgate's (Continue's `schema`): never taken for a typo. */
const CLIENT_TOP_KEYS = new Set([
  "schema",
  "name",
  "version",
  "models",
  "rules",
  "prompts",
  "context",
  "docs",
]);

/** Keys of a client's server entry that toolgate has no use for: dropped, and said so. */
const CLIENT_ENTRY_KEYS = new Set([
  "envFile", // VS Code
  "dev", // VS Code
  "source", // Zed
  "settings", // Zed
  "requestOptions", // Continue
  "connectionTimeout", // Continue
]);

export interface ClientFormatResult {
  /** The config in toolgate's shape, `${ENV}` references still unresolved. */
  raw: unknown;
  /** What was dropped or converted, for the user to read once. */
  warnings: string[];
  issues: ConfigIssue[];
}

export interface ClientFormatOptions {
  /** The config file (absolute): `${workspaceFolder}` is its project folder. */
  file?: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Require a value for every `${input:ID}` now (loading), or only rewrite it to `${ID}` (`toolgate import`). */
  checkInputs?: boolean;
}

export function fromClientFormat(raw: unknown, options: ClientFormatOptions): ClientFormatResult {
  const warnings: string[] = [];
  const issues: ConfigIssue[] = [];
  if (!isObject(raw)) return { raw, warnings, issues };
  const out: Record<string, unknown> = {};
  const ignored: string[] = [];
  let servers: unknown;
  let source = "mcpServers";
  if (!("mcpServers" in raw)) {
    if ("servers" in raw)
      source = "servers"; // VS Code
    else if ("context_servers" in raw) source = "context_servers"; // Zed
  }
  // A client's own file (VS Code, Zed, Continue) holds no toolgate settings: everything else is the client's.
  const foreign = source !== "mcpServers" || Array.isArray(raw.mcpServers);
  for (const [key, value] of Object.entries(raw)) {
    if (key === source) servers = value;
    else if (key === "inputs" && source === "servers")
      continue; // VS Code prompts; see ${input:…} below
    else if (foreign && key !== "$schema") ignored.push(key);
    else if (OWN_KEYS.includes(key)) out[key] = value;
    // A misspelt toolgate key stays, so the schema rejects it with a suggestion.
    else if (!CLIENT_TOP_KEYS.has(key) && nearest(key, OWN_KEYS)) out[key] = value;
    else ignored.push(key);
  }
  if (ignored.length) {
    warnings.push(`ignored top-level keys that are not toolgate settings: ${ignored.join(", ")}`);
  }
  if (servers !== undefined) out.mcpServers = serverEntries(servers, source, warnings, issues);
  const inputs = vscodeInputs(raw.inputs);
  const substituted = substitute(out, "$", { ...options, inputs }, issues);
  // Issues name the file's own key (`$.servers.x`), not the one it was moved to.
  const located = issues.map((i) => ({
    ...i,
    path: i.path.replace(/^\$\.mcpServers(?=[.[]|$)/, `$.${source}`),
  }));
  return { raw: substituted, warnings, issues: located };
}

function serverEntries(servers: unknown, source: string, warnings: string[], issues: ConfigIssue[]): unknown {
  let entries: Array<[string, unknown]>;
  if (Array.isArray(servers)) {
    // Continue: a list of entries carrying their own `name`.
    entries = [];
    servers.forEach((item, i) => {
      const name = isObject(item) ? item.name : undefined;
      if (typeof name !== "string" || !name) {
        issues.push({ path: `$.${source}[${i}].name`, message: "a server in a list needs a name" });
        return;
      }
      const { name: _, ...rest } = item as Record<string, unknown>;
      entries.push([name, rest]);
    });
  } else if (isObject(servers)) entries = Object.entries(servers);
  else return servers;
  const dropped = new Set<string>();
  const result: Record<string, unknown> = {};
  for (const [name, entry] of entries) result[name] = serverEntry(entry, dropped);
  if (dropped.size)
    warnings.push(`ignored server settings toolgate does not use: ${[...dropped].join(", ")}`);
  return result;
}

function serverEntry(entry: unknown, dropped: Set<string>): unknown {
  if (!isObject(entry)) return entry;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entry)) {
    if (CLIENT_ENTRY_KEYS.has(key)) dropped.add(key);
    else if (key === "serverUrl" && entry.url === undefined)
      out.url = value; // Windsurf
    else if (key === "enabled" && typeof value === "boolean")
      out.disabled = !value; // Zed
    else if (key === "command" && isObject(value)) {
      // Zed's older form: "command": { "path", "args", "env" }.
      const { path, args, env, ...rest } = value;
      out.command = path;
      if (args !== undefined) out.args = args;
      if (env !== undefined) out.env = env;
      for (const k of Object.keys(rest)) dropped.add(`command.${k}`);
    } else out[key] = value;
  }
  return out;
}

interface Substitution extends ClientFormatOptions {
  inputs: Map<string, string>;
}

/** VS Code inputs by id → description, for the error when a value is missing. */
function vscodeInputs(inputs: unknown): Map<string, string> {
  const map = new Map<string, string>();
  if (!Array.isArray(inputs)) return map;
  for (const input of inputs) {
    if (isObject(input) && typeof input.id === "string") {
      map.set(input.id, typeof input.description === "string" ? input.description : "");
    }
  }
  return map;
}

const VSCODE_VAR = /\$\{(workspaceFolder|userHome|input:([^}]+))\}/g;

/** The environment variable that gives VS Code input `id` its value: `api-key` → `API_KEY`. */
function inputVariable(id: string): string {
  return id.replace(/[^A-Za-z0-9_]/g, "_").toUpperCase();
}

function substitute(value: unknown, path: string, ctx: Substitution, issues: ConfigIssue[]): unknown {
  if (typeof value === "string") {
    if (!value.includes("${")) return value;
    return value.replace(VSCODE_VAR, (whole, name: string, input: string | undefined) => {
      if (name === "workspaceFolder") return workspaceFolder(ctx.file);
      if (name === "userHome") return ctx.env.HOME ?? homedir();
      const id = input as string;
      const variable = inputVariable(id);
      if (ctx.checkInputs !== false && (ctx.env[variable] === undefined || ctx.env[variable] === "")) {
        const description = ctx.inputs.get(id);
        issues.push({
          path,
          message: `VS Code input "${id}"${description ? ` (${description})` : ""} has no value here: set the environment variable ${variable}`,
        });
        return whole;
      }
      // Resolved (and redacted by `check`) like any `${ENV}` reference.
      return `\${${variable}}`;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, `${path}[${i}]`, ctx, issues));
  if (isObject(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substitute(v, childPath(path, k), ctx, issues)]),
    );
  }
  return value;
}

/** A `.vscode/mcp.json` belongs to the folder above `.vscode`; any other file to its own folder. */
function workspaceFolder(file: string | undefined): string {
  const dir = file ? dirname(file) : ".";
  return basename(dir) === ".vscode" ? dirname(dir) : dir;
}

/** The candidate closest to `key` when it is a plausible misspelling of it (edit distance ≤ 1 in 3 letters). */
export function nearest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = distance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(Math.max(key.length, best?.length ?? 0) / 3));
  return bestDistance <= limit ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [
    i,
    ...new Array<number>(b.length).fill(0),
  ]);
  for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const prev = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
      }
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
