import { describe, expect, it } from "vitest";
import { type HandleClaims, TaskHandles } from "../../../src/tasks/handles.ts";

const SECRET = "a-secret-of-at-least-thirty-two-characters";
const NOW = 1_800_000_000_000;
const claims: HandleClaims = {
  origin: "upstream",
  upstream: "everything",
  taskId: "4f6c1d2e-upstream-task",
  principalId: "alice",
  expiresAt: NOW + 60_000,
};

describe("task handles", () => {
  const handles = new TaskHandles(SECRET);

  it("opens a handle for its principal before it expires", () => {
    const handle = handles.seal(claims);
    expect(handles.open(handle, "alice", NOW)).toEqual(claims);
  });

  it("reveals neither the upstream nor its task id nor the principal", () => {
    const handle = handles.seal(claims);
    const decoded = Buffer.from(handle.slice(4), "base64url").toString("latin1");
    for (const secret of ["everything", "4f6c1d2e", "alice"]) {
      expect(handle).not.toContain(secret);
      expect(decoded).not.toContain(secret);
    }
  });

  it("mints a different handle each time for the same task", () => {
    expect(handles.seal(claims)).not.toBe(handles.seal(claims));
  });

  it("refuses another principal, an expired handle, a tampered one and garbage alike", () => {
    const handle = handles.seal(claims);
    const body = Buffer.from(handle.slice(4), "base64url");
    body[20] = (body[20] ?? 0) ^ 1;
    const tampered = `tg1.${body.toString("base64url")}`;
    expect(handles.open(handle, "bob", NOW)).toBeUndefined();
    expect(handles.open(handle, "alice", claims.expiresAt)).toBeUndefined();
    expect(handles.open(tampered, "alice", NOW)).toBeUndefined();
    for (const junk of ["", "tg1.", "tg1.AAAA", "not-a-handle", 42, null, `tg1.${"A".repeat(5000)}`]) {
      expect(handles.open(junk, "alice", NOW)).toBeUndefined();
    }
  });

  it("refuses a handle sealed with another key (another deployment, or a key made per process)", () => {
    const other = new TaskHandles("another-secret-of-thirty-two-characters!");
    expect(other.open(handles.seal(claims), "alice", NOW)).toBeUndefined();
    const ephemeral = new TaskHandles();
    expect(ephemeral.ephemeral).toBe(true);
    expect(new TaskHandles().open(ephemeral.seal(claims), "alice", NOW)).toBeUndefined();
  });

  it("opens with the same secret in another instance (a replica)", () => {
    expect(new TaskHandles(SECRET).open(handles.seal(claims), "alice", NOW)).toEqual(claims);
  });
});
