/**
 * Loading an OpenAPI document: read it (file or https URL, bounded in size and time), parse JSON or YAML,
 * and dereference its `$ref`s with @readme/openapi-parser. External references stay off unless the config
 * turns them on: resolving them makes the gateway fetch what the document names (server-side request
 * forgery). Recursive schemas keep their `$ref` (schema.ts describes them as open).
 * `endpointsDocument()` writes the declarative `endpoints` form as an OpenAPI 3.1 document, so both forms
 * take one path from here on.
 */
import { readFile, stat } from "node:fs/promises";
import { dereference } from "@readme/openapi-parser";
import { parse as parseYaml } from "yaml";
import type { OpenApiEndpoint, OpenApiTransport } from "../../config/openapi-schema.ts";

export type OpenApiDocument = {
  openapi: string;
  info?: { title?: string; version?: string; description?: string };
  servers?: { url: string; variables?: Record<string, { default?: string }> }[];
  paths?: Record<string, Record<string, unknown>>;
  components?: { securitySchemes?: Record<string, SecurityScheme> };
  security?: Record<string, string[]>[];
  [key: string]: unknown;
};

export interface SecurityScheme {
  type: string;
  scheme?: string;
  name?: string;
  in?: string;
  flows?: { clientCredentials?: { tokenUrl?: string } };
}

/** Large real specs (GitHub's REST description) are about 13 MB of JSON. */
const MAX_SPEC_BYTES = 64 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 30_000;
const DEREFERENCE_TIMEOUT_MS = 60_000;

export async function loadDocument(transport: OpenApiTransport): Promise<OpenApiDocument> {
  const raw = transport.spec
    ? await readSpec(transport.spec)
    : endpointsDocument(transport.endpoints, transport.baseUrl);
  return dereferenceDocument(raw, transport);
}

export async function dereferenceDocument(
  raw: unknown,
  transport: Pick<OpenApiTransport, "spec" | "externalRefs">,
): Promise<OpenApiDocument> {
  const doc = raw as Partial<OpenApiDocument> & { swagger?: unknown };
  if (typeof doc?.openapi !== "string" || !doc.openapi.startsWith("3.")) {
    const found = doc?.swagger ? `Swagger ${String(doc.swagger)}` : "no openapi version";
    throw new Error(`the spec is not OpenAPI 3.0 or 3.1 (${found}); convert it to OpenAPI 3 first`);
  }
  // With external references on, the parser reads the document itself so relative references resolve.
  const input = transport.externalRefs && transport.spec ? transport.spec : doc;
  const result = await dereference(input as never, {
    resolve: { external: transport.externalRefs, file: transport.externalRefs },
    dereference: { circular: "ignore" },
    timeoutMs: DEREFERENCE_TIMEOUT_MS,
  });
  return result as unknown as OpenApiDocument;
}

async function readSpec(spec: string): Promise<unknown> {
  const text = spec.startsWith("https://") ? await fetchSpec(spec) : await readSpecFile(spec);
  try {
    return /^\s*[{[]/.test(text) ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new Error(`the spec ${spec} is neither JSON nor YAML: ${(err as Error).message}`);
  }
}

async function readSpecFile(path: string): Promise<string> {
  const { size } = await stat(path);
  if (size > MAX_SPEC_BYTES) throw new Error(`the spec ${path} is ${size} bytes, over ${MAX_SPEC_BYTES}`);
  return readFile(path, "utf8");
}

async function fetchSpec(url: string): Promise<string> {
  const response = await fetch(url, {
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    headers: { accept: "application/json, application/yaml;q=0.9, */*;q=0.1" },
  });
  if (!response.ok) throw new Error(`fetching the spec ${url} answered HTTP ${response.status}`);
  const length = Number(response.headers.get("content-length") ?? 0);
  if (length > MAX_SPEC_BYTES) throw new Error(`the spec ${url} is ${length} bytes, over ${MAX_SPEC_BYTES}`);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body ?? []) {
    total += chunk.byteLength;
    if (total > MAX_SPEC_BYTES) throw new Error(`the spec ${url} is over ${MAX_SPEC_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Set on a declared endpoint whose path item key is not its path. */
export const PATH_OVERRIDE = "x-toolgate-path";

/** Methods whose extra arguments travel in the query string; the others send them as a JSON body. */
const QUERY_METHODS = new Set(["get", "head", "delete", "options", "trace"]);

function endpointsDocument(
  endpoints: Record<string, OpenApiEndpoint>,
  baseUrl: string | undefined,
): OpenApiDocument {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [name, endpoint] of Object.entries(endpoints)) {
    const absolute = /^https?:\/\//i.test(endpoint.url);
    // Path templates keep their braces: split off the origin by hand rather than through URL parsing.
    const match = absolute ? /^(https?:\/\/[^/?#]+)(.*)$/i.exec(endpoint.url) : null;
    const server = match?.[1] ?? baseUrl ?? "";
    const path = (match ? match[2] : endpoint.url) || "/";
    const schema = (endpoint.inputSchema ?? { type: "object" }) as {
      properties?: Record<string, unknown>;
      required?: string[];
    };
    const properties = schema.properties ?? {};
    const required = new Set(schema.required ?? []);
    const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string);
    const parameters: Record<string, unknown>[] = inPath.map((p) => ({
      name: p,
      in: "path",
      required: true,
      schema: properties[p] ?? { type: "string" },
    }));
    const rest = Object.keys(properties).filter((p) => !inPath.includes(p));
    const operation: Record<string, unknown> = {
      operationId: name,
      ...(endpoint.description && { description: endpoint.description }),
      servers: [{ url: server }],
      parameters,
      ...(endpoint.idempotent && { "x-idempotent": true }),
    };
    if (QUERY_METHODS.has(endpoint.method)) {
      for (const p of rest) {
        parameters.push({ name: p, in: "query", required: required.has(p), schema: properties[p] });
      }
    } else {
      const { required: _, ...bodySchema } = schema;
      const bodyRequired = rest.filter((p) => required.has(p));
      bodySchema.properties = Object.fromEntries(rest.map((p) => [p, properties[p]]));
      operation.requestBody = {
        required: bodyRequired.length > 0,
        content: {
          "application/json": {
            schema: { ...bodySchema, type: "object", ...(bodyRequired.length && { required: bodyRequired }) },
          },
        },
      };
    }
    // Two endpoints with one method and path template: the second gets a path item of its own.
    let key = path;
    if (paths[key]?.[endpoint.method]) {
      key = `${path}#${name}`;
      operation[PATH_OVERRIDE] = path;
    }
    paths[key] = { ...paths[key], [endpoint.method]: operation };
  }
  return { openapi: "3.1.0", info: { title: "declared endpoints", version: "1" }, paths };
}
