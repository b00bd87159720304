import { describe, expect, it } from "vitest";
import { SessionSealer } from "../../../src/server/session-seal.ts";

const SECRET = "a-shared-secret-of-at-least-32-characters";
const INIT = {
  jsonrpc: "2.0" as const,
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-11-25",
    capabilities: { sampling: {} },
    clientInfo: { name: "c", version: "1" },
  },
};

describe("sealed session ids", () => {
  it("carry the principal and the initialize request to another replica with the same key", () => {
    const id = new SessionSealer({ secret: SECRET, maxAgeMs: 60_000 }).seal("alice", INIT);
    expect(id).toMatch(/^tg1\.[A-Za-z0-9_-]+$/);
    const opened = new SessionSealer({ secret: SECRET, maxAgeMs: 60_000 }).open(id);
    expect(opened?.principal).toBe("alice");
    expect(opened?.initialize).toEqual(INIT);
  });

  it("refuse an id that was tampered with, sealed with another key, foreign or too old", () => {
    let now = 1_000;
    const sealer = new SessionSealer({ secret: SECRET, maxAgeMs: 60_000, now: () => now });
    const id = sealer.seal("alice", INIT);
    const flipped = id.slice(0, 10) + (id[10] === "A" ? "B" : "A") + id.slice(11);
    expect(sealer.open(flipped)).toBeUndefined();
    expect(new SessionSealer({ secret: `${SECRET}-other`, maxAgeMs: 60_000 }).open(id)).toBeUndefined();
    expect(sealer.open("3f2c1d9e-uuid-from-a-replica-without-a-key")).toBeUndefined();
    expect(sealer.open("tg1.")).toBeUndefined();
    now += 60_001;
    expect(sealer.open(id)).toBeUndefined();
  });

  it("never repeats an id for the same state (a fresh IV each time)", () => {
    const sealer = new SessionSealer({ secret: SECRET, maxAgeMs: 60_000 });
    expect(sealer.seal("alice", INIT)).not.toBe(sealer.seal("alice", INIT));
  });

  it("tell how long an id is still accepted (the TTL of its revocation record)", () => {
    let now = 1_000;
    const sealer = new SessionSealer({ secret: SECRET, maxAgeMs: 60_000, now: () => now });
    const state = sealer.open(sealer.seal("alice", INIT));
    if (!state) throw new Error("a fresh id opens");
    now += 15_000;
    expect(sealer.remainingMs(state)).toBe(45_000);
    now += 45_000;
    expect(sealer.remainingMs(state)).toBe(0);
  });
});
