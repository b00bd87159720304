/**
 * What the 2026-07-28 revision requires of a request before it is served: the `_meta` envelope (any
 * transport) and, over HTTP, the headers mirrored from the body (`MCP-Protocol-Version`, `Mcp-Method`,
 * `Mcp-Name`, `Mcp-Param-*` for `x-mcp-header` arguments), Base64 sentinels decoded. Throws ModernError.
 */

import { INPUT_METHODS, META, MODERN_VERSION, ModernCode, ModernError } from "../../protocol/era.ts";
import type { HttpRequestLike } from "../http1-server.ts";
import { TASK_METHODS } from "./modern-tasks.ts";

/** The `_meta` envelope every modern request carries; -32602 when it is missing or malformed. */
export function checkEnvelope(params: Record<string, unknown>): void {
  const meta = params._meta;
  if (typeof meta !== "object" || meta === null) {
    throw new ModernError(
      -32602,
      `Invalid params: params._meta with ${META.protocolVersion} and ${META.clientCapabilities} is required ` +
        "(a request without a session is served as 2026-07-28; a 2025-11-25 client sends initialize first)",
    );
  }
  const m = meta as Record<string, unknown>;
  if (typeof m[META.protocolVersion] !== "string") {
    throw new ModernError(-32602, `Invalid params: _meta["${META.protocolVersion}"] is required`);
  }
  const capabilities = m[META.clientCapabilities];
  if (typeof capabilities !== "object" || capabilities === null || Array.isArray(capabilities)) {
    throw new ModernError(
      -32602,
      `Invalid params: _meta["${META.clientCapabilities}"] (an object) is required`,
    );
  }
}

/** The headers this revision mirrors from the body, checked against it (HTTP only); throws ModernError. */
export function checkHeaders(
  req: Pick<HttpRequestLike, "headers">,
  method: string,
  params: Record<string, unknown>,
  toolSchema: (name: string) => Record<string, unknown> | undefined,
): void {
  const declared = (params._meta as Record<string, unknown>)[META.protocolVersion];
  const header = headerValue(req, "mcp-protocol-version");
  if (header === undefined) throw mismatch("the MCP-Protocol-Version header is missing");
  if (header !== declared) {
    throw mismatch(
      `MCP-Protocol-Version header '${header}' does not match _meta protocol version '${String(declared)}'`,
    );
  }
  if (declared !== MODERN_VERSION) return;
  const methodHeader = headerValue(req, "mcp-method");
  if (methodHeader === undefined) throw mismatch("the Mcp-Method header is missing");
  if (methodHeader !== method) {
    throw mismatch(`Mcp-Method header value '${methodHeader}' does not match body method '${method}'`);
  }
  if (INPUT_METHODS.has(method) || TASK_METHODS.has(method)) {
    // Tasks are routed by their id (SEP-2663): a load balancer can send every poll to the right replica.
    const body = TASK_METHODS.has(method)
      ? params.taskId
      : method === "resources/read"
        ? params.uri
        : params.name;
    const raw = headerValue(req, "mcp-name");
    if (raw === undefined) throw mismatch("the Mcp-Name header is missing");
    const name = decodeHeader(raw, "Mcp-Name");
    if (name !== body)
      throw mismatch(`Mcp-Name header value '${name}' does not match body value '${String(body)}'`);
  }
  if (method === "tools/call" && typeof params.name === "string") {
    const schema = toolSchema(params.name);
    if (schema) checkParamHeaders(req, schema, (params.arguments ?? {}) as Record<string, unknown>);
  }
}

function mismatch(message: string): ModernError {
  return new ModernError(ModernCode.HeaderMismatch, `Header mismatch: ${message}`);
}

function headerValue(req: Pick<HttpRequestLike, "headers">, name: string): string | undefined {
  const value = req.headers[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value.join(", ") : value).trim();
}

const SENTINEL = /^=\?base64\?(.*)\?=$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const HEADER_SAFE = /^[\x20-\x7E\t]*$/;

/** A header value as the client meant it: the `=?base64?…?=` sentinel decoded, invalid values refused. */
function decodeHeader(raw: string, name: string): string {
  if (!HEADER_SAFE.test(raw)) throw mismatch(`${name} header contains invalid characters`);
  const encoded = SENTINEL.exec(raw);
  if (!encoded) return raw;
  const b64 = encoded[1] ?? "";
  if (!BASE64.test(b64) || b64.length % 4 !== 0) throw mismatch(`${name} header has invalid Base64`);
  return Buffer.from(b64, "base64").toString("utf8");
}

/** An argument a tool marks with `x-mcp-header`: where it sits in the arguments, and its header. */
interface HeaderParam {
  /** Property names from the arguments object down to the argument. */
  path: readonly string[];
  /** The name as the schema gives it (for messages) and the header it maps to. */
  name: string;
  header: string;
}

/** The marked arguments of each input schema, found once per schema object (the catalog keeps them). */
const headerParams = new WeakMap<object, readonly HeaderParam[]>();

/** Every argument the tool marks with `x-mcp-header` must be mirrored, equal, in its `Mcp-Param-*` header. */
function checkParamHeaders(
  req: Pick<HttpRequestLike, "headers">,
  schema: Record<string, unknown>,
  args: Record<string, unknown>,
): void {
  let params = headerParams.get(schema);
  if (!params) {
    params = markedArguments(schema, []);
    headerParams.set(schema, params);
  }
  for (const { path, name, header } of params) {
    // Checked where the arguments reach it: an object at every step on the way, and a value that is not null.
    let parent: unknown = args;
    for (let i = 0; i < path.length - 1 && isObject(parent); i++) parent = parent[path[i] as string];
    if (!isObject(parent)) continue;
    const key = path[path.length - 1] as string;
    const value = parent[key];
    if (value === undefined || value === null) continue;
    const raw = headerValue(req, header);
    if (raw === undefined) throw mismatch(`the Mcp-Param-${name} header is missing for argument '${key}'`);
    const decoded = decodeHeader(raw, `Mcp-Param-${name}`);
    const same = typeof value === "number" ? Number(decoded) === value : decoded === String(value);
    if (!same) throw mismatch(`Mcp-Param-${name} header value does not match argument '${key}'`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** The schema's `x-mcp-header` properties, depth first in property order (the order they are checked in). */
function markedArguments(node: unknown, path: readonly string[]): HeaderParam[] {
  const properties = (node as { properties?: Record<string, Record<string, unknown>> } | undefined)
    ?.properties;
  if (typeof properties !== "object" || properties === null) return [];
  const found: HeaderParam[] = [];
  for (const [key, property] of Object.entries(properties)) {
    const at = [...path, key];
    const name = property?.["x-mcp-header"];
    if (typeof name === "string") found.push({ path: at, name, header: `mcp-param-${name.toLowerCase()}` });
    found.push(...markedArguments(property, at));
  }
  return found;
}
