import { Redis, type Cluster } from 'ioredis';
import { describeNonClient, isIoredisClient } from './client-shape.js';
import {
  ClosedError,
  ConnectionError,
  RedisCommandError,
  SluiceError,
  ValidationError,
  type ConnectionFailure,
} from './errors.js';
import type { RedisClient } from './scripts.js';

/** What every sluice component accepts as its connection. */
export type Connection = Redis | Cluster | string;

/** How long a command waits for a connection sluice opened from a URL before it fails with ConnectionError. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** How long close() waits for QUIT's reply (the replies of earlier commands come first) before dropping the socket. */
const QUIT_TIMEOUT_MS = 1_000;

/**
 * What sluice tracks about a client it opened from a URL. ioredis keeps a command that cannot be written in
 * its offline queue, and a command written before the connection dropped in a queue for re-sending after a
 * reconnect, both with no time limit (maxRetriesPerRequest counts reconnect attempts, and does not apply to
 * the re-send queue at all). `watchdog` bounds both: once the client has not been ready for the connect
 * timeout, they fail with a ConnectionError naming the address and the last cause.
 */
interface OwnedClient {
  address: string;
  connectTimeoutMs: number;
  lastError: Error | undefined;
  /** when the client stopped being ready (or was created); null while ready */
  downSince: number | null;
  everReady: boolean;
  /** close() has begun: commands failing now fail because of it */
  closing: boolean;
  tls: boolean;
  watchdog: NodeJS.Timeout | null;
}

const owned = new WeakMap<RedisClient, OwnedClient>();
const DEFINITE = new Set<ConnectionFailure>(['refused', 'dns', 'auth', 'tls']);

/** The ioredis internals the watchdog reaches into (present in ioredis 5; absent fields are skipped). */
interface CommandQueues {
  offlineQueue?: { length: number; shift(): { command: { reject(error: Error): void } } | undefined };
  prevCommandQueue?: { length: number; shift(): { command: { reject(error: Error): void } } | undefined } | null;
}

/**
 * An ioredis client from a connection option: a client the caller passed (the caller closes it), or one
 * opened from a `redis://` / `rediss://` URL or a unix socket path (the component owns it and closes it).
 * Anything else is refused here, before any connection is attempted.
 */
export function resolveConnection(
  connection: unknown,
  options: { connectTimeoutMs?: number | undefined } = {},
): { client: RedisClient; owned: boolean } {
  if (typeof connection === 'string') {
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    if (
      typeof connectTimeoutMs !== 'number' ||
      !Number.isFinite(connectTimeoutMs) ||
      connectTimeoutMs < 1 ||
      connectTimeoutMs > 2 ** 31 - 1
    ) {
      throw new ValidationError(
        'connectTimeoutMs',
        `connectTimeoutMs must be a number of ms from 1 to ${2 ** 31 - 1}, got ${String(connectTimeoutMs)}`,
      );
    }
    return { client: openOwned(connection, Math.ceil(connectTimeoutMs)), owned: true };
  }
  // By shape, not instanceof: a client from the project's own copy of ioredis (5 or 6) is as good as ours.
  if (isIoredisClient(connection)) return { client: connection, owned: false };
  throw new ValidationError(
    'connection',
    `connection must be an ioredis client (Redis or Cluster, ioredis 5 or 6) or a redis:// URL, got ${describeNonClient(connection)}`,
  );
}

function openOwned(url: string, connectTimeoutMs: number): Redis {
  const clientOptions = { connectTimeout: connectTimeoutMs, maxRetriesPerRequest: null };
  let client: Redis;
  let address: string;
  if (url.startsWith('/')) {
    client = new Redis({ ...clientOptions, path: url });
    address = url;
  } else {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if ((scheme !== 'redis' && scheme !== 'rediss') || !parsed) {
      throw new ValidationError(
        'connection',
        `connection must be a redis:// or rediss:// URL (or a unix socket path starting with /), got "${redact(url)}"`,
      );
    }
    client = new Redis(url, clientOptions);
    address = `${parsed.hostname || 'localhost'}:${parsed.port || 6379}`;
  }
  const state: OwnedClient = {
    address,
    connectTimeoutMs,
    lastError: undefined,
    downSince: Date.now(),
    everReady: false,
    closing: false,
    tls: /^rediss:/i.test(url),
    watchdog: null,
  };
  owned.set(client, state);
  // Connection failures reach callers as ConnectionErrors (see the watchdog); the client reconnects by itself.
  client.on('error', (error: Error) => (state.lastError = error));
  client.on('ready', () => {
    state.downSince = null;
    state.everReady = true;
    state.lastError = undefined;
    stopWatchdog(state);
  });
  client.on('close', () => {
    state.downSince ??= Date.now();
    startWatchdog(client, state);
  });
  client.on('end', () => stopWatchdog(state));
  startWatchdog(client, state);
  return client;
}

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*):([^@/]*)@/, '//$1:***@');
}

