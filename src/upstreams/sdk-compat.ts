/**
 * Every workaround for SDK internals, in one place, pinned to the SDK version it was written against.
 * test/unit/upstreams/sdk-compat.test.ts fails when the installed version differs from the pin or when the
 * behaviour a workaround repairs is gone: re-check each workaround against the new SDK then.
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";

/** `@modelcontextprotocol/client` (v2, the 2026-07-28 client) these workarounds were checked against. */
export const SDK_V2_CLIENT_VERSION = "2.4.0";

/**
 * The SDK's v2 Protocol (2.4: the 2026 stdio test in upstream-eras.test.ts loses both progress updates
 * without this) runs a notification handler one microtask late but settles a response at once, so a
 * progress update read together with its response (one stdio chunk: "100%, then the result") finds its
 * handler gone and is dropped. Delivering responses one microtask later keeps them behind the
 * notifications that arrived before them. Protocol.connect sets `onmessage` right before `start()`.
 * (The 2025 connection, jsonrpc-connection.ts, handles messages in arrival order and needs none of this.)
 */
export function deliverResponsesLast<T extends Pick<Transport, "start" | "onmessage">>(transport: T): T {
  const start = transport.start.bind(transport);
  transport.start = () => {
    const deliver = transport.onmessage;
    if (deliver) {
      transport.onmessage = (message, extra) => {
        if ("method" in message) deliver(message, extra);
        else queueMicrotask(() => deliver(message, extra));
      };
    }
    return start();
  };
  return transport;
}
