/**
 * One tool call → one HTTP request → one MCP result. The call's AbortSignal goes to the HTTP client, so a
 * timeout or a client's cancellation aborts the HTTP request itself. What the policies see:
 * - 2xx: the result (JSON as `structuredContent` plus text, text as text, binary as image/audio/blob);
 * - 4xx: an `isError` result with status and a bounded body excerpt, for the model to act on;
 * - 408, 429, 5xx, network failures: a GatewayError the retry and breaker policies count as transient,
 *   carrying `Retry-After` as `data.retryAfterMs`. A 429 did not run the request, so it may be retried even
 *   for a tool that is not idempotent.
 */
import { randomUUID } from "node:crypto";
import { ErrorCode, GatewayError } from "../../errors.ts";
import { requestFailure } from "../request-error.ts";
import type { Credentials, RequestParts } from "./auth.ts";
import { type HttpResponse, httpRequest } from "./http-client.ts";
import type { OperationPlan, ParamPlan } from "./operations.ts";

export interface CallDeps {
  upstream: string;
  headers: Record<string, string>;
  maxResponseBytes: number;
  idempotencyKey: string | undefined;
  credentials: Credentials;
  signal: AbortSignal;
  /** The same key for every attempt of one call (retries reuse the arguments object). */
  idempotencyKeys: WeakMap<object, string>;
}

export type ToolResult = Record<string, unknown>;

const EXCERPT_CHARS = 2000;

export async function callOperation(
  plan: OperationPlan,
  args: Record<string, unknown>,
  deps: CallDeps,
): Promise<ToolResult> {
  const where = `${plan.method.toUpperCase()} ${plan.path}`;
  const parts = buildRequest(plan, args, deps);
  await deps.credentials.apply(plan.auth, parts, deps.signal).catch((err: unknown) => {
    throw deps.signal.aborted
      ? requestFailure(err, deps.upstream, deps.signal).error
      : new GatewayError(
          ErrorCode.UpstreamUnavailable,
          `upstream "${deps.upstream}": ${(err as Error).message}`,
          {
            upstream: deps.upstream,
            reachedUpstream: false,
          },
        );
  });
  if (deps.idempotencyKey) {
    let key = deps.idempotencyKeys.get(args);
    if (!key) {
      key = randomUUID();
      deps.idempotencyKeys.set(args, key);
    }
    parts.headers.set(deps.idempotencyKey, key);
  }
  if (parts.cookies.length) parts.headers.set("cookie", parts.cookies.join("; "));
  const body = encodeBody(plan, args, parts.headers);

  let response: HttpResponse;
  try {
    response = await httpRequest(parts.url, {
      method: plan.method.toUpperCase(),
      headers: Object.fromEntries(parts.headers),
      body,
      signal: deps.signal,
      maxBytes: deps.maxResponseBytes,
    });
  } catch (err) {
    throw requestFailure(err, deps.upstream, deps.signal).error;
  }
  const { status, body: bytes } = response;
  const statusLine = `HTTP ${status}${response.statusText ? ` ${response.statusText}` : ""}`;
  const type = response.headers["content-type"] ?? "";
  if (bytes === undefined) {
    return toolError(
      `the response of ${where} is larger than ${deps.maxResponseBytes} bytes (maxResponseBytes of upstream "${deps.upstream}"); ask for less (filters, paging) or raise the limit`,
    );
  }
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(response.headers["retry-after"]);
    throw new GatewayError(
      ErrorCode.UpstreamError,
      `upstream "${deps.upstream}" answered ${statusLine} for ${where}${excerpt(bytes, type, 500)}`,
      {
        upstream: deps.upstream,
        reachedUpstream: status !== 429,
        data: { httpStatus: status, ...(retryAfterMs !== undefined && { retryAfterMs }) },
      },
    );
  }
  if (status >= 400) {
    if (status === 401) deps.credentials.rejected();
    return toolError(`${statusLine} from ${where}${excerpt(bytes, type, EXCERPT_CHARS)}`, status);
  }
  if (status >= 300) {
    const location = response.headers.location;
    return toolError(
      `${statusLine} from ${where}${location ? ` to ${location}` : ""}: toolgate does not follow redirects (credentials stay with the configured host); point baseUrl at the final address`,
      status,
    );
  }
  return successResult(plan, bytes, type, statusLine, parts.url);
}

function buildRequest(plan: OperationPlan, args: Record<string, unknown>, deps: CallDeps): RequestParts {
  if (!plan.server) {
    // A configuration to fix, not a transient failure: never retried.
    throw new GatewayError(
      ErrorCode.ConfigInvalid,
      `upstream "${deps.upstream}" has no absolute base URL for ${plan.path} (the document names no absolute server): set mcpServers.${deps.upstream}.baseUrl`,
      { upstream: deps.upstream, reachedUpstream: false },
    );
  }
  const path = plan.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const param = plan.params.find((p) => p.in === "path" && p.name === name);
    const value = param ? argumentOf(plan, param, args) : undefined;
    if (value === undefined || value === null) {
      throw new GatewayError(ErrorCode.InvalidArguments, `the path parameter "${name}" is missing`, {
        upstream: deps.upstream,
      });
    }
    return encodeURIComponent(simple(value, param?.explode ?? false));
  });
  const url = new URL(plan.server + path);
  const headers = new Headers(deps.headers);
  headers.set("accept", "application/json, */*;q=0.8");
  const cookies: string[] = [];
  for (const param of plan.params) {
    if (param.in === "path") continue;
    const value = argumentOf(plan, param, args);
    if (value === undefined || value === null) continue;
    if (param.in === "header") {
      const text = param.json ? JSON.stringify(value) : simple(value, param.explode);
      // What HTTP allows in a header value; anything else is the caller's mistake, not a transport failure.
      if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(text)) {
        throw new GatewayError(
          ErrorCode.InvalidArguments,
          `the header parameter "${param.name}" holds characters HTTP headers cannot carry (control characters or beyond Latin-1)`,
          { upstream: deps.upstream },
        );
      }
      headers.set(param.name, text);
    } else if (param.in === "cookie")
      cookies.push(
        `${param.name}=${encodeURIComponent(param.json ? JSON.stringify(value) : simple(value, false))}`,
      );
    else appendQuery(url.searchParams, param, value);
  }
  return { url, headers, cookies };
}