function startWatchdog(client: Redis, state: OwnedClient): void {
  if (state.watchdog) return;
  const tick = Math.max(10, Math.min(250, state.connectTimeoutMs / 4));
  state.watchdog = setInterval(() => {
    if (state.downSince === null) return;
    // A first connection that failed for a reason waiting will not fix (a wrong port, host or password) fails
    // at once; a lost one is given the connect timeout to come back (a restart, a failover).
    const definite =
      !state.everReady && state.lastError !== undefined && DEFINITE.has(classify(state.lastError) ?? 'lost');
    if (!definite && Date.now() - state.downSince < state.connectTimeoutMs) return;
    // A socket connected but never answering (the ready check pending) is dropped and tried again.
    if (client.status === 'connect') client.disconnect(true);
    failWaiting(client, describeFailure(state, client.status === 'connect' ? 'timeout' : undefined));
  }, tick);
  // The client's own socket or reconnect timer keeps the process alive while it matters; this never does.
  state.watchdog.unref();
}

function stopWatchdog(state: OwnedClient): void {
  if (state.watchdog) clearInterval(state.watchdog);
  state.watchdog = null;
}

/** Rejects the commands waiting to be written and those waiting to be re-sent after a reconnect. */
function failWaiting(client: Redis, error: Error): void {
  const queues = client as unknown as CommandQueues;
  for (const queue of [queues.offlineQueue, queues.prevCommandQueue]) {
    for (let item = queue?.shift(); item; item = queue?.shift()) item.command.reject(error);
  }
}

function describeFailure(state: OwnedClient, failure?: ConnectionFailure): ConnectionError {
  const cause = state.lastError;
  const kind = failure ?? (cause ? classify(cause) : undefined) ?? (state.everReady ? 'lost' : 'timeout');
  const detail =
    kind === 'timeout' && state.tls
      ? `${cause ? `${cause.message}; ` : ''}with rediss://, is that port a TLS port?`
      : undefined;
  return new ConnectionError(state.address, kind, { ...(cause ? { cause } : {}), ...(detail ? { detail } : {}) });
}

/** The kind of a connection-level error, or undefined when the error is not about the connection. */
function classify(error: Error): ConnectionFailure | undefined {
  const code = (error as { code?: unknown }).code;
  const text = `${typeof code === 'string' ? code : ''} ${error.message}`;
  // A Cluster client's errors while slots move (ioredis gives up after its redirections, or the node says so).
  if (/Too many Cluster redirections|CLUSTERDOWN|TRYAGAIN|Failed to refresh slots cache/.test(text)) return 'failover';
  // MOVED or ASK reaching the caller: a single-node client talking to a Cluster node (a Cluster follows them).
  if (/^(MOVED|ASK) \d+ /.test(error.message)) return 'cluster';
  if (/ECONNREFUSED/.test(text)) return 'refused';
  if (/Unknown RESP type|Protocol error/i.test(text)) return 'protocol';
  if (/ENOTFOUND|EAI_AGAIN|EAI_NONAME|getaddrinfo/.test(text)) return 'dns';
  if (/ETIMEDOUT|timed out/i.test(text)) return 'timeout';
  if (/NOAUTH|WRONGPASS|invalid password|AUTH.*(failed|without any password)|NOPERM/i.test(text)) return 'auth';
  if (/ERR_SSL|EPROTO|SSL|TLS|certificate|self.signed|ERR_TLS/i.test(text)) return 'tls';
  if (
    /ECONNRESET|EPIPE|EHOSTUNREACH|ENETUNREACH|Connection is closed|MaxRetriesPerRequest|Stream isn't writeable/i.test(
      text,
    )
  )
    return 'lost';
  return undefined;
}

