/**
 * The four era pairings through the gateway binary: {2025-11-25 client (SDK v1), 2026-07-28 client (SDK v2,
 * version negotiation auto)} × {2025-11-25 upstream (test/fixtures/fault-server.ts on SDK v1), 2026-07-28
 * upstream (test/fixtures/modern-server.ts on the SDK's v2 server package)}. Each pairing lists, calls a tool
 * with progress, cancels a call mid-progress (the upstream's handler sees the abort), and answers one
 * elicitation round: a server→client request on a 2025 session, an input-required round for a 2026 client,
 * translated by toolgate wherever the two eras differ.
 *
 * The upstreams run in this process over Streamable HTTP so their own records (the fault server's stats,
 * the modern fixture's cancel counter and request log) are what the assertions read.
 */

import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { type RunningModernServer, startModernServer } from "../fixtures/modern-server.ts";
import { eventually, type GatewayProcess, spawnGateway, textOf } from "../helpers/gateway.ts";
import { expectAllProgress, type ProgressWatch, watchProgress } from "../helpers/progress.ts";

type Era = "2025-11-25" | "2026-07-28";
type Args = Record<string, unknown>;
interface CallOptions {
  onprogress?: (progress: { progress: number }) => void;
  signal?: AbortSignal;
}

/** A connected client of one era, the same four operations whichever SDK it is. */
interface Caller {
  listTools(): Promise<string[]>;
  callTool(name: string, args: Args, options?: CallOptions): Promise<unknown>;
  /** The messages of the elicitation requests this client answered. */
  asked: string[];
  /** Starts counting the progress updates this client reads late (test/helpers/progress.ts). */
  watchProgress(): ProgressWatch;
  close(): Promise<void>;
}

/** Answers an elicitation by filling every field the requested schema names with "Ada". */
function answer(params: { message: string; requestedSchema?: unknown }, asked: string[]) {
  asked.push(params.message);
  const properties = (params.requestedSchema as { properties?: Record<string, unknown> })?.properties ?? {};
  return {
    action: "accept" as const,
    content: Object.fromEntries(Object.keys(properties).map((key) => [key, "Ada"])),
  };
}

const QUESTION = "What is your name?";

const CLIENTS: Record<Era, { sdk: string; connect(url: string): Promise<Caller> }> = {
  "2025-11-25": {
    sdk: "SDK v1 @modelcontextprotocol/sdk",
    async connect(url) {
      const client = new Client(
        { name: "pairing-v1", version: "1.0.0" },
        { capabilities: { elicitation: {} } },
      );
      const asked: string[] = [];
      client.setRequestHandler(ElicitRequestSchema, async (request) =>
        answer(request.params as { message: string; requestedSchema?: unknown }, asked),
      );
      await client.connect(new StreamableHTTPClientTransport(new URL(url)));
      expect(client.getServerVersion()?.name).toBe("toolgate");
      return {
        asked,
        watchProgress: () => watchProgress(client),
        listTools: async () => (await client.listTools()).tools.map((t) => t.name),
        callTool: (name, args, options = {}) =>
          client.callTool({ name, arguments: args }, undefined, {
            ...(options.onprogress && { onprogress: options.onprogress }),
            ...(options.signal && { signal: options.signal }),
          }),
        close: () => client.close(),
      };
    },
  },
  "2026-07-28": {
    sdk: "SDK v2 @modelcontextprotocol/client",
    async connect(url) {
      const client = new ModernClient(
        { name: "pairing-v2", version: "1.0.0" },
        { versionNegotiation: { mode: "auto" }, capabilities: { elicitation: {} } },
      );
      const asked: string[] = [];
      client.setRequestHandler("elicitation/create", async (request) =>
        answer(request.params as { message: string; requestedSchema?: unknown }, asked),
      );
      await client.connect(new ModernTransport(new URL(url)));
      expect(client.getProtocolEra()).toBe("modern");
      return {
        asked,
        watchProgress: () => watchProgress(client),
        listTools: async () => (await client.listTools()).tools.map((t) => t.name),
        callTool: (name, args, options = {}) =>
          client.callTool(
            { name, arguments: args },
            {
              ...(options.onprogress && { onprogress: options.onprogress }),
              ...(options.signal && { signal: options.signal }),
            },
          ),
        close: () => client.close(),
      };
    },
  },
};

let legacy: RunningFaultServer;
let modern: RunningModernServer;
let gw: GatewayProcess;

