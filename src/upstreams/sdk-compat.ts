/**
 * Every workaround for SDK internals, in one place, pinned to the SDK versions it was written against.
 * test/unit/upstreams/sdk-compat.test.ts fails when an installed version differs from a pin or when a
 * private member a workaround relies on is gone: re-check each workaround against the new SDK then.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";

/** `@modelcontextprotocol/sdk` (v1, the 2025-11-25 client) these workarounds were checked against. */
export const SDK_V1_VERSION = "1.32.2";
/** `@modelcontextprotocol/client` (v2, the 2026-07-28 client): `deliverResponsesLast` applies to it too. */
export const SDK_V2_CLIENT_VERSION = "2.4.0";

/** Private state of the v1 SDK's Protocol that the functions below read or repair. */
export interface SdkV1ProtocolInternals {
  _requestMessageId: number;
  _responseHandlers: Map<number, unknown>;
  _progressHandlers: Map<number, unknown>;
}

/** The id v1 Protocol.request is about to take (it reads and increments this counter synchronously). */
export function nextRequestId(client: Client): number {
  return (client as unknown as SdkV1ProtocolInternals)._requestMessageId;
}

/** Requests sent on a v1 client and not yet answered. */
export function pendingRequestCount(client: Client): number {
  return (client as unknown as SdkV1ProtocolInternals)._responseHandlers.size;
}

/**
 * SDK 1.32's Protocol.request keeps the response and progress handlers of a request whose send failed
 * (HTTP 503, refused connection): with a flapping upstream they pile up without bound. A settled request
 * has no use for them; deleting is a no-op when the SDK already did. (toolgate issue: handler leak on
 * failed sends, fixed in commit 5049f8d.)
 */
export function forgetRequest(client: Client, id: number): void {
  const internals = client as unknown as SdkV1ProtocolInternals;
  internals._responseHandlers.delete(id);
  internals._progressHandlers.delete(id);
}

/**
 * The SDK's Protocol (v1 1.32, and v2 2.4 alike: the 2026 stdio test in upstream-eras.test.ts loses both
 * progress updates without this) runs a notification handler one microtask late but settles a response at once, so a
 * progress update read together with its response (one stdio chunk: "100%, then the result") finds its
 * handler gone and is dropped. Delivering responses one microtask later keeps them behind the
 * notifications that arrived before them. Protocol.connect sets `onmessage` right before `start()`.
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
