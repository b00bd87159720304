/**
 * A dereferenced OpenAPI document → one plan per operation: the MCP tool clients see, and what a call
 * needs to build its HTTP request. Names come from `operationId` (else method and path), fitted to
 * `^[A-Za-z0-9_-]{1,64}$` by the catalog's rule. Parameters and the body are flattened into one argument
 * object when their names do not collide, else nested as {path, query, header, cookie, body}. Annotations
 * follow HTTP semantics so the retry policy needs no config. Credentials are never arguments: the
 * Authorization header, configured headers and API-key parameters stay out of the input schema.
 */
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import picomatch from "picomatch";
import { fitName } from "../../catalog/names.ts";
import type { HttpMethod, OpenApiAuth, OpenApiTransport } from "../../config/openapi-schema.ts";
import { type OpenApiDocument, PATH_OVERRIDE, type SecurityScheme } from "./load.ts";
import { type JsonSchema, toJsonSchema } from "./schema.ts";

type ParamLocation = "path" | "query" | "header" | "cookie";
const LOCATIONS: ParamLocation[] = ["path", "query", "header", "cookie"];
const METHODS: HttpMethod[] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

export interface ParamPlan {
  name: string;
  in: ParamLocation;
  style: string;
  explode: boolean;
  /** The parameter uses `content` rather than `schema`: its value is sent as JSON text. */
  json: boolean;
}

interface BodyPlan {
  mediaType: string;
  kind: "json" | "form" | "multipart" | "text";
  required: boolean;
}

/** How credentials are attached to a request. */
export type AuthStep =
  | { kind: "bearer" }
  | { kind: "basic" }
  | { kind: "apiKey"; in: "header" | "query" | "cookie"; name: string }
  | { kind: "oauth2"; tokenUrl: string | undefined };

export interface OperationPlan {
  /** The tool name (upstream-side; the catalog adds the prefix). */
  name: string;
  method: HttpMethod;
  /** Path template, e.g. `/pets/{petId}`. */
  path: string;
  /** Base URL; undefined when neither the config nor the spec gives an absolute one. */
  server: string | undefined;
  params: ParamPlan[];
  body: BodyPlan | undefined;
  /** flat: parameters and body properties side by side; nested: {path, query, header, cookie, body}. */
  layout: "flat" | "nested";
  /** Flat layout: the body's properties are top-level arguments (else the body is the `body` argument). */
  spreadBody: boolean;
  /** The 2xx response is a JSON object described by `tool.outputSchema`. */
  structured: boolean;
  auth: AuthStep[];
  tags: string[];
  tool: Tool;
}

export interface PlanResult {
  plans: OperationPlan[];
  /** Operations skipped, filtered out, or needing a credential that is not configured. */
  notes: string[];
}

/** A larger output schema is left out (GitHub's responses alone are tens of MB): text still carries the data. */
const MAX_OUTPUT_SCHEMA_BYTES = 64 * 1024;
const MAX_DESCRIPTION = 2000;

export function planOperations(doc: OpenApiDocument, transport: OpenApiTransport): PlanResult {
  const plans: OperationPlan[] = [];
  const notes: string[] = [];
  const used = new Set<string>();
  const filter = operationFilter(transport);
  const hidden = hiddenHeaders(transport, doc);
  for (const [key, pathItem] of Object.entries(doc.paths ?? {})) {
    if (!pathItem || typeof pathItem !== "object") continue;
    for (const method of METHODS) {
      const op = pathItem[method] as Record<string, unknown> | undefined;
      if (!op || typeof op !== "object") continue;
      const path = typeof op[PATH_OVERRIDE] === "string" ? (op[PATH_OVERRIDE] as string) : key;
      const tags = Array.isArray(op.tags) ? op.tags.map(String) : [];
      if (!filter(op, method, path, tags)) continue;
      const base = fitName(
        typeof op.operationId === "string" && op.operationId ? op.operationId : `${method}_${path}`,
      );
      let name = base;
      for (let n = 2; used.has(name); n++) name = fitName(`${base}_${n}`);
      used.add(name);
      plans.push(planOne(doc, transport, pathItem, op, { name, method, path, tags, hidden }, notes));
    }
  }
  return { plans, notes };
}

