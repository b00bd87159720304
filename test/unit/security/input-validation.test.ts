import { describe, expect, it } from "vitest";
import { ArgumentValidator } from "../../../src/catalog/input-validation.ts";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { createLogger } from "../../../src/telemetry/log.ts";

const writeFile = {
  name: "fs__write_file",
  inputSchema: {
    type: "object",
    properties: {
      path: { type: "string", minLength: 1 },
      mode: { enum: ["overwrite", "append"] },
      count: { type: "integer" },
      email: { type: "string", format: "email" },
    },
    required: ["path"],
    additionalProperties: false,
  },
};

function failure(fn: () => void): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error("expected validation to fail");
}

function recordingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, logger: createLogger({ sink: (l) => lines.push(JSON.parse(l)) }) };
}

describe("ArgumentValidator", () => {
  it("passes valid arguments", () => {
    const validator = new ArgumentValidator();
    expect(() => validator.validate(writeFile, { path: "/tmp/a", mode: "append", count: 2 })).not.toThrow();
  });

  it("quotes each failing path and the schema's message", () => {
    const validator = new ArgumentValidator();
    const err = failure(() =>
      validator.validate(
        writeFile,
        { count: 1.5, mode: "truncate", extra: true, email: "nope" },
        { upstream: "fs" },
      ),
    );
    expect(err.code).toBe(ErrorCode.InvalidArguments);
    expect(err.tool).toBe("fs__write_file");
    expect(err.upstream).toBe("fs");
    expect(err.message).toBe(
      'the arguments do not match the input schema of tool "fs__write_file": ' +
        "at (root): must have required property 'path'; " +
        'at (root): must NOT have additional properties ("extra"); ' +
        'at /mode: must be equal to one of the allowed values (["overwrite","append"]); ' +
        "at /count: must be integer; " +
        'at /email: must match format "email". Fix the arguments and call again',
    );
    const errors = err.data?.errors as Array<Record<string, unknown>>;
    expect(errors.length).toBe(5);
    expect(errors[3]).toMatchObject({
      path: "/count",
      schemaPath: "#/properties/count/type",
      message: "must be integer",
    });
  });

  it("lists at most five errors in the message and counts the rest", () => {
    const properties = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`p${i}`, { type: "string" }]));
    const tool = { name: "many", inputSchema: { type: "object", properties } };
    const args = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`p${i}`, i]));
    expect(failure(() => new ArgumentValidator().validate(tool, args)).message).toContain("; and 3 more.");
  });

  it("treats missing arguments as an empty object", () => {
    const validator = new ArgumentValidator();
    expect(failure(() => validator.validate(writeFile, undefined)).message).toContain(
      "required property 'path'",
    );
    expect(() =>
      validator.validate({ name: "noargs", inputSchema: { type: "object" } }, undefined),
    ).not.toThrow();
  });

  it("passes anything for a tool without an input schema", () => {
    expect(() => new ArgumentValidator().validate({ name: "free" }, { anything: 1 })).not.toThrow();
  });

  it("uses JSON Schema 2020-12 by default and draft-07 when the schema declares it", () => {
    const validator = new ArgumentValidator();
    const tuple2020 = { type: "array", prefixItems: [{ type: "string" }], items: false };
    const tool2020 = {
      name: "t2020",
      inputSchema: { type: "object", properties: { pair: tuple2020 }, dependentRequired: { a: ["b"] } },
    };
    expect(failure(() => validator.validate(tool2020, { pair: ["x", "y"] })).message).toContain("at /pair:");
    expect(failure(() => validator.validate(tool2020, { a: 1 })).message).toContain("must have property b");
    const draft7 = {
      name: "t7",
      inputSchema: {
        $schema: "http://json-schema.org/draft-07/schema#",
        type: "object",
        properties: { pair: { type: "array", items: [{ type: "string" }], additionalItems: false } },
      },
    };
    expect(() => validator.validate(draft7, { pair: ["x"] })).not.toThrow();
    expect(failure(() => validator.validate(draft7, { pair: ["x", "y"] })).message).toContain("at /pair:");
  });

  it("skips validation for a schema that cannot be compiled and logs it once", () => {
    const { lines, logger } = recordingLogger();
    const validator = new ArgumentValidator({ logger });
    const broken = { name: "broken", inputSchema: { type: "object", properties: { a: { type: "bogus" } } } };
    const remote = { name: "remote", inputSchema: { $ref: "https://example.com/schema.json" } };
    for (let i = 0; i < 3; i++) {
      expect(() => validator.validate(broken, { a: 1 }, { upstream: "up" })).not.toThrow();
      expect(() =>
        validator.validate({ ...remote, inputSchema: { ...remote.inputSchema } }, {}),
      ).not.toThrow();
    }
    expect(lines.map((l) => l.msg)).toEqual([
      'cannot compile the input schema of tool "broken" of upstream "up"; its arguments are not validated',
      'cannot compile the input schema of tool "remote"; its arguments are not validated',
    ]);
    expect(lines[0]?.reason).toContain("bogus");
  });

  it("skips validation for a schema over the size limit", () => {
    const { lines, logger } = recordingLogger();
    const validator = new ArgumentValidator({ logger, maxSchemaBytes: 100 });
    const big = {
      name: "big",
      inputSchema: { type: "object", description: "x".repeat(200), required: ["a"] },
    };
    expect(() => validator.validate(big, {})).not.toThrow();
    expect(lines[0]?.reason).toMatch(/over the limit of 100/);
  });

  it("keeps schemas that share an $id apart", () => {
    const validator = new ArgumentValidator();
    const schema = (): object => ({ type: "object", required: ["x"], $id: "same-id" });
    validator.validate({ name: "a", inputSchema: schema() }, { x: 1 });
    validator.validate({ name: "b", inputSchema: schema() }, { x: 1 });
    const other = { name: "c", inputSchema: { type: "object", required: ["y"], $id: "same-id" } };
    expect(failure(() => validator.validate(other, { x: 1 })).message).toContain("required property 'y'");
  });

  it("stays correct when the cache evicts schemas", () => {
    const validator = new ArgumentValidator({ maxCached: 2 });
    const tools = ["a", "b", "c"].map((p) => ({ name: p, inputSchema: { type: "object", required: [p] } }));
    for (let round = 0; round < 2; round++) {
      for (const t of tools) {
        expect(() => validator.validate(t, { [t.name]: 1 })).not.toThrow();
        expect(() => validator.validate(t, {})).toThrow(GatewayError);
      }
    }
  });
});

