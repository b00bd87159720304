/**
 * OpenAPI schema objects (3.0 and 3.1, already dereferenced) → JSON Schema 2020-12 for tool input and
 * output schemas. 3.0's `nullable` and boolean `exclusiveMinimum/Maximum` become their 2020-12 forms,
 * OpenAPI-only keywords are dropped, and a `$ref` the dereferencer left in place (a recursive schema) becomes
 * an open schema that says so. Properties marked `readOnly` leave request schemas, `writeOnly` ones leave
 * response schemas: the API sets or takes them, not the other side.
 */

export type JsonSchema = Record<string, unknown>;
export type Direction = "request" | "response";

/** Keywords of the OpenAPI schema object that JSON Schema validators do not know. */
const OPENAPI_ONLY = new Set(["nullable", "discriminator", "xml", "externalDocs", "example", "x-nullable"]);
/** Deeper than this is a degenerate document; the rest is left open. */
const MAX_DEPTH = 64;

export function toJsonSchema(schema: unknown, direction: Direction, depth = 0): JsonSchema {
  if (schema === true || schema === undefined || schema === null) return {};
  if (schema === false) return { not: {} };
  if (typeof schema !== "object" || Array.isArray(schema)) return {};
  const source = schema as JsonSchema;
  if (depth > MAX_DEPTH) return { description: "(nested too deep to describe)" };
  if (typeof source.$ref === "string") {
    const name = source.$ref.split("/").pop();
    return { description: `recursive reference to ${name}: any value of that shape` };
  }
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(source)) {
    if (OPENAPI_ONLY.has(key) || key.startsWith("x-")) continue;
    switch (key) {
      case "properties":
        out.properties = convertProperties(value, direction, depth);
        break;
      case "items":
        out.items = Array.isArray(value)
          ? value.map((v) => toJsonSchema(v, direction, depth + 1))
          : toJsonSchema(value, direction, depth + 1);
        break;
      case "additionalProperties":
      case "not":
      case "contains":
      case "propertyNames":
      case "unevaluatedItems":
      case "unevaluatedProperties":
      case "if":
      case "then":
      case "else":
        out[key] = typeof value === "boolean" ? value : toJsonSchema(value, direction, depth + 1);
        break;
      case "allOf":
      case "anyOf":
      case "oneOf":
      case "prefixItems":
        out[key] = Array.isArray(value) ? value.map((v) => toJsonSchema(v, direction, depth + 1)) : value;
        break;
      case "patternProperties":
      case "$defs":
      case "dependentSchemas":
        out[key] = mapValues(value, (v) => toJsonSchema(v, direction, depth + 1));
        break;
      case "$schema":
      case "$id":
      case "$anchor":
      case "$dynamicAnchor":
        break;
      default:
        out[key] = value;
    }
  }
  // OpenAPI 3.0: exclusiveMinimum/exclusiveMaximum are booleans beside minimum/maximum.
  for (const [exclusive, bound] of [
    ["exclusiveMinimum", "minimum"],
    ["exclusiveMaximum", "maximum"],
  ] as const) {
    if (typeof out[exclusive] !== "boolean") continue;
    if (out[exclusive] === true && typeof out[bound] === "number") {
      out[exclusive] = out[bound];
      delete out[bound];
    } else delete out[exclusive];
  }
  if (source.nullable === true || source["x-nullable"] === true) makeNullable(out);
  if (Array.isArray(out.required) && out.properties) {
    const props = out.properties as JsonSchema;
    const required = out.required.filter((r) => typeof r === "string" && r in props);
    if (required.length) out.required = required;
    else delete out.required;
  }
  return out;
}

function convertProperties(value: unknown, direction: Direction, depth: number): JsonSchema {
  const out: JsonSchema = {};
  if (!value || typeof value !== "object") return out;
  for (const [name, prop] of Object.entries(value as JsonSchema)) {
    const p = prop as JsonSchema | undefined;
    if (direction === "request" && p?.readOnly === true) continue;
    if (direction === "response" && p?.writeOnly === true) continue;
    out[name] = toJsonSchema(prop, direction, depth + 1);
  }
  return out;
}

function mapValues(value: unknown, fn: (v: unknown) => unknown): unknown {
  if (!value || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fn(v)]));
}

function makeNullable(schema: JsonSchema): void {
  if (typeof schema.type === "string") schema.type = [schema.type, "null"];
  else if (Array.isArray(schema.type) && !schema.type.includes("null"))
    schema.type = [...schema.type, "null"];
  if (Array.isArray(schema.enum) && !schema.enum.includes(null)) schema.enum = [...schema.enum, null];
}