/** What each upstream offers for the four steps, and how it shows that a call was cancelled. */
const UPSTREAMS: Record<
  Era,
  {
    fixture: string;
    prefix: string;
    progress: { tool: string; args: Args; updates: number[]; text: string };
    /** Sends its first progress update, then runs until cancelled. */
    hang: { tool: string; args: Args };
    cancelled(): number;
    elicit: { tool: string; args: Args };
  }
> = {
  "2025-11-25": {
    fixture: "fault-server (SDK v1)",
    prefix: "legacy__",
    progress: { tool: "progress", args: { steps: 3, intervalMs: 20 }, updates: [1, 2, 3], text: "done" },
    hang: { tool: "progress", args: { steps: 2, intervalMs: 600_000 } },
    cancelled: () => legacy.stats().cancelled.length,
    elicit: { tool: "elicit", args: { message: QUESTION } },
  },
  "2026-07-28": {
    fixture: "modern-server (SDK v2)",
    prefix: "modern__",
    progress: { tool: "slow", args: { ms: 20 }, updates: [1, 2], text: "done" },
    hang: { tool: "slow", args: { ms: 600_000 } },
    cancelled: () => modern.cancelled,
    elicit: { tool: "ask", args: {} },
  },
};

beforeAll(async () => {
  legacy = await startFaultServer({ transport: "http" });
  modern = await startModernServer();
  gw = await spawnGateway({
    mcpServers: {
      legacy: { type: "http", url: legacy.url },
      modern: { type: "http", url: modern.url },
    },
  });
  await eventually(async () => (await fetch(`${gw.base}/readyz`)).ok);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await legacy?.close();
  await modern?.close();
});

const ERAS = Object.keys(CLIENTS) as Era[];
const PAIRINGS = ERAS.flatMap((client) => ERAS.map((upstream) => ({ client, upstream })));

describe.each(PAIRINGS)(
  "a $client client to a $upstream upstream",
  ({ client: clientEra, upstream: era }) => {
    const up = UPSTREAMS[era];
    let client: Caller;

    beforeAll(async () => {
      client = await CLIENTS[clientEra].connect(gw.url);
    });

    afterAll(async () => {
      await client?.close();
    });

    it(`lists the ${up.fixture} tools`, async () => {
      const names = await eventually(async () => {
        const listed = await client.listTools();
        return listed.includes(`${up.prefix}${up.elicit.tool}`) ? listed : undefined;
      });
      expect(names).toEqual(
        expect.arrayContaining([up.progress.tool, up.hang.tool, up.elicit.tool].map((t) => up.prefix + t)),
      );
    });

    it("calls a tool and receives its progress", async () => {
      const progress: number[] = [];
      const watch = client.watchProgress();
      try {
        const result = await client.callTool(`${up.prefix}${up.progress.tool}`, up.progress.args, {
          onprogress: (p) => progress.push(p.progress),
        });
        expect(textOf(result)).toBe(up.progress.text);
      } finally {
        watch.stop();
      }
      expectAllProgress(watch, progress, up.progress.updates);
    });

    it("cancels a call mid-progress, and the upstream's handler sees the cancellation", async () => {
      const before = up.cancelled();
      const controller = new AbortController();
      const call = client.callTool(`${up.prefix}${up.hang.tool}`, up.hang.args, {
        signal: controller.signal,
        onprogress: () => controller.abort("the user gave up"),
      });
      await expect(call).rejects.toThrow();
      expect(controller.signal.aborted).toBe(true);
      await eventually(() => up.cancelled() === before + 1);
    });

    it("answers one elicitation round", async () => {
      const before = client.asked.length;
      const result = await client.callTool(`${up.prefix}${up.elicit.tool}`, up.elicit.args);
      expect(client.asked.slice(before)).toEqual([QUESTION]);
      expect(textOf(result)).toContain("Ada");
    });
  },
);

describe("the pairings ran on the eras they name", () => {
  it("spoke 2026-07-28 to the modern upstream (no initialize) and 2025-11-25 sessions to the fault server", () => {
    expect(modern.seen.some((r) => r.method === "server/discover")).toBe(true);
    expect(modern.seen.some((r) => r.method === "initialize")).toBe(false);
    // Both clients' calls reached each upstream.
    expect(legacy.stats().calls.elicit).toBe(2);
    expect(modern.seen.filter((r) => r.method === "tools/call" && r.params?.name === "ask").length).toBe(4);
  });
});
