/**
 * The merged catalog: every upstream's tools, prompts and resources under one namespace.
 * Tools and prompts get public names (`<prefix><separator><name>`, see names.ts); resource URIs stay as the
 * upstream wrote them and are routed back by exact URI or by URI template. Collisions are resolved in config
 * order (the first upstream wins) and reported, never silent.
 */

import { UriTemplate } from "@modelcontextprotocol/sdk/shared/uriTemplate.js";
import type {
  Prompt,
  Resource,
  ResourceTemplate,
  ServerCapabilities,
  Tool,
} from "@modelcontextprotocol/sdk/types.js";
import picomatch from "picomatch";
import type { UpstreamConfig } from "../config/load.ts";
import { extendPolicy, type ResolvedPolicy } from "../config/policy.ts";
import { fitName, publicName } from "./names.ts";

/** What the catalog needs to know of an upstream (the Upstream class satisfies it). */
export interface CatalogUpstream {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly tools: readonly Tool[];
  readonly resources: readonly Resource[];
  readonly resourceTemplates: readonly ResourceTemplate[];
  readonly prompts: readonly Prompt[];
  /** Compact mode (an OpenAPI upstream with many operations): the meta-tool that invokes them, and them. */
  readonly operations?: { invokeTool: string; tools: readonly Tool[] } | undefined;
  /** What the upstream declared at its handshake (its task support). */
  readonly capabilities?: ServerCapabilities | undefined;
}

export interface ToolRoute {
  /** Public name, as clients see it. */
  name: string;
  upstream: string;
  /** The upstream's own name of the tool. */
  upstreamTool: string;
  /** The definition served to clients (public name). */
  definition: Tool;
  policy: ResolvedPolicy;
  /** Safe to run twice: from config, else the tool's readOnlyHint/idempotentHint annotations. */
  idempotent: boolean;
  /**
   * The upstream takes this tool only as a task (`taskSupport: "required"`) and supports task-augmented
   * calls: a plain call is run as an upstream task whose result the gateway waits for.
   */
  upstreamTaskOnly?: boolean;
}

export interface PromptRoute {
  name: string;
  upstream: string;
  upstreamPrompt: string;
  definition: Prompt;
}

/**
 * Why a tool is not trusted: its definition `changed` since it was approved, or it is `unverified` (it could
 * not be compared with its pin: the pins cannot be read).
 */
export type DistrustCause = "changed" | "unverified";

/** A tool not trusted: "hold" hides it, "flag" serves it with a warning naming the cause. */
export type ToolVerdict = "ok" | { action: "hold" | "flag"; cause: DistrustCause };
export type ToolGate = (upstream: string, tool: Tool) => ToolVerdict;

/** A tool held back by the gate: its upstream and why. */
export interface HeldTool {
  upstream: string;
  cause: DistrustCause;
}

interface TemplateRoute {
  upstream: string;
  template: ResourceTemplate;
  matcher: UriTemplate | undefined;
}

export type CatalogKind = "tools" | "resources" | "prompts";

export interface CatalogOptions {
  separator: string;
  gate?: ToolGate;
}

export class Catalog {
  readonly #separator: string;

  /** Which upstream a public name would belong to by its prefix (for errors about tools not served yet). */
  ownerByPrefix(
    name: string,
    upstreams: Iterable<{ name: string; config: { prefix: string } }>,
  ): string | undefined {
    for (const upstream of upstreams) {
      const { prefix } = upstream.config;
      if (prefix !== "" && name.startsWith(`${prefix}${this.#separator}`)) return upstream.name;
    }
    return undefined;
  }
  readonly #gate: ToolGate | undefined;
  #tools = new Map<string, ToolRoute>();
  /** Compact mode: per invoke meta-tool (public name), a route per operation with the operation's policies. */
  #operations = new Map<string, Map<string, ToolRoute>>();
  #toolList: Tool[] = [];
  #held = new Map<string, HeldTool>();
  #prompts = new Map<string, PromptRoute>();
  #promptList: Prompt[] = [];
  #resources = new Map<string, { upstream: string; resource: Resource }>();
  #templates: TemplateRoute[] = [];
  #collisions: string[] = [];
  #fingerprints: Record<CatalogKind, string> = { tools: "", resources: "", prompts: "" };

