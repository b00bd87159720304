/**
 * Tool arguments are checked against the tool's `inputSchema` before a call leaves the gateway, so a model
 * gets a precise error (which argument, what is wrong) instead of an upstream's stack trace, and an upstream
 * never sees arguments it did not declare. A result's `structuredContent` is checked against its
 * `outputSchema`, so a result every client must refuse becomes an error naming the upstream. Each distinct
 * schema is compiled once.
 *
 * Dialect (MCP 2025-11-25, SEP-1613): JSON Schema 2020-12 unless the schema's `$schema` names another
 * (2019-09, or draft-04/06/07, which run on Ajv's draft-07 engine). A schema that cannot be compiled (an
 * upstream bug, a remote `$ref`) disables validation for that schema and is logged once: the upstream still
 * validates, and one broken tool must not take the gateway down.
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from "ajv";
import { Ajv2019 } from "ajv/dist/2019.js";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { ErrorCode, GatewayError } from "../errors.ts";
import { type Logger, silentLogger } from "../telemetry/log.ts";
import { canonicalJson, hashJson } from "./pinning.ts";

// ajv-formats is CommonJS with `module.exports = default`; under nodenext its default import is the module.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => void;

export interface ValidatableTool {
  name: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
}

/** Which of a tool's schemas, for the warning when one cannot be compiled. */
type SchemaKind = "input" | "output";

export interface ArgumentValidatorOptions {
  logger?: Logger;
  /** Distinct schemas kept compiled (default 1000); the least recently used is dropped. */
  maxCached?: number;
  /** Larger schemas are not compiled (default 1 MiB of JSON): compiling untrusted input has a cost. */
  maxSchemaBytes?: number;
}

/** How many schema errors the message lists; `data.errors` has them all. */
const MAX_LISTED_ERRORS = 5;

type Dialect = "2020-12" | "2019-09" | "draft-07";
type Engine = Pick<Ajv, "compile" | "removeSchema">;
/** A compiled validator, or null for a schema that could not be compiled. */
type Compiled = ValidateFunction | null;

export class ArgumentValidator {
  readonly #logger: Logger;
  readonly #maxCached: number;
  readonly #maxSchemaBytes: number;
  readonly #engines = new Map<Dialect, Engine>();
  /**
   * By schema hash, each with when it was last used. A hit only updates that stamp: moving the entry to the end
   * of the Map on every call churned its table, which V8 then kept alive in chains (src/in-flight.ts).
   */
  readonly #byHash = new Map<string, { compiled: Compiled; lastUse: number }>();
  #clock = 0;
  /** The same schema object again (the common case) skips hashing. */
  readonly #byObject = new WeakMap<object, { hash: string; compiled: Compiled }>();

  constructor(options: ArgumentValidatorOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.#maxCached = options.maxCached ?? 1000;
    this.#maxSchemaBytes = options.maxSchemaBytes ?? 1024 * 1024;
  }

  /**
   * Throws GatewayError(InvalidArguments) naming each failing argument path and the schema's complaint.
   * Missing arguments count as `{}`. Tools without an input schema, or with a broken one, pass.
   */
  validate(tool: ValidatableTool, args: unknown, context: { upstream?: string } = {}): void {
    const schema = tool.inputSchema;
    if (schema === undefined || schema === null) return;
    const validate = this.#compiled(tool, schema, "input", context.upstream);
    if (!validate || validate(args ?? {})) return;
    const errors = validate.errors ?? [];
    const listed = errors.slice(0, MAX_LISTED_ERRORS).map(describeError);
    const more = errors.length > listed.length ? `; and ${errors.length - listed.length} more` : "";
    throw new GatewayError(
      ErrorCode.InvalidArguments,
      `the arguments do not match the input schema of tool "${tool.name}": ${listed.join("; ")}${more}. Fix the arguments and call again`,
      {
        tool: tool.name,
        upstream: context.upstream,
        data: {
          errors: errors.map((e) => ({
            path: e.instancePath,
            schemaPath: e.schemaPath,
            message: e.message,
            params: e.params,
          })),
        },
      },
    );
  }