function operationFilter(transport: OpenApiTransport) {
  const f = transport.operations;
  const paths = f.paths?.length ? picomatch(f.paths) : undefined;
  const excludePaths = f.excludePaths?.length ? picomatch(f.excludePaths) : undefined;
  return (op: Record<string, unknown>, method: HttpMethod, path: string, tags: string[]): boolean => {
    if (op["x-mcp"] === false) return false;
    if (op["x-mcp"] === true) return true;
    if (f.tags?.length && !tags.some((t) => f.tags?.includes(t))) return false;
    if (f.excludeTags?.length && tags.some((t) => f.excludeTags?.includes(t))) return false;
    if (f.methods?.length && !f.methods.includes(method)) return false;
    if (paths && !paths(path)) return false;
    if (excludePaths?.(path)) return false;
    return true;
  };
}

/** Header parameters the gateway sets itself: never arguments (lower case). */
function hiddenHeaders(transport: OpenApiTransport, doc: OpenApiDocument): Set<string> {
  const hidden = new Set(["authorization", "content-type", "accept", "content-length", "cookie"]);
  for (const h of Object.keys(transport.headers)) hidden.add(h.toLowerCase());
  if (transport.idempotencyKey) hidden.add(transport.idempotencyKey.toLowerCase());
  for (const s of Object.values(doc.components?.securitySchemes ?? {})) {
    if (s?.type === "apiKey" && s.in === "header" && s.name) hidden.add(s.name.toLowerCase());
  }
  return hidden;
}

interface Naming {
  name: string;
  method: HttpMethod;
  path: string;
  tags: string[];
  hidden: Set<string>;
}

