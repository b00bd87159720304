/**
 * Task records on Redis, so `tasks/get`, `tasks/result`, `tasks/list` and `tasks/cancel` work on any replica
 * (handles are sealed with the shared `tasks.handleKey`). The background work of a task the gateway runs
 * stays on the replica that created it; the others read and write its record here.
 *
 * Keys (under the cluster key prefix): `task:<key>`, a hash of the record's fields (each JSON-encoded),
 * expiring at the record's `expiresAt`; `tasks:<principal>` and `tasks`, sorted sets of record keys by
 * expiry (a principal's list, and the cluster-wide count that `tasks.maxTasks` bounds). Field-wise HSET makes
 * `update` a merge done by Redis, atomic against another replica's update of other fields. Two Lua scripts:
 * `put` must check the bound and make room in one step, `update` must not revive an expired record.
 */
import { ErrorCode, GatewayError } from "../errors.ts";
import type { RedisAccess } from "../stores/redis.ts";
import type { TaskRecord } from "./model.ts";
import type { TaskStore } from "./store.ts";

/**
 * KEYS[1] all records, KEYS[2] the principal's, KEYS[3] the record; ARGV[1] now, ARGV[2] max, ARGV[3] key
 * prefix, ARGV[4] expiresAt, ARGV[5] record key, ARGV[6..] field/value pairs. When full, the record expiring
 * first that is not a running gateway task makes room (like the memory store); 0 when none can.
 */
const PUT = `
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[2]) then
  local victim = nil
  for _, k in ipairs(redis.call('zrange', KEYS[1], 0, -1)) do
    local f = redis.call('hmget', ARGV[3] .. 'task:' .. k, 'origin', 'outcome', 'status')
    if not (f[1] == '"gateway"' and not f[2] and f[3] ~= '"cancelled"') then victim = k break end
  end
  if not victim then return 0 end
  redis.call('zrem', KEYS[1], victim)
  redis.call('del', ARGV[3] .. 'task:' .. victim)
end
redis.call('del', KEYS[3])
redis.call('hset', KEYS[3], unpack(ARGV, 6))
redis.call('pexpireat', KEYS[3], ARGV[4])
redis.call('zadd', KEYS[1], ARGV[4], ARGV[5])
redis.call('zadd', KEYS[2], ARGV[4], ARGV[5])
-- The sets live as long as their last record.
local life = tonumber(ARGV[4]) - tonumber(ARGV[1])
for i = 1, 2 do
  if redis.call('pttl', KEYS[i]) < life then redis.call('pexpireat', KEYS[i], ARGV[4]) end
end
return 1`;

/** KEYS[1] the record; ARGV field/value pairs. The merged record, or nil when it is gone. */
const UPDATE = `
if redis.call('exists', KEYS[1]) == 0 then return nil end
redis.call('hset', KEYS[1], unpack(ARGV))
return redis.call('hgetall', KEYS[1])`;

type Script = (...args: Array<string | number>) => Promise<unknown>;

export class RedisTaskStore implements TaskStore {
  readonly #redis: RedisAccess;
  readonly #max: () => number;
  readonly #put: Script;
  readonly #update: Script;

  constructor(redis: RedisAccess, options: { maxTasks: () => number }) {
    this.#redis = redis;
    this.#max = options.maxTasks;
    const { client } = redis;
    client.defineCommand("tgTaskPut", { lua: PUT });
    client.defineCommand("tgTaskUpdate", { lua: UPDATE });
    const commands = client as unknown as Record<string, Script>;
    this.#put = (...args) => (commands.tgTaskPut as Script).apply(client, args);
    this.#update = (...args) => (commands.tgTaskUpdate as Script).apply(client, args);
  }

  /** Redis away: the task request fails with a message that says so (nothing else can answer for the record). */
  readonly #run = async <T>(command: () => Promise<T>): Promise<T> => {
    try {
      return await this.#redis.run(command);
    } catch (err) {
      throw new GatewayError(
        ErrorCode.Internal,
        `the shared task store is unreachable (${(err as Error).message}); tasks work again once Redis answers`,
        { policy: "cluster.redis" },
      );
    }
  };

  async put(record: TaskRecord): Promise<boolean> {
    const { key } = this.#redis;
    const run = this.#run;
    const prefix = key("");
    const stored = await run(() =>
      this.#put(
        3,
        key("tasks"),
        key(`tasks:${record.principalId}`),
        key(`task:${record.key}`),
        Date.now(),
        this.#max(),
        prefix,
        record.expiresAt,
        record.key,
        ...fields(record),
      ),
    );
    return Number(stored) === 1;
  }

  async get(key: string): Promise<TaskRecord | undefined> {
    const { client, key: k } = this.#redis;
    const run = this.#run;
    return recordOf(await run(() => client.hgetall(k(`task:${key}`))));
  }

  async update(key: string, patch: Partial<TaskRecord>): Promise<TaskRecord | undefined> {
    const { key: k } = this.#redis;
    const run = this.#run;
    const pairs = fields(patch);
    if (pairs.length === 0) return this.get(key);
    const reply = (await run(() => this.#update(1, k(`task:${key}`), ...pairs))) as string[] | null;
    if (!reply) return undefined;
    const hash: Record<string, string> = {};
    for (let i = 0; i < reply.length; i += 2) hash[reply[i] as string] = reply[i + 1] as string;
    return recordOf(hash);
  }

  async list(principalId: string): Promise<TaskRecord[]> {
    const { client, key } = this.#redis;
    const run = this.#run;
    const index = key(`tasks:${principalId}`);
    const keys = await run(async () => {
      await client.zremrangebyscore(index, "-inf", Date.now());
      return client.zrange(index, "0", "-1");
    });
    const hashes = await run(() => Promise.all(keys.map((t) => client.hgetall(key(`task:${t}`)))));
    const records = hashes.flatMap((h) => recordOf(h) ?? []);
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async delete(recordKey: string): Promise<void> {
    const { client, key } = this.#redis;
    const run = this.#run;
    const record = await this.get(recordKey);
    await run(() =>
      Promise.all([
        client.del(key(`task:${recordKey}`)),
        client.zrem(key("tasks"), recordKey),
        ...(record ? [client.zrem(key(`tasks:${record.principalId}`), recordKey)] : []),
      ]),
    );
  }
}

/** A record's defined fields as HSET pairs, each value JSON-encoded. */
function fields(record: Partial<TaskRecord>): string[] {
  return Object.entries(record).flatMap(([name, value]) =>
    value === undefined ? [] : [name, JSON.stringify(value)],
  );
}

function recordOf(hash: Record<string, string>): TaskRecord | undefined {
  const entries = Object.entries(hash);
  if (entries.length === 0) return undefined;
  const record = Object.fromEntries(entries.map(([name, value]) => [name, JSON.parse(value)]));
  return record as unknown as TaskRecord;
}
