/**
 * Ending a sealed 2025-11-25 session ends it on every replica (stores/revocations.ts), on a real redis-server
 * with two gateways: a DELETE on one replica closes the copy another rebuilt and makes every replica refuse
 * the id (404), without any replica rebuilding it to end it; while Redis cannot be read, a replica refuses to
 * rebuild a session it does not hold (503, retry advice) but keeps serving the ones it holds. Without Redis
 * nothing changes: a DELETE ends the session where it is held. The waits are for conditions, never for
 * fixed times.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessionDigest } from "../../src/stores/revocations.ts";
import { eventually, type InProcessGateway, startGateway } from "../helpers/gateway.ts";
import { errorCode, type RawSession, rawPost, rawRequest, rawSession } from "../helpers/raw-mcp.ts";
import { RedisServer, redisServerBinary } from "../helpers/redis.ts";

const HAS_REDIS = redisServerBinary() !== undefined;
if (!HAS_REDIS)
  console.warn("session revocation skipped: redis-server is not installed (apt-get install redis-server)");

const PREFIX = `revoke-test-${process.pid}:`;
const MAX_AGE_MS = 60 * 60_000;
const LIST = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" });

describe.skipIf(!HAS_REDIS)("ending a sealed session on every replica (Redis)", () => {
  let redis: RedisServer;
  let reader: Redis;
  let a: InProcessGateway;
  let b: InProcessGateway;

  const list = (gw: InProcessGateway, session: RawSession) => rawPost(gw.url, LIST, session.headers);
  const end = (gw: InProcessGateway, session: RawSession) =>
    rawRequest(gw.url, { method: "DELETE", headers: session.headers });
  const revokedKey = (session: RawSession) => `${PREFIX}revoked:${sessionDigest(session.id)}`;

  beforeAll(async () => {
    redis = await RedisServer.start();
    reader = new Redis(redis.url);
    reader.on("error", () => {}); // Redis is killed in one test; the reader reconnects by itself
    const config = {
      mcpServers: {},
      security: { pinning: { mode: "off" } },
      cluster: {
        redis: redis.url,
        keyPrefix: PREFIX,
        pingMs: 100,
        commandTimeoutMs: 500,
        sessions: { key: "revoke-test-key-0123456789abcdef0123", maxAgeMs: MAX_AGE_MS },
      },
    };
    [a, b] = [await startGateway(config), await startGateway(config)];
    // A loaded machine may start a gateway before its first ping answers: the tests begin in shared mode.
    for (const gw of [a, b]) await eventually(() => gw.gateway.cluster?.shared === true);
  });

  afterAll(async () => {
    await Promise.allSettled([a?.stop(), b?.stop()]);
    reader?.disconnect();
    await redis?.stop();
  });

  it("closes the copy another replica rebuilt and refuses the id everywhere after a DELETE", async () => {
    const session = await rawSession(a.url);
    expect(session.id).toMatch(/^tg1\./);
    expect((await list(b, session)).status).toBe(200);
    expect(b.gateway.sessionCount).toBe(1);

    expect((await end(a, session)).status).toBe(200);
    expect(a.gateway.sessionCount).toBe(0);
    await eventually(() => b.gateway.sessionCount === 0);
    for (const gw of [a, b]) {
      const reply = await list(gw, session);
      expect(reply.status).toBe(404);
      expect(errorCode(reply)).toBe(-32001);
    }
    expect(a.gateway.sessionCount + b.gateway.sessionCount).toBe(0);
    // One key per ended id, expiring with the id's remaining max age.
    const ttl = await reader.pttl(revokedKey(session));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(MAX_AGE_MS);
  });

  it("ends a session held by another replica on a DELETE without rebuilding it", async () => {
    const session = await rawSession(a.url);
    expect((await list(a, session)).status).toBe(200);
    expect(a.gateway.sessionCount).toBe(1);

    expect((await end(b, session)).status).toBe(200);
    expect(b.gateway.sessionCount).toBe(0);
    await eventually(() => a.gateway.sessionCount === 0);
    expect((await list(a, session)).status).toBe(404);
    expect((await list(b, session)).status).toBe(404);
  });

  it("answers 404 to a DELETE of another principal's or a forged id", async () => {
    const forged = { id: "tg1.AAAA", headers: { "mcp-session-id": "tg1.AAAA" } };
    expect((await end(b, forged)).status).toBe(404);
  });

  it("refuses to rebuild while Redis cannot be read, keeps serving held sessions, and writes a DELETE made meanwhile once Redis is back", async () => {
    const held = await rawSession(a.url);
    const moving = await rawSession(a.url);
    redis.freeze();
    try {
      for (const gw of [a, b]) await eventually(() => gw.gateway.cluster?.shared === false);
      // B cannot tell whether `moving` was ended elsewhere: it refuses with a reason and retry advice.
      const refused = await list(b, moving);
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBe("5");
      expect(JSON.stringify(refused.messages)).toContain("cluster store is unreachable");
      expect(b.gateway.sessionCount).toBe(0);
      // A holds both: its sessions never wait for Redis.
      expect((await list(a, held)).status).toBe(200);
      expect((await list(a, moving)).status).toBe(200);
      // Ended on A while Redis is away: A refuses it at once; the record is written when Redis answers.
      expect((await end(a, held)).status).toBe(200);
      expect((await list(a, held)).status).toBe(404);
    } finally {
      redis.thaw();
    }
    await eventually(async () => (await reader.exists(revokedKey(held))) === 1);
    for (const gw of [a, b]) await eventually(() => gw.gateway.cluster?.shared === true);
    expect((await list(b, held)).status).toBe(404);
    // A session nobody ended moves to B again once Redis answers.
    expect((await list(b, moving)).status).toBe(200);
  });

  it("ends a session another replica holds after Redis was killed and restarted (the record waits for it)", async () => {
    const session = await rawSession(a.url);
    const held = a.gateway.sessionCount;
    await redis.pause();
    try {
      for (const gw of [a, b]) await eventually(() => gw.gateway.cluster?.shared === false);
      // B does not hold it and cannot reach Redis: the DELETE is answered, the record kept until Redis is back.
      expect((await end(b, session)).status).toBe(200);
      expect((await list(a, session)).status).toBe(200);
    } finally {
      await redis.resume();
    }
    // A held it all along: a 404 means its copy was closed (a held session is never looked up in Redis).
    await eventually(async () => (await list(a, session)).status === 404);
    expect(a.gateway.sessionCount).toBe(held - 1);
    expect(await reader.exists(revokedKey(session))).toBe(1);
  });
});

describe("ending a sealed session without Redis", () => {
  it("ends it on the replica that holds it only: another replica still rebuilds the id (unchanged)", async () => {
    const config = {
      mcpServers: {},
      security: { pinning: { mode: "off" } },
      cluster: { sessions: { key: "revoke-test-key-0123456789abcdef0123" } },
    };
    const [a, b] = [await startGateway(config), await startGateway(config)];
    try {
      const session = await rawSession(a.url);
      const reply = await rawRequest(a.url, { method: "DELETE", headers: session.headers });
      expect(reply.status).toBe(200);
      expect(a.gateway.sessionCount).toBe(0);
      expect((await rawPost(b.url, LIST, session.headers)).status).toBe(200);
    } finally {
      await Promise.allSettled([a.stop(), b.stop()]);
    }
  });
});