function planOne(
  doc: OpenApiDocument,
  transport: OpenApiTransport,
  pathItem: Record<string, unknown>,
  op: Record<string, unknown>,
  { name, method, path, tags, hidden }: Naming,
  notes: string[],
): OperationPlan {
  const auth = authSteps(doc, op, transport.auth, name, notes);
  const secretParams = new Set(
    auth.flatMap((s) => (s.kind === "apiKey" && s.in !== "header" ? [`${s.in}:${s.name}`] : [])),
  );
  // Operation parameters override path-item ones with the same name and location.
  const byKey = new Map<string, Record<string, unknown>>();
  for (const p of [...asArray(pathItem.parameters), ...asArray(op.parameters)]) {
    if (typeof p.name !== "string" || !LOCATIONS.includes(p.in as ParamLocation)) continue;
    byKey.set(`${p.in}:${p.name}`, p);
  }
  const params: ParamPlan[] = [];
  const paramSchemas = new Map<ParamPlan, { schema: JsonSchema; required: boolean }>();
  for (const [key, p] of byKey) {
    const location = p.in as ParamLocation;
    const pname = p.name as string;
    if (location === "header" && hidden.has(pname.toLowerCase())) continue;
    if (secretParams.has(key)) continue;
    const content = p.content as Record<string, { schema?: unknown }> | undefined;
    const json = !p.schema && !!content;
    const schema = toJsonSchema(json ? Object.values(content ?? {})[0]?.schema : p.schema, "request");
    if (typeof p.description === "string" && !schema.description) schema.description = p.description;
    if (p.deprecated === true) schema.deprecated = true;
    const style =
      typeof p.style === "string"
        ? p.style
        : location === "query" || location === "cookie"
          ? "form"
          : "simple";
    const plan: ParamPlan = {
      name: pname,
      in: location,
      style,
      explode: typeof p.explode === "boolean" ? p.explode : style === "form",
      json,
    };
    params.push(plan);
    paramSchemas.set(plan, { schema, required: location === "path" || p.required === true });
  }

  const requestBody = op.requestBody as {
    content?: Record<string, { schema?: unknown }>;
    required?: boolean;
  };
  const bodyChoice = chooseBody(requestBody?.content);
  const body: BodyPlan | undefined = bodyChoice && {
    mediaType: bodyChoice.mediaType,
    kind: bodyChoice.kind,
    required: requestBody?.required === true,
  };
  const bodySchema = bodyChoice
    ? bodyChoice.kind === "text"
      ? { type: "string" }
      : toJsonSchema(bodyChoice.schema, "request")
    : undefined;

  const paramNames = params.map((p) => p.name);
  const unique = new Set(paramNames).size === paramNames.length;
  const bodyProps =
    bodySchema && isPlainObjectSchema(bodySchema) ? Object.keys(bodySchema.properties as object) : undefined;
  const spreadBody = !!bodyProps && !bodyProps.some((p) => paramNames.includes(p));
  // A body that is not an object with properties travels as the `body` argument.
  const layout: "flat" | "nested" =
    unique && (!bodySchema || spreadBody || (!bodyProps && !paramNames.includes("body"))) ? "flat" : "nested";

  const inputSchema =
    layout === "flat"
      ? flatSchema(params, paramSchemas, body, bodySchema, spreadBody)
      : nestedSchema(params, paramSchemas, body, bodySchema);

  const outputSchema = transport.outputSchemas ? outputOf(op).schema : undefined;
  const title = typeof op.summary === "string" ? op.summary.trim() : undefined;
  const annotations = annotationsOf(method, op, transport);
  const tool: Tool = {
    name,
    ...(title && { title }),
    description: describeOperation(method, path, op),
    inputSchema: inputSchema as Tool["inputSchema"],
    ...(outputSchema && { outputSchema: outputSchema as Tool["outputSchema"] }),
    annotations: { ...(title && { title }), ...annotations },
  };
  return {
    name,
    method,
    path,
    server: serverOf(doc, transport, pathItem, op),
    params,
    body,
    layout: layout,
    spreadBody: layout === "flat" && spreadBody,
    structured: !!outputSchema,
    auth,
    tags,
    tool,
  };
}

function asArray(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter((v) => v && typeof v === "object") : [];
}

function isPlainObjectSchema(schema: JsonSchema): boolean {
  return (
    (schema.type === "object" || schema.type === undefined) &&
    !!schema.properties &&
    typeof schema.properties === "object" &&
    !schema.allOf &&
    !schema.anyOf &&
    !schema.oneOf
  );
}

function chooseBody(
  content: Record<string, { schema?: unknown }> | undefined,
): { mediaType: string; kind: BodyPlan["kind"]; schema: unknown } | undefined {
  if (!content) return undefined;
  const types = Object.keys(content);
  const json = types.find((t) => /^application\/(.+\+)?json\b/i.test(t));
  if (json) return { mediaType: json, kind: "json", schema: content[json]?.schema };
  const form = types.find((t) => /^application\/x-www-form-urlencoded\b/i.test(t));
  if (form) return { mediaType: form, kind: "form", schema: content[form]?.schema };
  const multipart = types.find((t) => /^multipart\/form-data\b/i.test(t));
  if (multipart)
    return { mediaType: "multipart/form-data", kind: "multipart", schema: content[multipart]?.schema };
  const first = types[0];
  if (first === undefined) return undefined;
  // Anything else (text, XML, binary) is sent as the text argument, with its media type.
  return { mediaType: first === "*/*" ? "application/octet-stream" : first, kind: "text", schema: undefined };
}

type ParamSchemas = Map<ParamPlan, { schema: JsonSchema; required: boolean }>;

