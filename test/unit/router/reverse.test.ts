/**
 * Resource subscriptions on the reverse path, per connection: a per-principal upstream has one connection per
 * principal (routing key `NAME KIND:ID`), each asked for its own principal's sessions and notifying only them.
 */
import { describe, expect, it } from "vitest";
import { ReversePath } from "../../../src/router/reverse.ts";
import type { Caller } from "../../../src/router/router.ts";
import { silentLogger } from "../../../src/telemetry/log.ts";

const URI = "notes://today";
const UPDATED = "notifications/resources/updated";

function session(id: string): Caller & { received: string[] } {
  const received: string[] = [];
  return {
    sessionId: id,
    received,
    request: () => Promise.reject(new Error("not asked here")),
    notify: async (method, params) => {
      received.push(`${method} ${String(params?.uri)}`);
    },
  };
}

function reversePath(): ReversePath {
  return new ReversePath({ upstreams: { all: () => [] }, log: silentLogger });
}

describe("resource subscriptions by connection", () => {
  it("asks each principal's connection once, and sends its updates to that principal's sessions only", async () => {
    const reverse = reversePath();
    const [alice1, alice2, bob] = [session("a1"), session("a2"), session("b")];
    const aliceKey = "notes oauth:alice";
    const bobKey = "notes oauth:bob";
    expect(reverse.subscribe(aliceKey, URI, alice1)).toBe(true);
    expect(reverse.subscribe(aliceKey, URI, alice2)).toBe(false);
    // Bob's own connection has not been asked yet: his subscription must reach it.
    expect(reverse.subscribe(bobKey, URI, bob)).toBe(true);

    reverse.routeNotification(aliceKey, UPDATED, { uri: URI });
    await Promise.resolve();
    expect(alice1.received).toEqual([`${UPDATED} ${URI}`]);
    expect(alice2.received).toEqual([`${UPDATED} ${URI}`]);
    expect(bob.received).toEqual([]);

    reverse.routeNotification(bobKey, UPDATED, { uri: URI });
    await Promise.resolve();
    expect(bob.received).toEqual([`${UPDATED} ${URI}`]);
    expect(alice1.received).toHaveLength(1);
  });

  it("tells a connection when its last session unsubscribes or ends, and not before", () => {
    const reverse = reversePath();
    const [one, two, other] = [session("1"), session("2"), session("3")];
    reverse.subscribe("notes", URI, one);
    reverse.subscribe("notes", URI, two);
    reverse.subscribe("notes oauth:bob", URI, other);
    expect(reverse.unsubscribe("notes", URI, one)).toBe(false);
    // Another connection's subscriber is not this connection's.
    expect(reverse.unsubscribe("notes", URI, other)).toBe(false);
    expect(reverse.subscribedOn("notes")).toBe(true);
    reverse.sessionClosed(two);
    // Nobody listens on it any more (the pool may close it when idle).
    expect(reverse.subscribedOn("notes")).toBe(false);
    // Ended with its session: the next subscriber on that connection asks it again.
    expect(reverse.subscribe("notes", URI, one)).toBe(true);
    expect(reverse.unsubscribe("notes oauth:bob", URI, other)).toBe(true);
    expect(reverse.subscribedOn("notes oauth:bob")).toBe(false);
    expect(reverse.subscribedOn("notes")).toBe(true);
  });
});
