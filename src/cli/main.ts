#!/usr/bin/env node
/**
 * `sluice`: the operator's command line. Built on the public API only (src/index.ts, sluice/outbox), as
 * pg-boss's CLI and River's `cmd/river` are. Exit codes, usable as health checks:
 *   0 ok; 1 a check failed or something is unhealthy (doctor, status --fail-on-dlq, a message or job not
 *   found, any other error); 2 usage error (unknown command or option, bad argument, purge refused);
 *   3 cannot connect to Redis (or MySQL for the outbox commands).
 */
import { Cluster, Redis } from 'ioredis';
import { ConnectionError, SluiceError, ValidationError } from '../index.js';
import { COMMANDS } from './commands.js';
import { EXIT, intOption, parse, type Values } from './context.js';
import { output } from './format.js';

export const USAGE = `usage: sluice <command> [arguments] [--url redis://host:6379] [--prefix sluice] [--json]

commands:
  status [--fail-on-dlq] [--scan-limit n]  every queue and bus (and the outbox with --mysql-url / MYSQL_URL)
  queue <name>                           one queue's counts, counters, pause flag and rate limit
  peek <queue> [--state ready|delayed|inflight|dead] [--limit n] [--offset n]
  message <queue> <id>                   one message and where it is
  dlq list <queue> [--limit n] [--offset n]
  dlq replay <queue> [--ids a,b | --limit n] [--dry-run]
  dlq purge <queue> (--ids a,b | --limit n) [--dry-run] [--yes]
  pause <queue> | resume <queue>
  send <queue> <json> [--priority p] [--delay-ms n] [--partition-key k] [--dedup-key k] [--type t] [--id id]
  events tail <bus> [pattern] [--interval-ms n]   new events as they are published, until Ctrl-C
  subs <bus>                             a bus's subscriptions and their queues
  jobs [pause|resume|restart <name>]     scheduler jobs
  locks                                  lock names in use: held, holder, TTL, fence
  outbox status|retry-failed [--ids a,b] [--table t] [--bus name]   needs --mysql-url or MYSQL_URL
  doctor                                 checks the Redis server's settings for sluice
  bench [--count n]                      send and drain n messages on a temporary prefix, then delete it
  dashboard [--port 8080] [--host 127.0.0.1] [--read-only] [--token t]   the web dashboard, until Ctrl-C
                                         (token also from SLUICE_DASHBOARD_TOKEN; outbox with --mysql-url)

options: --url (or REDIS_URL; default redis://127.0.0.1:6379), --prefix (default sluice), --json,
  --connect-timeout-ms (default 3000)
exit codes: 0 ok, 1 a check failed or unhealthy, 2 usage error, 3 cannot connect`;

/** One Redis connection for the whole command, failing fast (exit 3) when Redis cannot be reached. */
async function connect(url: string, timeoutMs: number): Promise<Redis> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError('url', `--url must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ValidationError('url', `--url must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
  }
  const address = `${parsed.hostname || 'localhost'}:${parsed.port || 6379}`;
  let ready = false;
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 2,
    // Before the first connection, one attempt; after it (events tail), reconnect as a client should.
    retryStrategy: (times) => (ready ? Math.min(times * 200, 2000) : null),
  });
  let lastError: Error | undefined;
  client.on('error', (error: Error) => (lastError = error));
  try {
    await client.connect();
    await client.ping();
    ready = true;
  } catch (error) {
    if (client.status !== 'end') client.disconnect();
    const cause = lastError ?? error;
    const text = cause instanceof Error ? cause.message : String(cause);
    const failure = /NOAUTH|WRONGPASS|AUTH/i.test(text)
      ? 'auth'
      : /ENOTFOUND|EAI_AGAIN/.test(text)
        ? 'dns'
        : /ECONNREFUSED/.test(text)
          ? 'refused'
          : /Unknown RESP type|Protocol error/i.test(text)
            ? 'protocol'
            : 'timeout';
    throw new ConnectionError(address, failure, { cause, detail: `${text}; check --url or REDIS_URL` });
  }
  // A Redis Cluster node: the commands need a Cluster client, which finds the other masters from this one.
  if (/^cluster_enabled:1/m.test(await client.info('cluster'))) {
    await client.quit().catch(() => client.disconnect());
    return await connectCluster(parsed, address, timeoutMs);
  }
  return client;
}

/**
 * A Cluster client seeded with the node of the URL (its credentials and TLS for every node). Typed as a Redis:
 * the commands give it keyed commands and scripts, which a Cluster routes; the few whole-database reads (a
 * scan, INFO) go through `masters` or answer for one node.
 */
async function connectCluster(url: URL, address: string, timeoutMs: number): Promise<Redis> {
  const cluster = new Cluster([{ host: url.hostname || 'localhost', port: Number(url.port || 6379) }], {
    redisOptions: {
      connectTimeout: timeoutMs,
      maxRetriesPerRequest: 2,
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  });
  let lastError: Error | undefined;
  cluster.on('error', (error: Error) => (lastError = error));
  try {
    await cluster.ping();
  } catch (error) {
    cluster.disconnect();
    const cause = lastError ?? error;
    throw new ConnectionError(`cluster ${address}`, 'timeout', {
      cause,
      detail: `${cause instanceof Error ? cause.message : String(cause)}; check --url or REDIS_URL`,
    });
  }
  return cluster as unknown as Redis;
}

export async function main(argv: string[]): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch (error) {
    process.stderr.write(`sluice: ${(error as Error).message}\n${USAGE}\n`);
    return EXIT.usage;
  }
  const [name, ...args] = positionals;
  if (values.help || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const command = name === undefined ? undefined : COMMANDS[name];
  if (!command) {
    process.stderr.write(
      `sluice: ${name === undefined ? 'no command given' : `unknown command ${JSON.stringify(name)}`}\n${USAGE}\n`,
    );
    return EXIT.usage;
  }
  let redis: Redis | null = null;
  try {
    const url = values.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const timeoutMs = intOption(values, 'connect-timeout-ms', 3000, 1);
    redis = await connect(url, timeoutMs);
    const code = await command({
      args,
      values,
      prefix: values.prefix ?? 'sluice',
      out: output(values.json === true),
      redis,
      mysqlUrl: values['mysql-url'] ?? process.env.MYSQL_URL,
    });
    return code ?? EXIT.ok;
  } catch (error) {
    return report(error);
  } finally {
    const client: Redis | null = redis;
    if (client) await client.quit().catch(() => client.disconnect());
  }
}

/** One line naming the thing and the fix, and the exit code for it; no stack trace. */
function report(error: unknown): number {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`sluice: ${message}\n`);
  if (error instanceof ConnectionError) return EXIT.connect;
  if (error instanceof ValidationError) return EXIT.usage;
  const sqlCode = (error as { sqlCode?: unknown }).sqlCode;
  if (
    error instanceof SluiceError &&
    error.code === 'OUTBOX_DATABASE' &&
    typeof sqlCode === 'string' &&
    /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|ER_ACCESS_DENIED_ERROR|ER_BAD_DB_ERROR/.test(sqlCode)
  )
    return EXIT.connect;
  return EXIT.unhealthy;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`sluice: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = EXIT.unhealthy;
  },
);
