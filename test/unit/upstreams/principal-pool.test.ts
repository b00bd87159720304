import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/load.ts";
import { silentLogger } from "../../../src/telemetry/log.ts";
import { FileCredentialStore } from "../../../src/upstreams/auth/credential-store.ts";
import { PrincipalPool, principalKey } from "../../../src/upstreams/principal-pool.ts";

async function pool(ticketSecret?: string): Promise<PrincipalPool> {
  const store = new FileCredentialStore(await mkdtemp(join(tmpdir(), "toolgate-pool-unit-")), "k");
  return new PrincipalPool({
    store,
    log: silentLogger,
    upstreamOptions: () => ({ log: silentLogger }),
    loginCommand: (name) => `toolgate auth login ${name}`,
    ticketSecret,
  });
}

describe("consent tickets", () => {
  it("name the principal they were made for, for that upstream only, until they expire", async () => {
    const p = await pool();
    const now = 1_000_000;
    const ticket = p.ticket("tracker", "apiKey:a", now);
    expect(p.verifyTicket("tracker", ticket, now + 60_000)).toBe("apiKey:a");
    expect(p.verifyTicket("wiki", ticket, now)).toBeUndefined();
    expect(p.verifyTicket("tracker", ticket, now + 10 * 60_000 + 1)).toBeUndefined();
  });

  it("refuse a changed body, a changed signature, junk, and another gateway's tickets", async () => {
    const p = await pool();
    const ticket = p.ticket("tracker", "apiKey:a");
    const [body, signature] = ticket.split(".");
    const other = Buffer.from(
      JSON.stringify({ u: "tracker", p: "apiKey:b", e: Date.now() + 60_000 }),
    ).toString("base64url");
    expect(p.verifyTicket("tracker", `${other}.${signature}`)).toBeUndefined();
    expect(p.verifyTicket("tracker", `${body}.${signature?.slice(1)}x`)).toBeUndefined();
    expect(p.verifyTicket("tracker", "not-a-ticket")).toBeUndefined();
    expect((await pool()).verifyTicket("tracker", ticket)).toBeUndefined();
  });

  it("are accepted by every replica that shares TOOLGATE_TOKEN_KEY", async () => {
    const ticket = (await pool("shared secret")).ticket("tracker", "oauth:alice");
    expect((await pool("shared secret")).verifyTicket("tracker", ticket)).toBe("oauth:alice");
    expect((await pool("another secret")).verifyTicket("tracker", ticket)).toBeUndefined();
  });
});

describe("consent URLs", () => {
  it("use auth.oauth.publicUrl when set, else the address served, and carry a ticket", async () => {
    const p = await pool();
    const { config } = resolveConfig(
      {
        mcpServers: {
          t: { url: "https://mcp.example/mcp", auth: { oauth: { perPrincipal: true } } },
          u: {
            url: "https://mcp.example/mcp",
            auth: { oauth: { perPrincipal: true, publicUrl: "https://gw.example.com/" } },
          },
        },
      },
      {},
    );
    const [t, u] = config.upstreams;
    if (!t || !u) throw new Error("two upstreams expected");
    p.origin = "http://127.0.0.1:8080";
    expect(p.consentUrl(t)).toBe("http://127.0.0.1:8080/oauth/upstreams/t/authorize");
    const url = new URL(p.consentUrl(u, principalKey({ kind: "oauth", id: "alice" })));
    expect(url.origin + url.pathname).toBe("https://gw.example.com/oauth/upstreams/u/authorize");
    expect(p.verifyTicket("u", String(url.searchParams.get("ticket")))).toBe("oauth:alice");
  });
});