/** host:port of a client (its socket path, or its cluster's nodes). */
function addressOf(client: RedisClient): string {
  const known = owned.get(client);
  if (known) return known.address;
  if (client instanceof Redis) {
    const { host, port, path } = client.options;
    return path ?? `${host ?? 'localhost'}:${port ?? 6379}`;
  }
  const nodes = (client as unknown as { startupNodes?: unknown[] }).startupNodes ?? [];
  const names = nodes.map((node: unknown) =>
    typeof node === 'object' && node !== null
      ? `${(node as { host?: string }).host ?? 'localhost'}:${(node as { port?: number }).port ?? 6379}`
      : String(node),
  );
  return `cluster ${names.join(',')}`;
}

/**
 * The error a user sees for a failed script call: connection trouble as a ConnectionError naming the
 * address and the cause, OOM and WRONGTYPE replies as a RedisCommandError naming the key and the script,
 * anything else unchanged.
 */
export function commandError(client: RedisClient, operation: string, key: string, error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof SluiceError) return error;
  if (/\bOOM\b/.test(error.message)) return new RedisCommandError('OOM', key, operation, { cause: error });
  if (/\bWRONGTYPE\b/.test(error.message)) return new RedisCommandError('WRONGTYPE', key, operation, { cause: error });
  const kind = classify(error);
  if (kind === undefined) return error;
  const state = owned.get(client);
  if (state?.closing && kind === 'lost') return new ConnectionError(state.address, 'closed', { cause: error });
  // The command's own error is often generic (MaxRetriesPerRequestError, Connection is closed): the last
  // error the client reported says why.
  // A timeout likewise: a server that answered in another protocol, say, made the client give up.
  const cause = (kind === 'lost' || kind === 'timeout') && state?.lastError ? state.lastError : error;
  return new ConnectionError(
    addressOf(client),
    kind === 'lost' || kind === 'timeout' ? (classify(cause) ?? kind) : kind,
    {
      cause,
    },
  );
}

/**
 * Closes a client a component opened itself, within about a second whatever Redis is doing:
 * - commands waiting for a first connection still being made (sends of the same tick as close(), say) are
 *   written once it is ready, or fail with a ConnectionError when it does not come within the connect
 *   timeout; a connection that already failed or was lost is not waited for;
 * - when ready, QUIT (the replies of earlier commands arrive first), at most QUIT_TIMEOUT_MS;
 * - then the socket is dropped, and anything still unanswered fails with a ClosedError.
 */
export async function closeOwned(client: RedisClient, what = 'connection'): Promise<void> {
  const state = owned.get(client);
  const redis = client as Redis;
  if (state) state.closing = true;
  if (state && !state.everReady && state.lastError === undefined && hasWaiting(redis) && redis.status !== 'end') {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearInterval(poll);
        redis.off('ready', done);
        redis.off('error', done);
        redis.off('end', done);
        resolve();
      };
      // The watchdog empties the queues at the connect timeout; poll for that rather than add a timer of our own.
      const poll = setInterval(() => hasWaiting(redis) || done(), 25);
      redis.once('ready', done);
      redis.once('error', done);
      redis.once('end', done);
    });
  }
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.quit().catch(() => undefined),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, QUIT_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
  }
  // Commands never written fail first, with the reason the connection is not there (or because of close()).
  if (client instanceof Redis) {
    failWaiting(
      client,
      state && client.status !== 'ready' && !state.everReady ? describeFailure(state) : new ClosedError(what),
    );
  }
  if (client.status !== 'end') client.disconnect();
  if (state) stopWatchdog(state);
}

function hasWaiting(client: Redis): boolean {
  const queues = client as unknown as CommandQueues;
  return (queues.offlineQueue?.length ?? 0) > 0 || (queues.prevCommandQueue?.length ?? 0) > 0;
}

/**
 * Drops a connection a component made for itself (a consumer's blocking connection) at once; its pending
 * commands fail with a ClosedError, including one waiting to be re-sent after a reconnect, which ioredis's
 * disconnect() would leave pending forever.
 */
export function dropConnection(client: RedisClient, what: string): void {
  client.disconnect();
  if (client instanceof Redis) failWaiting(client, new ClosedError(what));
}
