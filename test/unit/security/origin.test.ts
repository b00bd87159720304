import { describe, expect, it } from "vitest";
import { checkOriginAndHost, type OriginCheckOptions } from "../../../src/server/origin.ts";

const LOOPBACK: OriginCheckOptions = { listenHost: "127.0.0.1", allowedOrigins: [], allowedHosts: [] };
const PUBLIC: OriginCheckOptions = { listenHost: "0.0.0.0", allowedOrigins: [], allowedHosts: [] };

describe("checkOriginAndHost on a loopback listener", () => {
  it("allows loopback Host values with any port", () => {
    for (const host of ["localhost", "localhost:8080", "127.0.0.1:3000", "[::1]:8080", "LOCALHOST:1"]) {
      expect(checkOriginAndHost({ host }, LOOPBACK)).toEqual({ ok: true });
    }
  });

  it("rejects a rebinding attacker's Host with 403 and a reason naming the fix", () => {
    const result = checkOriginAndHost({ host: "evil.example.com:8080" }, LOOPBACK);
    expect(result).toEqual({
      ok: false,
      status: 403,
      reason:
        'Host "evil.example.com:8080" is not allowed on a loopback listener (DNS rebinding protection); if it is legitimate, add it to gateway.allowedHosts',
    });
  });

  it("rejects Host values that merely look local", () => {
    for (const host of ["localhost.evil.com", "127.0.0.1.nip.io", "0.0.0.0:8080", "127.0.0.2"]) {
      expect(checkOriginAndHost({ host }, LOOPBACK).ok).toBe(false);
    }
  });

  it("allows configured hosts, by name for any port or by name:port exactly", () => {
    const options = { ...LOOPBACK, allowedHosts: ["gw.internal", "box:9000"] };
    expect(checkOriginAndHost({ host: "gw.internal:8080" }, options).ok).toBe(true);
    expect(checkOriginAndHost({ host: "box:9000" }, options).ok).toBe(true);
    expect(checkOriginAndHost({ host: "box:9001" }, options).ok).toBe(false);
  });

  it("allows requests without Origin (non-browser clients) and with loopback origins", () => {
    expect(checkOriginAndHost({ host: "localhost:8080" }, LOOPBACK).ok).toBe(true);
    for (const origin of ["http://localhost:5173", "https://127.0.0.1", "http://[::1]:8080"]) {
      expect(checkOriginAndHost({ host: "localhost:8080", origin }, LOOPBACK)).toEqual({ ok: true });
    }
  });

  it("rejects a foreign, null or malformed Origin even with a loopback Host", () => {
    for (const origin of ["https://evil.example.com", "null", "not a url", "http://localhost.evil.com"]) {
      const result = checkOriginAndHost({ host: "localhost:8080", origin }, LOOPBACK);
      expect(result).toMatchObject({ ok: false, status: 403 });
      if (!result.ok) expect(result.reason).toContain(`Origin "${origin}" is not allowed`);
    }
  });

  it("allows configured origins, compared in normalized form, including extension origins", () => {
    const options = {
      ...LOOPBACK,
      allowedOrigins: ["https://App.example.com:443", "chrome-extension://abcdef"],
    };
    expect(checkOriginAndHost({ origin: "https://app.example.com" }, options).ok).toBe(true);
    expect(checkOriginAndHost({ origin: "chrome-extension://abcdef" }, options).ok).toBe(true);
    expect(checkOriginAndHost({ origin: "https://app.example.com:8443" }, options).ok).toBe(false);
  });
});

describe("checkOriginAndHost on a non-loopback listener", () => {
  it("allows any Host when no allowedHosts are configured", () => {
    expect(checkOriginAndHost({ host: "gw.example.com" }, PUBLIC).ok).toBe(true);
  });

  it("restricts Host to loopback names and allowedHosts once they are configured", () => {
    const options = { ...PUBLIC, allowedHosts: ["gw.example.com"] };
    expect(checkOriginAndHost({ host: "gw.example.com:443" }, options).ok).toBe(true);
    expect(checkOriginAndHost({ host: "localhost" }, options).ok).toBe(true);
    expect(checkOriginAndHost({ host: "other.example.com" }, options)).toMatchObject({
      ok: false,
      status: 403,
    });
  });

  it("still rejects a foreign Origin", () => {
    expect(
      checkOriginAndHost({ host: "gw.example.com", origin: "https://evil.example.com" }, PUBLIC).ok,
    ).toBe(false);
  });
});