function argumentOf(plan: OperationPlan, param: ParamPlan, args: Record<string, unknown>): unknown {
  if (plan.layout === "flat") return args[param.name];
  const group = args[param.in];
  return group && typeof group === "object" ? (group as Record<string, unknown>)[param.name] : undefined;
}

/** OpenAPI `simple` style: arrays and objects comma-separated. */
function simple(value: unknown, explode: boolean): string {
  if (Array.isArray(value)) return value.map(String).join(",");
  if (value && typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => (explode ? `${k}=${String(v)}` : `${k},${String(v)}`))
      .join(",");
  }
  return String(value);
}

function appendQuery(query: URLSearchParams, param: ParamPlan, value: unknown): void {
  if (param.json) {
    query.append(param.name, JSON.stringify(value));
    return;
  }
  if (Array.isArray(value)) {
    const separator = param.style === "spaceDelimited" ? " " : param.style === "pipeDelimited" ? "|" : ",";
    if (param.explode) for (const v of value) query.append(param.name, String(v));
    else query.append(param.name, value.map(String).join(separator));
    return;
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value);
    if (param.style === "deepObject")
      for (const [k, v] of entries) query.append(`${param.name}[${k}]`, String(v));
    else if (param.explode) for (const [k, v] of entries) query.append(k, String(v));
    else query.append(param.name, entries.flat().map(String).join(","));
    return;
  }
  query.append(param.name, String(value));
}

function encodeBody(
  plan: OperationPlan,
  args: Record<string, unknown>,
  headers: Headers,
): string | undefined {
  if (!plan.body) return undefined;
  let value: unknown;
  if (plan.spreadBody) {
    const params = new Set(plan.params.map((p) => p.name));
    const rest = Object.fromEntries(Object.entries(args).filter(([k]) => !params.has(k)));
    value = Object.keys(rest).length || plan.body.required ? rest : undefined;
  } else value = args.body;
  if (value === undefined) return undefined;
  headers.set("content-type", plan.body.mediaType);
  if (plan.body.kind === "json") return JSON.stringify(value);
  if ((plan.body.kind === "form" || plan.body.kind === "multipart") && value && typeof value === "object") {
    const fields: [string, string][] = [];
    for (const [k, v] of Object.entries(value)) {
      if (Array.isArray(v)) for (const item of v) fields.push([k, String(item)]);
      else if (v !== undefined && v !== null)
        fields.push([k, typeof v === "object" ? JSON.stringify(v) : String(v)]);
    }
    if (plan.body.kind === "form") return new URLSearchParams(fields).toString();
    // Text fields only: a file part would need bytes that a JSON argument does not carry.
    const boundary = `toolgate-${randomUUID()}`;
    headers.set("content-type", `multipart/form-data; boundary=${boundary}`);
    const parts = fields.map(
      ([k, v]) =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${k.replace(/["\r\n]/g, "_")}"\r\n\r\n${v}\r\n`,
    );
    return `${parts.join("")}--${boundary}--\r\n`;
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Seconds or an HTTP date → milliseconds from now. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const TEXTUAL = /^text\/|[/+](json|xml|yaml|x-yaml|javascript|graphql|x-www-form-urlencoded|csv)\b/i;

function isText(type: string): boolean {
  return type === "" || TEXTUAL.test(type);
}

function excerpt(bytes: Buffer, type: string, max: number): string {
  if (!bytes.length) return "";
  if (!isText(type)) return ` (${bytes.length} bytes of ${type})`;
  const text = bytes.toString("utf8").trim();
  return `: ${text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text}`;
}

function toolError(text: string, httpStatus?: number): ToolResult {
  return {
    content: [{ type: "text", text }],
    isError: true,
    ...(httpStatus !== undefined && { _meta: { "toolgate/httpStatus": httpStatus } }),
  };
}

function successResult(
  plan: OperationPlan,
  bytes: Buffer,
  type: string,
  statusLine: string,
  url: URL,
): ToolResult {
  const mediaType = type.split(";")[0]?.trim().toLowerCase() ?? "";
  if (!bytes.length) return { content: [{ type: "text", text: statusLine }] };
  if (/^application\/(.+\+)?json$/.test(mediaType)) {
    const text = bytes.toString("utf8");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { content: [{ type: "text", text }] };
    }
    const structured =
      plan.structured && parsed !== null && typeof parsed === "object" && !Array.isArray(parsed);
    return { content: [{ type: "text", text }], ...(structured && { structuredContent: parsed }) };
  }
  if (isText(mediaType)) return { content: [{ type: "text", text: bytes.toString("utf8") }] };
  const data = bytes.toString("base64");
  if (mediaType.startsWith("image/")) return { content: [{ type: "image", data, mimeType: mediaType }] };
  if (mediaType.startsWith("audio/")) return { content: [{ type: "audio", data, mimeType: mediaType }] };
  return {
    content: [
      // The query may hold an API key: the URI names the resource without it.
      {
        type: "resource",
        resource: {
          uri: `${url.origin}${url.pathname}`,
          mimeType: mediaType || "application/octet-stream",
          blob: data,
        },
      },
    ],
  };
}
