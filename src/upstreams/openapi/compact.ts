/**
 * Compact mode for large APIs: instead of one tool per operation (GitHub's REST API has about a thousand),
 * three meta-tools: search the operations, describe one (its input schema), invoke one. The catalog
 * resolves an invoke to the operation's own policies (catalog.ts `operationRoute`).
 */
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import type { OperationPlan } from "./operations.ts";

const SEARCH_TOOL = "search_operations";
const DESCRIBE_TOOL = "describe_operation";
export const INVOKE_TOOL = "invoke_operation";

const MAX_RESULTS = 50;

export type MetaCall =
  | { kind: "result"; result: Record<string, unknown> }
  | { kind: "invoke"; plan: OperationPlan; args: Record<string, unknown> };

export class CompactTools {
  readonly tools: Tool[];
  readonly operationTools: Tool[];
  readonly #plans: Map<string, OperationPlan>;
  /** Lower-cased text searched per operation. */
  readonly #haystack: Map<string, string>;

  constructor(upstream: string, plans: OperationPlan[]) {
    this.#plans = new Map(plans.map((p) => [p.name, p]));
    this.operationTools = plans.map((p) => p.tool);
    this.#haystack = new Map(
      plans.map((p) => [
        p.name,
        [p.name, p.method, p.path, p.tags.join(" "), p.tool.title ?? "", p.tool.description ?? ""]
          .join(" ")
          .toLowerCase(),
      ]),
    );
    const name = { type: "string", description: "The operation name, as search_operations lists it." };
    this.tools = [
      {
        name: SEARCH_TOOL,
        description: `Search the ${plans.length} operations of the ${upstream} HTTP API by words (name, path, tag, summary). Then describe_operation for its arguments, and invoke_operation to call it.`,
        inputSchema: {
          type: "object",
          properties: {
            query: { type: "string", description: "Words to look for, e.g. `list issues`." },
            limit: { type: "integer", minimum: 1, maximum: MAX_RESULTS },
          },
          required: ["query"],
        },
        annotations: {
          readOnlyHint: true,
          idempotentHint: true,
          destructiveHint: false,
          openWorldHint: false,
        },
      },
      {
        name: DESCRIBE_TOOL,
        description: "The description, input schema and annotations of one operation.",
        inputSchema: { type: "object", properties: { name }, required: ["name"] },
        annotations: {
          readOnlyHint: true,
          idempotentHint: true,
          destructiveHint: false,
          openWorldHint: false,
        },
      },
      {
        name: INVOKE_TOOL,
        description:
          "Call one operation with arguments that match its input schema (see describe_operation).",
        inputSchema: {
          type: "object",
          properties: { name, arguments: { type: "object", description: "The operation's arguments." } },
          required: ["name"],
        },
        annotations: { openWorldHint: true },
      },
    ];
  }

  /** The operation an invoke names, if any (for per-operation policies). */
  invoked(args: Record<string, unknown>): OperationPlan | undefined {
    return typeof args.name === "string" ? this.#plans.get(args.name) : undefined;
  }

  handle(tool: string, args: Record<string, unknown>): MetaCall {
    if (tool === SEARCH_TOOL) return result(this.#search(String(args.query ?? ""), Number(args.limit ?? 20)));
    const plan = this.invoked(args);
    if (tool !== DESCRIBE_TOOL && tool !== INVOKE_TOOL) return error(`no tool named "${tool}"`);
    if (!plan) return error(`no operation named ${JSON.stringify(args.name)}; search_operations finds them`);
    if (tool === DESCRIBE_TOOL) return result(plan.tool);
    const inner = args.arguments;
    return {
      kind: "invoke",
      plan,
      args: inner && typeof inner === "object" ? (inner as Record<string, unknown>) : {},
    };
  }

  #search(query: string, limit: number) {
    const words = query.toLowerCase().split(/\W+/).filter(Boolean);
    const scored: { name: string; score: number }[] = [];
    for (const [name, text] of this.#haystack) {
      const score = words.reduce(
        (s, w) => s + (text.includes(w) ? 1 + (name.toLowerCase().includes(w) ? 1 : 0) : 0),
        0,
      );
      if (score > 0) scored.push({ name, score });
    }
    scored.sort((a, b) => b.score - a.score || a.name.localeCompare(b.name));
    const n = Math.max(1, Math.min(MAX_RESULTS, Number.isFinite(limit) ? limit : 20));
    return {
      operations: scored.slice(0, n).flatMap(({ name }) => {
        const p = this.#plans.get(name);
        return p ? [{ name, method: p.method.toUpperCase(), path: p.path, summary: p.tool.title ?? "" }] : [];
      }),
      total: scored.length,
    };
  }
}

function result(value: unknown): MetaCall {
  return {
    kind: "result",
    result: { content: [{ type: "text", text: JSON.stringify(value) }], structuredContent: value },
  };
}

function error(text: string): MetaCall {
  return { kind: "result", result: { content: [{ type: "text", text }], isError: true } };
}
