/**
 * The era probe for stdio upstreams, on the upstream's own process. The SDK's `'auto'` negotiation probes a
 * stdio server on a second, short-lived process (its doc: so that servers which exit on any request before
 * `initialize` do not cost the real one); measured here that adds a whole process start to every connect of
 * every 2025 stdio upstream (about 1.4 s for a Node server on this machine, double the connect time). So
 * toolgate sends `server/discover` on the real process first: a 2026 answer hands that process to the v2
 * client (`connect(..., { prior })`, nothing more on the wire), anything else to the 2025 connection's
 * `initialize` on the same process. A server that exits on the probe is started once more for `initialize`.
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { CLIENT_CAPABILITIES } from "./client.ts";

const PROBE_ID = "toolgate-discover-probe";
const MODERN = "2026-07-28";

export type StdioVerdict =
  | { kind: "modern"; discover: Record<string, unknown> }
  | { kind: "legacy" }
  /** The process ended during the probe. */
  | { kind: "exited" };

/**
 * Start `transport`, ask `server/discover`, and leave the transport started for the client that takes it
 * (its `start()` becomes a no-op). No answer within `timeoutMs` means a 2025 server that ignores unknown
 * requests before `initialize`, as the SDK also concludes on stdio.
 */
export async function probeStdio(
  transport: Transport,
  clientInfo: { name: string; version: string },
  timeoutMs: number,
): Promise<StdioVerdict> {
  let settle: (verdict: StdioVerdict) => void = () => {};
  const verdict = new Promise<StdioVerdict>((resolve) => {
    settle = resolve;
  });
  const timer = setTimeout(() => settle({ kind: "legacy" }), timeoutMs);
  transport.onmessage = (message) => {
    if (!("id" in message) || message.id !== PROBE_ID) return;
    const result = "result" in message ? (message.result as Record<string, unknown>) : undefined;
    const versions = result?.supportedVersions;
    settle(
      result && Array.isArray(versions) && versions.includes(MODERN)
        ? { kind: "modern", discover: result }
        : { kind: "legacy" },
    );
  };
  transport.onclose = () => settle({ kind: "exited" });
  try {
    await transport.start();
    await transport.send({
      jsonrpc: "2.0",
      id: PROBE_ID,
      method: "server/discover",
      params: {
        _meta: {
          "io.modelcontextprotocol/protocolVersion": MODERN,
          "io.modelcontextprotocol/clientInfo": clientInfo,
          "io.modelcontextprotocol/clientCapabilities": CLIENT_CAPABILITIES,
        },
      },
    });
    return await verdict;
  } catch {
    return { kind: "exited" };
  } finally {
    clearTimeout(timer);
    transport.onmessage = undefined;
    transport.onclose = undefined;
    transport.start = async () => {};
  }
}
