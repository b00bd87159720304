/**
 * OAuth 2.0 client-credentials tokens of an OpenAPI upstream (src/upstreams/openapi/auth.ts) against a real
 * token endpoint on 127.0.0.1: how long a token is used before another is asked for.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Credentials, type RequestParts } from "../../../src/upstreams/openapi/auth.ts";

let lifetimeS = 3600;
let issued = 0;
const server = createServer((_req, res) => {
  issued++;
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ access_token: `tok-${issued}`, token_type: "Bearer", expires_in: lifetimeS }));
});
let tokenUrl = "";

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
});
afterAll(() => server.close());

/** The Authorization header one request would carry. */
async function authorization(credentials: Credentials): Promise<string | null> {
  const parts: RequestParts = { url: new URL("http://api.invalid/x"), headers: new Headers(), cookies: [] };
  await credentials.apply([{ kind: "oauth2", tokenUrl }], parts, new AbortController().signal);
  return parts.headers.get("authorization");
}

describe("OAuth 2.0 client-credentials tokens", () => {
  it.each([3600, 20])(
    "uses a %i-second token for the requests that follow, not one token request each",
    async (s) => {
      lifetimeS = s;
      const before = issued;
      const credentials = new Credentials({ oauth2: { clientId: "cid", clientSecret: "secret", tokenUrl } });
      const first = await authorization(credentials);
      expect(first).toBe(`Bearer tok-${before + 1}`);
      expect(await authorization(credentials)).toBe(first);
      expect(await authorization(credentials)).toBe(first);
      expect(issued).toBe(before + 1);
    },
  );

  it("asks for a new token once the API refused the one it has", async () => {
    lifetimeS = 3600;
    const credentials = new Credentials({ oauth2: { clientId: "cid", clientSecret: "secret", tokenUrl } });
    const first = await authorization(credentials);
    credentials.rejected();
    expect(await authorization(credentials)).not.toBe(first);
  });
});
