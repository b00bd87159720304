import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/load.ts";
import { parseRetryAfter } from "../../../src/upstreams/openapi/http-call.ts";
import { dereferenceDocument } from "../../../src/upstreams/openapi/load.ts";
import { planOperations } from "../../../src/upstreams/openapi/operations.ts";
import { toJsonSchema } from "../../../src/upstreams/openapi/schema.ts";

function openapiUpstream(entry: Record<string, unknown>) {
  const { config } = resolveConfig(
    { mcpServers: { api: { type: "openapi", ...entry } } },
    {},
    { file: "/configs/toolgate.json" },
  );
  const transport = config.upstreams[0]?.transport;
  if (transport?.type !== "openapi") throw new Error("not an openapi upstream");
  return transport;
}

describe("OpenAPI schema conversion", () => {
  it("turns 3.0 nullable and boolean exclusive bounds into JSON Schema 2020-12", () => {
    expect(
      toJsonSchema(
        {
          type: "integer",
          nullable: true,
          minimum: 1,
          exclusiveMinimum: true,
          example: 3,
          xml: { name: "n" },
        },
        "request",
      ),
    ).toEqual({ type: ["integer", "null"], exclusiveMinimum: 1 });
    expect(toJsonSchema({ type: "string", enum: ["a"], nullable: true }, "request")).toEqual({
      type: ["string", "null"],
      enum: ["a", null],
    });
  });

  it("drops readOnly properties from requests and writeOnly ones from responses", () => {
    const schema = {
      type: "object",
      properties: { id: { type: "string", readOnly: true }, secret: { type: "string", writeOnly: true } },
      required: ["id", "secret"],
    };
    expect(toJsonSchema(schema, "request")).toEqual({
      type: "object",
      properties: { secret: { type: "string", writeOnly: true } },
      required: ["secret"],
    });
    expect(toJsonSchema(schema, "response").properties).toEqual({ id: { type: "string", readOnly: true } });
  });

  it("describes a recursive reference as an open schema", () => {
    expect(toJsonSchema({ $ref: "#/components/schemas/Node" }, "request")).toEqual({
      description: "recursive reference to Node: any value of that shape",
    });
  });
});

describe("OpenAPI document mapping", () => {
  it("refuses Swagger 2.0 with a clear message", async () => {
    await expect(
      dereferenceDocument({ swagger: "2.0", paths: {} }, { spec: undefined, externalRefs: false }),
    ).rejects.toThrow(/not OpenAPI 3\.0 or 3\.1 \(Swagger 2\.0\)/);
  });

  it("does not follow external references unless configured", async () => {
    const doc = {
      openapi: "3.1.0",
      info: { title: "t", version: "1" },
      paths: {
        "/x": {
          get: {
            operationId: "x",
            parameters: [{ name: "q", in: "query", schema: { $ref: "https://example.invalid/schema.json" } }],
            responses: { "200": { description: "ok" } },
          },
        },
      },
    };
    const loaded = await dereferenceDocument(doc, { spec: undefined, externalRefs: false });
    const transport = openapiUpstream({ spec: "x.json", baseUrl: "https://api.example.com" });
    const [plan] = planOperations(loaded, transport).plans;
    expect(plan?.tool.inputSchema.properties?.q).toEqual({
      description: "recursive reference to schema.json: any value of that shape",
    });
  });

  it("names operations without an operationId by method and path, unique and within 64 characters", async () => {
    const long = `/${"segment/".repeat(12)}{id}`;
    const doc = await dereferenceDocument(
      {
        openapi: "3.0.3",
        info: { title: "t", version: "1" },
        paths: {
          "/a.b": { get: { responses: {} } },
          "/a_b": { get: { responses: {} } },
          [long]: {
            get: {
              parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
              responses: {},
            },
          },
        },
      },
      { spec: undefined, externalRefs: false },
    );
    const names = planOperations(doc, openapiUpstream({ spec: "x.json", baseUrl: "https://h" })).plans.map(
      (p) => p.name,
    );
    expect(names.slice(0, 2)).toEqual(["get__a_b", "get__a_b_2"]);
    expect(names[2]).toMatch(/^get__segment_segment_.*_[0-9a-f]{8}$/);
    expect(names[2]?.length).toBe(64);
  });
});

describe("OpenAPI operation selection and annotations", () => {
  it("lets x-mcp: true override the filters and reads x-idempotent", async () => {
    const doc = await dereferenceDocument(
      {
        openapi: "3.1.0",
        info: { title: "t", version: "1" },
        paths: {
          "/a": { get: { operationId: "listA", tags: ["a"], responses: {} } },
          "/b": {
            post: { operationId: "makeB", "x-mcp": true, "x-idempotent": true, responses: {} },
            patch: { operationId: "patchB", tags: ["a"], responses: {} },
          },
        },
      },
      { spec: undefined, externalRefs: false },
    );
    const transport = openapiUpstream({
      spec: "x.json",
      baseUrl: "https://h",
      operations: { tags: ["a"], methods: ["GET"] },
    });
    const plans = planOperations(doc, transport).plans;
    expect(plans.map((p) => p.name)).toEqual(["listA", "makeB"]);
    expect(plans[1]?.tool.annotations).toMatchObject({ readOnlyHint: false, idempotentHint: true });
  });
});

describe("OpenAPI config", () => {
  it("resolves a relative spec path against the config file's folder", () => {
    expect(openapiUpstream({ spec: "specs/api.yaml" }).spec).toBe("/configs/specs/api.yaml");
  });

  it("names what is wrong with an openapi entry", () => {
    const issues = (entry: Record<string, unknown>, type = "openapi") => {
      try {
        resolveConfig({ mcpServers: { api: { type, ...entry } } }, {});
        return [];
      } catch (err) {
        return ((err as { data?: { issues?: unknown[] } }).data?.issues ?? []) as {
          path: string;
          message: string;
        }[];
      }
    };
    expect(issues({})).toEqual([
      { path: "$.mcpServers.api.spec", message: "an openapi server needs a spec or endpoints" },
    ]);
    expect(issues({ spec: "http://example.com/openapi.json" })[0]?.message).toBe("a spec URL must use https");
    expect(issues({ endpoints: { x: { method: "GET", url: "/x" } } })[0]).toMatchObject({
      path: "$.mcpServers.api.endpoints.x.url",
    });
    expect(issues({ url: "http://h/mcp", spec: "a.json" }, "http")[0]).toEqual({
      path: "$.mcpServers.api.spec",
      message: 'only a server of type "openapi" takes this key',
    });
    expect(issues({ spec: "a.json", auth: { token: "x" } })[0]?.path).toBe("$.mcpServers.api.auth.token");
  });
});

describe("Retry-After", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(
      parseRetryAfter("Wed, 21 Oct 2015 07:28:10 GMT", Date.parse("Wed, 21 Oct 2015 07:28:00 GMT")),
    ).toBe(10_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
  });
});