  /**
   * Why a successful result of `tool` breaks its `outputSchema` (clients must refuse it, MCP 2025-11-25: the SDKs
   * throw), or undefined: no schema, an `isError` result, a conforming `structuredContent`, or a schema that
   * cannot be compiled.
   */
  outputProblem(
    tool: ValidatableTool,
    result: Record<string, unknown>,
    context: { upstream?: string } = {},
  ): string | undefined {
    const schema = tool.outputSchema;
    if (schema === undefined || schema === null || result.isError === true) return undefined;
    const structured = result.structuredContent;
    if (structured === undefined) return "the result has no structuredContent";
    const validate = this.#compiled(tool, schema, "output", context.upstream);
    if (!validate || validate(structured)) return undefined;
    const errors = validate.errors ?? [];
    const listed = errors.slice(0, MAX_LISTED_ERRORS).map(describeError);
    const more = errors.length > listed.length ? `; and ${errors.length - listed.length} more` : "";
    return `its structuredContent ${listed.join("; ")}${more}`;
  }

  #compiled(
    tool: ValidatableTool,
    schema: unknown,
    kind: SchemaKind,
    upstream: string | undefined,
  ): Compiled {
    const isObject = typeof schema === "object";
    const known = isObject ? this.#byObject.get(schema as object) : undefined;
    if (known && this.#byHash.has(known.hash)) {
      this.#touch(known.hash, known.compiled);
      return known.compiled;
    }
    const hash = hashJson(schema);
    let compiled = this.#byHash.get(hash)?.compiled;
    if (compiled === undefined) compiled = this.#compile(tool, schema, kind, upstream);
    this.#touch(hash, compiled);
    if (isObject) this.#byObject.set(schema as object, { hash, compiled });
    return compiled;
  }

  #compile(tool: ValidatableTool, schema: unknown, kind: SchemaKind, upstream: string | undefined): Compiled {
    try {
      if (typeof schema !== "object" && typeof schema !== "boolean") throw new Error("not a JSON Schema");
      const size = canonicalJson(schema).length;
      if (size > this.#maxSchemaBytes) {
        throw new Error(`the schema is ${size} bytes, over the limit of ${this.#maxSchemaBytes}`);
      }
      const engine = this.#engine(dialectOf(schema));
      const validate = engine.compile(schema as object);
      // Compiled functions keep what they need; dropping Ajv's own cache keeps memory bounded by ours.
      engine.removeSchema(schema as object);
      return validate;
    } catch (err) {
      this.#logger.warn(
        `cannot compile the ${kind} schema of tool "${tool.name}"${upstream ? ` of upstream "${upstream}"` : ""}; its ${kind === "input" ? "arguments are" : "results are"} not validated`,
        { tool: tool.name, upstream, reason: (err as Error).message },
      );
      return null;
    }
  }

  #touch(hash: string, compiled: Compiled): void {
    const entry = this.#byHash.get(hash);
    if (entry) {
      entry.lastUse = ++this.#clock;
      return;
    }
    this.#byHash.set(hash, { compiled, lastUse: ++this.#clock });
    if (this.#byHash.size <= this.#maxCached) return;
    // Past the cap (a new schema, so rarely): the least recently used goes.
    let oldest: string | undefined;
    let oldestUse = Number.POSITIVE_INFINITY;
    for (const [key, { lastUse }] of this.#byHash) {
      if (lastUse < oldestUse) {
        oldest = key;
        oldestUse = lastUse;
      }
    }
    if (oldest !== undefined) this.#byHash.delete(oldest);
  }

  #engine(dialect: Dialect): Engine {
    let engine = this.#engines.get(dialect);
    if (!engine) {
      // Upstream schemas use unknown keywords and formats freely (strict: false); messages list all errors.
      const options: Options = {
        strict: false,
        allErrors: true,
        addUsedSchema: false,
        validateSchema: false,
        logger: false,
      };
      const ajv =
        dialect === "2020-12"
          ? new Ajv2020(options)
          : dialect === "2019-09"
            ? new Ajv2019(options)
            : new Ajv(options);
      addFormats(ajv as Ajv);
      engine = ajv;
      this.#engines.set(dialect, engine);
    }
    return engine;
  }
}

function dialectOf(schema: unknown): Dialect {
  const declared = (schema as { $schema?: unknown } | null)?.$schema;
  if (typeof declared !== "string") return "2020-12";
  if (declared.includes("2019-09")) return "2019-09";
  if (/draft-0[4-7]/.test(declared)) return "draft-07";
  return "2020-12";
}

/** `at /count: must be integer`, `at (root): must have required property 'path'`. */
function describeError(e: ErrorObject): string {
  const where = e.instancePath === "" ? "(root)" : e.instancePath;
  const extra =
    e.keyword === "additionalProperties"
      ? ` ("${(e.params as { additionalProperty?: string }).additionalProperty}")`
      : e.keyword === "enum"
        ? ` (${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)})`
        : "";
  return `at ${where}: ${e.message ?? e.keyword}${extra}`;
}
