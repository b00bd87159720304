import { describe, expect, it } from "vitest";
import { hostnameOf, isLoopbackHost, isLoopbackName } from "../../../src/server/auth/loopback.ts";

describe("isLoopbackHost", () => {
  it("recognizes loopback listen addresses and socket peers", () => {
    for (const a of [
      "127.0.0.1",
      "127.1.2.3",
      "localhost",
      "::1",
      "[::1]",
      "::ffff:127.0.0.1",
      "0:0:0:0:0:0:0:1",
    ]) {
      expect(isLoopbackHost(a)).toBe(true);
    }
  });

  it("does not take wildcard, private or look-alike addresses for loopback", () => {
    for (const a of [
      "0.0.0.0",
      "::",
      "10.0.0.1",
      "::ffff:10.0.0.1",
      "127.0.0.1.nip.io",
      "localhost.evil.com",
    ]) {
      expect(isLoopbackHost(a)).toBe(false);
    }
  });
});

describe("hostnameOf and isLoopbackName", () => {
  it("strips the port from Host values, IPv6 included", () => {
    expect(hostnameOf("[::1]:8080")).toBe("[::1]");
    expect(hostnameOf("Example.COM:443")).toBe("example.com");
    expect(hostnameOf("localhost")).toBe("localhost");
  });

  it("accepts only the three names browsers use for this machine", () => {
    expect(["localhost", "127.0.0.1", "[::1]"].every(isLoopbackName)).toBe(true);
    expect(["127.0.0.2", "::1", "0.0.0.0"].some(isLoopbackName)).toBe(false);
  });
});