describe("ArgumentValidator.outputProblem", () => {
  const counter = {
    name: "counter",
    outputSchema: { type: "object", properties: { n: { type: "integer" } }, required: ["n"] },
  };

  it("passes a conforming result, an isError one, and a tool without an output schema", () => {
    const validator = new ArgumentValidator();
    expect(validator.outputProblem(counter, { content: [], structuredContent: { n: 1 } })).toBeUndefined();
    expect(validator.outputProblem(counter, { content: [], isError: true })).toBeUndefined();
    expect(validator.outputProblem(writeFile, { content: [] })).toBeUndefined();
  });

  it("names a missing structuredContent and each field that breaks the schema", () => {
    const validator = new ArgumentValidator();
    expect(validator.outputProblem(counter, { content: [] })).toBe("the result has no structuredContent");
    expect(validator.outputProblem(counter, { content: [], structuredContent: { n: "x" } })).toBe(
      "its structuredContent at /n: must be integer",
    );
  });

  it("passes results of a schema it cannot compile, and says so once", () => {
    const { lines, logger } = recordingLogger();
    const validator = new ArgumentValidator({ logger });
    const broken = {
      name: "broken",
      outputSchema: { type: "object", properties: { a: { $ref: "#/nope" } } },
    };
    for (let i = 0; i < 2; i++) {
      expect(
        validator.outputProblem(broken, { content: [], structuredContent: { a: 1 } }, { upstream: "up" }),
      ).toBe(undefined);
    }
    expect(lines.map((l) => l.msg)).toEqual([
      'cannot compile the output schema of tool "broken" of upstream "up"; its results are not validated',
    ]);
  });
});
