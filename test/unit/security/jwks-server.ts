/** A tiny authorization server for tests: JWKS and RFC 8414 metadata on 127.0.0.1, keys from jose. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type CryptoKey, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";

export interface TestIssuer {
  issuer: string;
  jwksUri: string;
  /** Requests served, by path. */
  hits: string[];
  /** A token signed with the issuer's key (or `key`), expiring in 5 minutes unless `expiresIn` says otherwise. */
  sign(
    claims: JWTPayload,
    options?: { expiresIn?: string | number | null; key?: CryptoKey; kid?: string },
  ): Promise<string>;
  close(): Promise<void>;
}

export async function startTestIssuer(options: { metadata?: boolean } = {}): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  const hits: string[] = [];
  let issuer = "";
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? "");
    const send = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.url === "/jwks.json") return send({ keys: [jwk] });
    if (options.metadata && req.url === "/.well-known/oauth-authorization-server") {
      return send({ issuer, jwks_uri: `${issuer}/jwks.json` });
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    jwksUri: `${issuer}/jwks.json`,
    hits,
    sign: (claims, o = {}) => {
      const jwt = new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: o.kid ?? "k1" }).setIssuedAt();
      if (o.expiresIn !== null) jwt.setExpirationTime(o.expiresIn ?? "5m");
      return jwt.sign(o.key ?? privateKey);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