function flatSchema(
  params: ParamPlan[],
  schemas: ParamSchemas,
  body: BodyPlan | undefined,
  bodySchema: JsonSchema | undefined,
  spread: boolean,
): JsonSchema {
  const properties: JsonSchema = {};
  const required: string[] = [];
  for (const p of params) {
    const s = schemas.get(p);
    if (!s) continue;
    properties[p.name] = s.schema;
    if (s.required) required.push(p.name);
  }
  if (bodySchema && spread) {
    Object.assign(properties, bodySchema.properties as JsonSchema);
    if (body?.required && Array.isArray(bodySchema.required))
      required.push(...(bodySchema.required as string[]));
  } else if (bodySchema) {
    properties.body = bodySchema;
    if (body?.required) required.push("body");
  }
  const schema: JsonSchema = { type: "object", properties };
  if (required.length) schema.required = required;
  if (spread && bodySchema?.additionalProperties === false) schema.additionalProperties = false;
  return schema;
}

function nestedSchema(
  params: ParamPlan[],
  schemas: ParamSchemas,
  body: BodyPlan | undefined,
  bodySchema: JsonSchema | undefined,
): JsonSchema {
  const properties: JsonSchema = {};
  const required: string[] = [];
  for (const location of LOCATIONS) {
    const group = params.filter((p) => p.in === location);
    if (!group.length) continue;
    const props: JsonSchema = {};
    const req: string[] = [];
    for (const p of group) {
      const s = schemas.get(p);
      if (!s) continue;
      props[p.name] = s.schema;
      if (s.required) req.push(p.name);
    }
    properties[location] = { type: "object", properties: props, ...(req.length && { required: req }) };
    if (req.length) required.push(location);
  }
  if (bodySchema) {
    properties.body = bodySchema;
    if (body?.required) required.push("body");
  }
  return { type: "object", properties, ...(required.length && { required }) };
}

/** The schema of the first 2xx JSON response, when it describes an object (MCP output schemas are objects). */
function outputOf(op: Record<string, unknown>): { schema: JsonSchema | undefined } {
  const responses = (op.responses ?? {}) as Record<
    string,
    { content?: Record<string, { schema?: unknown }> }
  >;
  const codes = Object.keys(responses)
    .filter((c) => /^2(\d\d|XX)$/i.test(c))
    .sort();
  for (const code of codes) {
    const content = responses[code]?.content ?? {};
    const json = Object.keys(content).find((t) => /^application\/(.+\+)?json\b/i.test(t));
    if (!json) continue;
    const schema = toJsonSchema(content[json]?.schema, "response");
    if (schema.type !== "object") return { schema: undefined };
    return { schema: JSON.stringify(schema).length <= MAX_OUTPUT_SCHEMA_BYTES ? schema : undefined };
  }
  return { schema: undefined };
}

function annotationsOf(method: HttpMethod, op: Record<string, unknown>, transport: OpenApiTransport) {
  const safe = method === "get" || method === "head" || method === "options" || method === "trace";
  const idempotent =
    safe ||
    method === "put" ||
    method === "delete" ||
    op["x-idempotent"] === true ||
    transport.idempotencyKey !== undefined;
  return {
    readOnlyHint: safe,
    destructiveHint: method === "delete" || method === "put" || method === "patch",
    idempotentHint: idempotent,
    openWorldHint: true,
  };
}

function describeOperation(method: HttpMethod, path: string, op: Record<string, unknown>): string {
  const parts = [op.summary, op.description].filter((s): s is string => typeof s === "string" && !!s.trim());
  const text = [...new Set(parts.map((s) => s.trim()))].join("\n\n");
  const line = `${method.toUpperCase()} ${path}${op.deprecated === true ? " (deprecated)" : ""}`;
  const full = text ? `${text}\n\n${line}` : line;
  return full.length > MAX_DESCRIPTION ? `${full.slice(0, MAX_DESCRIPTION - 1)}…` : full;
}