  constructor(options: CatalogOptions) {
    this.#separator = options.separator;
    this.#gate = options.gate;
  }

  /** Rebuild from the upstreams' current lists; returns the kinds whose public view changed. */
  rebuild(upstreams: readonly CatalogUpstream[]): Set<CatalogKind> {
    const collisions: string[] = [];
    const tools = new Map<string, ToolRoute>();
    const operations = new Map<string, Map<string, ToolRoute>>();
    const held = new Map<string, HeldTool>();
    const prompts = new Map<string, PromptRoute>();
    const resources = new Map<string, { upstream: string; resource: Resource }>();
    const templates: TemplateRoute[] = [];

    for (const up of upstreams) {
      const { config } = up;
      const included = matcher(config.include, true);
      const excluded = matcher(config.exclude, false);
      for (const tool of up.tools) {
        if (!included(tool.name) || excluded(tool.name)) continue;
        const options = config.tools[tool.name];
        const name = options?.rename
          ? fitName(options.rename)
          : publicName(config.prefix, this.#separator, tool.name);
        if (tools.has(name) || held.has(name)) {
          collisions.push(
            `tool "${name}" of upstream "${up.name}" collides with one already served; it is not served`,
          );
          continue;
        }
        const verdict = this.#gate?.(up.name, tool) ?? "ok";
        if (verdict !== "ok" && verdict.action === "hold") {
          held.set(name, { upstream: up.name, cause: verdict.cause });
          continue;
        }
        const policy = extendPolicy(config.policy, options);
        const annotations = tool.annotations;
        const taskOnly =
          tool.execution?.taskSupport === "required" &&
          up.capabilities?.tasks?.requests?.tools?.call !== undefined;
        const served = withTaskPolicy({ ...tool, name }, policy, taskOnly);
        tools.set(name, {
          name,
          upstream: up.name,
          upstreamTool: tool.name,
          definition: verdict === "ok" ? served : flagged(served, verdict.cause),
          policy,
          idempotent:
            policy.idempotent ?? (annotations?.readOnlyHint === true || annotations?.idempotentHint === true),
          ...(taskOnly && { upstreamTaskOnly: true }),
        });
        if (up.operations?.invokeTool === tool.name) {
          operations.set(name, this.#operationRoutes(up, tool.name));
        }
      }
      for (const prompt of up.prompts) {
        const name = publicName(config.prefix, this.#separator, prompt.name);
        if (prompts.has(name)) {
          collisions.push(`prompt "${name}" of upstream "${up.name}" collides with one already served`);
          continue;
        }
        prompts.set(name, {
          name,
          upstream: up.name,
          upstreamPrompt: prompt.name,
          definition: { ...prompt, name },
        });
      }
      for (const resource of up.resources) {
        if (resources.has(resource.uri)) {
          collisions.push(
            `resource "${resource.uri}" of upstream "${up.name}" is also served by another upstream`,
          );
          continue;
        }
        resources.set(resource.uri, { upstream: up.name, resource });
      }
      for (const template of up.resourceTemplates) {
        templates.push({ upstream: up.name, template, matcher: parseTemplate(template.uriTemplate) });
      }
    }

    this.#tools = tools;
    this.#operations = operations;
    this.#held = held;
    this.#toolList = [...tools.values()].map((t) => t.definition);
    this.#prompts = prompts;
    this.#promptList = [...prompts.values()].map((p) => p.definition);
    this.#resources = resources;
    this.#templates = templates;
    this.#collisions = collisions;

    const next: Record<CatalogKind, string> = {
      tools: JSON.stringify(this.#toolList),
      prompts: JSON.stringify(this.#promptList),
      resources: JSON.stringify([[...resources.keys()], templates.map((t) => t.template)]),
    };
    const changed = new Set<CatalogKind>();
    for (const kind of ["tools", "resources", "prompts"] as const) {
      if (next[kind] !== this.#fingerprints[kind]) changed.add(kind);
    }
    this.#fingerprints = next;
    return changed;
  }

  tool(name: string): ToolRoute | undefined {
    return this.#tools.get(name);
  }

  /**
   * Compact mode: the route of the operation an invoke meta-tool call names (its own name, policies and input
   * schema; the call still goes to the meta-tool upstream), or undefined for any other call.
   */
  operationRoute(route: ToolRoute, args: Record<string, unknown>): ToolRoute | undefined {
    const routes = this.#operations.get(route.name);
    return routes && typeof args.name === "string" ? routes.get(args.name) : undefined;
  }

  #operationRoutes(up: CatalogUpstream, invokeTool: string): Map<string, ToolRoute> {
    const routes = new Map<string, ToolRoute>();
    const { config } = up;
    for (const op of up.operations?.tools ?? []) {
      const name = publicName(config.prefix, this.#separator, op.name);
      const policy = extendPolicy(config.policy, config.tools[op.name]);
      const annotations = op.annotations;
      routes.set(op.name, {
        name,
        upstream: up.name,
        upstreamTool: invokeTool,
        definition: { ...op, name },
        policy,
        idempotent:
          policy.idempotent ?? (annotations?.readOnlyHint === true || annotations?.idempotentHint === true),
      });
    }
    return routes;
  }

  /** The upstream holding back `name` and why, if the gate holds that tool. */
  heldBy(name: string): HeldTool | undefined {
    return this.#held.get(name);
  }

  /** How many tools of `upstream` are held back, for `cause` or for any. */
  heldCount(upstream: string, cause?: DistrustCause): number {
    let count = 0;
    for (const held of this.#held.values()) {
      if (held.upstream === upstream && (cause === undefined || held.cause === cause)) count++;
    }
    return count;
  }

  get tools(): readonly Tool[] {
    return this.#toolList;
  }

  toolRoutes(): IterableIterator<ToolRoute> {
    return this.#tools.values();
  }

  prompt(name: string): PromptRoute | undefined {
    return this.#prompts.get(name);
  }

  get prompts(): readonly Prompt[] {
    return this.#promptList;
  }

  get resources(): Resource[] {
    return [...this.#resources.values()].map((r) => r.resource);
  }

  get resourceTemplates(): ResourceTemplate[] {
    return this.#templates.map((t) => t.template);
  }

  /** The upstream serving a resource URI: an exact listed URI first, then the first matching template. */
  resourceUpstream(uri: string): string | undefined {
    const exact = this.#resources.get(uri);
    if (exact) return exact.upstream;
    return this.#templates.find((t) => t.matcher?.match(uri))?.upstream;
  }

  get collisions(): readonly string[] {
    return this.#collisions;
  }
}

function matcher(globs: string[], whenEmpty: boolean): (name: string) => boolean {
  if (globs.length === 0) return () => whenEmpty;
  return picomatch(globs);
}

function parseTemplate(template: string): UriTemplate | undefined {
  try {
    return new UriTemplate(template);
  } catch {
    return undefined;
  }
}

/**
 * Tools served as `taskSupport: "optional"` because the gateway serves both kinds of call: a tool the
 * gateway runs as a task itself (policy `task`) when its upstream offers none, and a tool its upstream
 * takes only as a task (a plain call waits for the upstream task's result).
 */
function withTaskPolicy(tool: Tool, policy: ResolvedPolicy, taskOnly: boolean): Tool {
  const support = tool.execution?.taskSupport;
  const bridged =
    taskOnly || (policy.task.mode !== "off" && support !== "optional" && support !== "required");
  return bridged ? { ...tool, execution: { ...tool.execution, taskSupport: "optional" } } : tool;
}

const WARNINGS: Record<DistrustCause, string> = {
  changed: "[toolgate: this tool's definition changed since it was approved; review before trusting it]",
  unverified:
    "[toolgate: this tool's definition could not be compared with its approved pin (the tool pins cannot be read now); review before trusting it]",
};

function flagged(tool: Tool, cause: DistrustCause): Tool {
  const warning = WARNINGS[cause];
  return { ...tool, description: tool.description ? `${warning} ${tool.description}` : warning };
}
