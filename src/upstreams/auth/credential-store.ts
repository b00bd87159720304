/**
 * Where upstream OAuth credentials (tokens, client registrations, PKCE verifiers, discovery results) live
 * between runs. The interface is small so a shared store (Redis) can implement it; the default is one file
 * in the state directory, encrypted with AES-256-GCM and written with mode 0600.
 *
 * The key comes from TOOLGATE_TOKEN_KEY (any string; stretched with scrypt). Without it a random key is
 * kept in `token.key` beside the file (0600): that protects against a copied credentials file, not against
 * someone who can read the whole state directory; set the variable where that matters.
 *
 * Every change is a read-modify-write of the whole file under a lock file beside it, so a `toolgate auth login`
 * in one process and a token refresh in the running gateway cannot lose each other's update.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { OAuthDiscoveryState } from "@modelcontextprotocol/sdk/client/auth.js";
import type { OAuthClientInformationMixed, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";
import { lock } from "proper-lockfile";

export interface StoredCredentials {
  /** Tokens as the authorization server gave them, plus when the access token expires (epoch ms). */
  tokens?: OAuthTokens & { expiresAt?: number };
  client?: OAuthClientInformationMixed;
  discovery?: OAuthDiscoveryState;
  /** A wider scope the upstream asked for (403 insufficient_scope): the next login requests it. */
  stepUpScope?: string;
  /** Per-principal upstreams (the shared entry): whose tokens the catalog connection uses (`kind:id`). */
  catalogPrincipal?: string;
}

export interface CredentialStore {
  get(key: string): Promise<StoredCredentials | undefined>;
  /** Merge `patch` into the stored entry (undefined fields are removed). */
  update(key: string, patch: Partial<StoredCredentials>): Promise<void>;
  delete(key: string): Promise<void>;
}

const FILE_VERSION = 1;
/**
 * A change holds the lock for a read, an encryption and a rename: milliseconds. A holder that died is taken
 * over after `stale`; a waiter retries for about ten seconds before the change fails. A lock found taken over
 * while held (the library's default throws from a timer, which would end the gateway) only loses the order.
 */
const LOCK = {
  realpath: false,
  stale: 10_000,
  retries: { retries: 60, minTimeout: 10, maxTimeout: 200 },
  onCompromised: () => {},
};

/** One encrypted JSON file; every read goes to disk, so a login by another process is seen at once. */
export class FileCredentialStore implements CredentialStore {
  readonly file: string;
  readonly #secret: string | undefined;
  #key: Buffer | undefined;
  /** Changes in order within this process; the lock file orders them across processes. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string, secret: string | undefined) {
    this.file = join(stateDir, "upstream-credentials.enc");
    this.#secret = secret;
  }

  async get(key: string): Promise<StoredCredentials | undefined> {
    await this.#queue;
    return (await this.#read())[key];
  }

  update(key: string, patch: Partial<StoredCredentials>): Promise<void> {
    return this.#enqueue(async () => {
      const all = await this.#read();
      const next: Record<string, unknown> = { ...all[key], ...patch };
      for (const [field, value] of Object.entries(next)) if (value === undefined) delete next[field];
      all[key] = next as StoredCredentials;
      await this.#write(all);
    });
  }

  delete(key: string): Promise<void> {
    return this.#enqueue(async () => {
      const all = await this.#read();
      delete all[key];
      await this.#write(all);
    });
  }

  #enqueue(change: () => Promise<void>): Promise<void> {
    const locked = async () => {
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      const release = await lock(this.file, LOCK);
      try {
        await change();
      } finally {
        await release();
      }
    };
    const run = this.#queue.then(locked, locked);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #read(): Promise<Record<string, StoredCredentials>> {
    let blob: Buffer;
    try {
      blob = await readFile(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw err;
    }
    const key = await this.#cipherKey();
    // Layout: version (1 byte) | iv (12) | tag (16) | ciphertext.
    if (blob[0] !== FILE_VERSION || blob.length < 29) throw new Error(`${this.file}: not a credentials file`);
    const decipher = createDecipheriv("aes-256-gcm", key, blob.subarray(1, 13));
    decipher.setAuthTag(blob.subarray(13, 29));
    try {
      const plain = Buffer.concat([decipher.update(blob.subarray(29)), decipher.final()]);
      return JSON.parse(plain.toString("utf8")) as Record<string, StoredCredentials>;
    } catch {
      throw new Error(
        `${this.file} cannot be decrypted with this key (TOOLGATE_TOKEN_KEY changed?); run toolgate auth logout or delete the file`,
      );
    }
  }

  async #write(all: Record<string, StoredCredentials>): Promise<void> {
    const key = await this.#cipherKey();
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(all), "utf8"), cipher.final()]);
    const blob = Buffer.concat([Buffer.from([FILE_VERSION]), iv, cipher.getAuthTag(), body]);
    // Unique per write, not per process: two stores on one file in one process (a login beside the running
    // gateway) must not rename each other's temp file away.
    const temp = `${this.file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
    await writeFile(temp, blob, { mode: 0o600 });
    await rename(temp, this.file);
  }

  async #cipherKey(): Promise<Buffer> {
    if (this.#key) return this.#key;
    if (this.#secret) {
      this.#key = scryptSync(this.#secret, "toolgate upstream credentials", 32);
      return this.#key;
    }
    const keyFile = join(dirname(this.file), "token.key");
    try {
      this.#key = Buffer.from((await readFile(keyFile, "utf8")).trim(), "base64");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 });
      const fresh = randomBytes(32);
      // wx: two processes creating the key at once must not overwrite each other's.
      await writeFile(keyFile, fresh.toString("base64"), { mode: 0o600, flag: "wx" }).catch(async (e) => {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      });
      await chmod(keyFile, 0o600);
      this.#key = Buffer.from((await readFile(keyFile, "utf8")).trim(), "base64");
    }
    if (this.#key.length !== 32) throw new Error(`${keyFile} does not hold a 32-byte key`);
    return this.#key;
  }

  /** Remove the file (and the generated key): `toolgate auth logout --all`. */
  async destroy(): Promise<void> {
    await rm(this.file, { force: true });
  }
}
