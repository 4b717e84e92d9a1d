import type { Cluster, Redis } from 'ioredis';
import { closeOwned, commandError, resolveConnection, type Connection } from './connection.js';
import { registryKey, schedulerKeys, validatePrefix, type RegistryKind } from './keys.js';
import { beforeFirstCall, runScript, type RedisClient } from './scripts.js';
import { checkOptions, optionNames, requireInteger } from './validate.js';

/**
 * Discovery without KEYS: a registry of the queues, buses and lock names in use under a prefix, written by
 * lua/registry/register.lua (see registryKey in keys.ts), plus a bounded SCAN for data written before the
 * registry existed. Not a domain: the domains import `announce`, and the CLI and dashboard call `discover`.
 *
 * A script touches one hash tag, so a queue's own scripts cannot write a prefix-wide key; instead each
 * process registers each object once per connection, with a command of its own that is issued just before
 * the object's first script call (scripts.ts beforeFirstCall) and so shares its round trip. Nothing is
 * added to later calls: a send pays one WeakMap lookup.
 */

/** Per client: the registry entries this process has announced (`<registry key> <name>`). */
const announced = new WeakMap<RedisClient, Set<string>>();
/** Entries remembered per client; past this the oldest are forgotten (registering one again is harmless). */
const MAX_ANNOUNCED = 10_000;
/** A registration that failed (Redis unreachable) is tried again with the next call, at most this often. */
const MAX_ATTEMPTS = 3;

/**
 * Registers `name` as a `kind` under `prefix`, once per client and process, pipelined with the first script
 * call on `baseKey` (the object's KEYS[1]). Fire-and-forget: a failure never reaches the caller, and is
 * retried with a later call a few times.
 * @internal
 */
export function announce(client: RedisClient, prefix: string, kind: RegistryKind, name: string, baseKey: string): void {
  const key = registryKey(prefix, kind);
  const entry = `${key} ${name}`;
  let seen = announced.get(client);
  if (!seen) announced.set(client, (seen = new Set()));
  if (seen.has(entry)) return;
  if (seen.size >= MAX_ANNOUNCED) seen.delete(seen.values().next().value!);
  seen.add(entry);
  let attempts = 0;
  const register = (): void => {
    attempts += 1;
    const retry = () => {
      if (attempts < MAX_ATTEMPTS) beforeFirstCall(client, baseKey, register);
      else seen.delete(entry);
    };
    try {
      runScript(client, 'registry/register', [key], [name]).then(undefined, retry);
    } catch {
      retry();
    }
  };
  beforeFirstCall(client, baseKey, register);
}

export interface DiscoverOptions {
  /** key prefix (default `sluice`) */
  prefix?: string;
  /**
   * The fallback SCAN for data written before the registry existed stops after this many keys (the sum
   * of its COUNT hints; Redis may look at a few more). 0 reads the registry only. Default 10,000.
   */
  scanLimit?: number;
  /** with a URL: how long to wait for the connection (default 5000) */
  connectTimeoutMs?: number;
}

/** What exists under a prefix, each list sorted. */
export interface Discovery {
  queues: string[];
  buses: string[];
  locks: string[];
  /** scheduler jobs some process registered */
  jobs: string[];
  /**
   * true when the fallback scan looked at every key of the database, so nothing written before the
   * registry existed was missed; false when it stopped at scanLimit (objects created since the registry
   * existed are listed either way)
   */
  complete: boolean;
}

const DISCOVER_OPTIONS = optionNames<DiscoverOptions>({ prefix: true, scanLimit: true, connectTimeoutMs: true });
export const DEFAULT_SCAN_LIMIT = 10_000;
const SCAN_COUNT = 1000;

/**
 * Lists the queues, event buses, lock names and scheduler jobs under a prefix: from the registry (and the
 * scheduler's own job list), plus what a SCAN of at most `scanLimit` keys finds of data written before the
 * registry existed. Subscriber queues belong to their bus and are not listed as queues
 * (`bus.listSubscriptions()` lists them). `connection` is an ioredis client (you close it) or a URL.
 */
export async function discover(connection: Connection, options: DiscoverOptions = {}): Promise<Discovery> {
  checkOptions(options, DISCOVER_OPTIONS, 'discover(connection, options)');
  const prefix = validatePrefix(options.prefix ?? 'sluice');
  const scanLimit = requireInteger('scanLimit', options.scanLimit ?? DEFAULT_SCAN_LIMIT, 0, 1_000_000_000);
  const { client, owned } = resolveConnection(connection, { connectTimeoutMs: options.connectTimeoutMs });
  try {
    const found = { queues: new Set<string>(), buses: new Set<string>(), locks: new Set<string>() };
    const [queues, buses, locks, jobs] = await Promise.all([
      client.zrange(registryKey(prefix, 'queues'), 0, -1),
      client.zrange(registryKey(prefix, 'buses'), 0, -1),
      client.zrange(registryKey(prefix, 'locks'), 0, -1),
      client.smembers(schedulerKeys(prefix).jobs),
    ]);
    for (const name of queues) found.queues.add(name);
    for (const name of buses) found.buses.add(name);
    for (const name of locks) found.locks.add(name);
    const foundJobs = new Set(jobs);
    const complete =
      scanLimit > 0 &&
      (await scanKeys(client, `{${prefix}:*`, scanLimit, (key) => classify(prefix, key, found, foundJobs)));
    const sorted = (names: Set<string>) => [...names].sort();
    return {
      queues: sorted(found.queues),
      buses: sorted(found.buses),
      locks: sorted(found.locks),
      jobs: sorted(foundJobs),
      complete,
    };
  } catch (error) {
    // Connection trouble and WRONGTYPE become SluiceErrors naming the address or the key, as for scripts.
    throw commandError(client, 'discover', registryKey(prefix, 'queues'), error);
  } finally {
    if (owned) await closeOwned(client, 'discover');
  }
}

/** Files a key written in any layout of this prefix under the object it belongs to. */
function classify(
  prefix: string,
  key: string,
  found: { queues: Set<string>; buses: Set<string>; locks: Set<string> },
  jobs: Set<string>,
): void {
  const tag = /^\{([^{}]*)\}/.exec(key)?.[1];
  if (tag === undefined || !tag.startsWith(`${prefix}:`)) return;
  const inside = tag.slice(prefix.length + 1);
  if (inside === 'scheduler/') {
    const job = /^\}:job:(.+)$/.exec(key.slice(tag.length + 1))?.[1];
    if (job !== undefined) jobs.add(job);
  } else if (inside.startsWith('bus/')) {
    if (inside.length > 4) found.buses.add(inside.slice(4));
  } else if (inside.startsWith('lock/')) {
    if (inside.length > 5) found.locks.add(inside.slice(5));
  } else if (!inside.includes('/') && inside.length > 0) {
    // `/` occurs in no queue name: limiter keys and the registry itself are not queues.
    found.queues.add(inside);
  }
}

/**
 * SCAN MATCH `pattern` on every master (one, unless a Cluster), calling `each` per key, until the COUNT
 * hints add up to `limit`. True when every master's scan ran to its end.
 * @internal
 */
export async function scanKeys(
  client: RedisClient,
  pattern: string,
  limit: number,
  each: (key: string) => void,
): Promise<boolean> {
  const nodes: Redis[] =
    typeof (client as Cluster).nodes === 'function' ? (client as Cluster).nodes('master') : [client as Redis];
  let scanned = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const count = Math.min(SCAN_COUNT, limit - scanned);
      if (count <= 0) return false;
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      scanned += count;
      cursor = next;
      for (const key of keys) each(key);
    } while (cursor !== '0');
  }
  return true;
}
