/**
 * The 2026-07-28 header checks: `Mcp-Param-*` headers for `x-mcp-header` arguments are found once per input
 * schema, and that cache never lets a request through on another request's headers or another schema's marks.
 */
import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { ModernError } from "../../../src/protocol/era.ts";
import { checkHeaders } from "../../../src/server/eras/modern-checks.ts";

const VERSION = "2026-07-28";
const META = {
  "io.modelcontextprotocol/protocolVersion": VERSION,
  "io.modelcontextprotocol/clientCapabilities": {},
};

function request(headers: Record<string, string>): IncomingMessage {
  return {
    headers: { "mcp-protocol-version": VERSION, "mcp-method": "tools/call", "mcp-name": "t", ...headers },
  } as unknown as IncomingMessage;
}

function check(schema: Record<string, unknown>, args: unknown, headers: Record<string, string> = {}) {
  checkHeaders(request(headers), "tools/call", { name: "t", arguments: args, _meta: META }, () => schema);
}

function refusal(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ModernError);
    expect((err as ModernError).code).toBe(-32020);
    return (err as ModernError).message;
  }
  throw new Error("expected a -32020 refusal");
}

const REGION = {
  type: "object",
  properties: {
    region: { type: "string", "x-mcp-header": "Region" },
    limit: { type: "number", "x-mcp-header": "Limit" },
    filter: {
      type: "object",
      properties: { owner: { type: "string", "x-mcp-header": "Owner" } },
    },
  },
};

describe("Mcp-Param-* checks", () => {
  it("judges each request by its own headers, with the schema's marks found once", () => {
    check(REGION, { region: "eu-west" }, { "mcp-param-region": "eu-west" });
    // Same schema object again (the cached marks): a missing or different header is still refused.
    expect(refusal(() => check(REGION, { region: "eu-west" }))).toContain(
      "Mcp-Param-Region header is missing",
    );
    expect(refusal(() => check(REGION, { region: "eu-west" }, { "mcp-param-region": "us-east" }))).toContain(
      "does not match argument 'region'",
    );
    check(REGION, { region: "us-east" }, { "mcp-param-region": "us-east" });
  });

  it("checks nested and numeric arguments where the arguments reach them, and skips absent ones", () => {
    check(REGION, {});
    check(REGION, { region: null, filter: "not an object" });
    check(REGION, { limit: 10 }, { "mcp-param-limit": "10.0" });
    expect(refusal(() => check(REGION, { limit: 10 }, { "mcp-param-limit": "11" }))).toContain("'limit'");
    check(REGION, { filter: { owner: "ann" } }, { "mcp-param-owner": "ann" });
    expect(refusal(() => check(REGION, { filter: { owner: "ann" } }))).toContain(
      "Mcp-Param-Owner header is missing for argument 'owner'",
    );
    // Base64 sentinel for values a header cannot carry as they are.
    const encoded = `=?base64?${Buffer.from("zürich").toString("base64")}?=`;
    check(REGION, { region: "zürich" }, { "mcp-param-region": encoded });
  });

  it("keeps the marks of each schema apart, even when the shapes look alike", () => {
    const other = {
      type: "object",
      properties: { region: { type: "string", "x-mcp-header": "Zone" } },
    };
    const unmarked = { type: "object", properties: { region: { type: "string" } } };
    check(REGION, { region: "a" }, { "mcp-param-region": "a" });
    expect(refusal(() => check(other, { region: "a" }, { "mcp-param-region": "a" }))).toContain(
      "Mcp-Param-Zone header is missing",
    );
    check(other, { region: "a" }, { "mcp-param-zone": "a" });
    check(unmarked, { region: "a" });
  });

  it("reports the first mismatch in schema order", () => {
    const message = refusal(() => check(REGION, { region: "a", limit: 1, filter: { owner: "b" } }));
    expect(message).toContain("Mcp-Param-Region");
  });
});