/** `baseUrl` wins over the spec's servers; operation, then path item, then document servers. */
function serverOf(
  doc: OpenApiDocument,
  transport: OpenApiTransport,
  pathItem: Record<string, unknown>,
  op: Record<string, unknown>,
): string | undefined {
  const first = (servers: unknown) =>
    Array.isArray(servers)
      ? (servers[0] as { url?: string; variables?: Record<string, { default?: string }> })
      : undefined;
  // Declared endpoints carry their own absolute URL as an operation server.
  const declared = transport.spec ? undefined : first(op.servers);
  const server = declared?.url
    ? declared
    : transport.baseUrl
      ? { url: transport.baseUrl }
      : (first(op.servers) ?? first(pathItem.servers) ?? first(doc.servers));
  if (!server?.url) return undefined;
  const url = server.url.replace(/\{([^}]+)\}/g, (_, v: string) => server.variables?.[v]?.default ?? "");
  if (/^https?:\/\//i.test(url)) return url.replace(/\/+$/, "");
  // A relative server URL is relative to where the spec came from, when that is a URL.
  if (transport.spec?.startsWith("https://")) return new URL(url, transport.spec).href.replace(/\/+$/, "");
  return undefined;
}

/**
 * The credentials one operation gets: the first of its security requirements whose schemes all have a
 * configured credential. A spec without security schemes gets every configured credential that needs none.
 */
function authSteps(
  doc: OpenApiDocument,
  op: Record<string, unknown>,
  auth: OpenApiAuth,
  name: string,
  notes: string[],
): AuthStep[] {
  const schemes = doc.components?.securitySchemes ?? {};
  const requirements = (Array.isArray(op.security) ? op.security : doc.security) as
    | Record<string, string[]>[]
    | undefined;
  if (!Object.keys(schemes).length) return genericSteps(auth);
  if (!requirements?.length) return [];
  for (const requirement of requirements) {
    const steps: AuthStep[] = [];
    let ok = true;
    for (const schemeName of Object.keys(requirement)) {
      const step = stepFor(schemes[schemeName], auth);
      if (step) steps.push(step);
      else ok = false;
    }
    if (ok) return steps;
  }
  notes.push(
    `${name}: no configured credential for its security schemes (${requirements.map((r) => Object.keys(r).join("+")).join(" or ")})`,
  );
  return [];
}

function stepFor(scheme: SecurityScheme | undefined, auth: OpenApiAuth): AuthStep | undefined {
  if (!scheme) return undefined;
  if (scheme.type === "http" && /^bearer$/i.test(scheme.scheme ?? "") && auth.bearer)
    return { kind: "bearer" };
  if (scheme.type === "http" && /^basic$/i.test(scheme.scheme ?? "") && auth.basic) return { kind: "basic" };
  if (scheme.type === "apiKey" && auth.apiKey && scheme.name) {
    const where = scheme.in === "query" || scheme.in === "cookie" ? scheme.in : "header";
    return { kind: "apiKey", in: where, name: scheme.name };
  }
  if ((scheme.type === "oauth2" || scheme.type === "openIdConnect") && auth.oauth2) {
    return { kind: "oauth2", tokenUrl: scheme.flows?.clientCredentials?.tokenUrl };
  }
  // A static token works for an OAuth scheme too.
  if ((scheme.type === "oauth2" || scheme.type === "openIdConnect") && auth.bearer) return { kind: "bearer" };
  return undefined;
}

function genericSteps(auth: OpenApiAuth): AuthStep[] {
  const steps: AuthStep[] = [];
  if (auth.bearer) steps.push({ kind: "bearer" });
  if (auth.basic) steps.push({ kind: "basic" });
  if (auth.oauth2) steps.push({ kind: "oauth2", tokenUrl: undefined });
  if (auth.apiKey && typeof auth.apiKey === "object" && auth.apiKey.name) {
    steps.push({ kind: "apiKey", in: auth.apiKey.in ?? "header", name: auth.apiKey.name });
  }
  return steps;
}
