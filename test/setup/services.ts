import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { freePort } from '../ports.js';
import { startCluster } from '../servers.js';
import { CLUSTER_NODES_ENV, ON_CLUSTER, SINGLE_NODE_ONLY } from './topology.js';

/**
 * Finds the Redis the tests talk to, in this order:
 *   1. the URL in REDIS_URL (it must answer: a set URL that does not is a failure, never a fallback);
 *   2. a Redis answering on 127.0.0.1:6379;
 *   3. a throwaway redis-server started here on a free port, when redis-server is on PATH (as the demo does);
 *   4. a container started with testcontainers, when a Docker engine answers;
 * else the run fails with a message saying what to install or set. Tests never skip for a missing service.
 *
 * With SLUICE_TEST_TOPOLOGY=cluster (test/setup/topology.ts) it finds none of these: it starts a Redis Cluster
 * of three masters on 127.0.0.1 (redis-server and redis-cli must be on PATH), provides its nodes, and stops
 * it at the end. `redisUrl` then names the first master (the seed a child process is given).
 *
 * The outbox's tests also need MariaDB ≥ 10.6 or MySQL ≥ 8 at MYSQL_URL (default
 * mysql://root@127.0.0.1:3306/test); the run stops at once, saying so, when it does not answer.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** the cluster's masters as host:port on the cluster topology; empty on a single node */
    redisNodes: string[];
  }
}

const LOCAL_URL = 'redis://127.0.0.1:6379';

function commandWorks(command: string): boolean {
  try {
    execSync(command, { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** The error of a failed PING, or null when the server answers. */
async function pingError(url: string): Promise<string | null> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2_000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    redis.disconnect();
  }
}

async function mysqlPingError(url: string): Promise<string | null> {
  const { createConnection } = await import('mysql2/promise');
  try {
    const connection = await createConnection({ uri: url, connectTimeout: 5_000 });
    await connection.query('SELECT 1');
    await connection.end();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

async function throwawayRedis(): Promise<{ url: string; server: ChildProcess }> {
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  server.on('error', () => undefined);
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  while ((await pingError(url)) !== null) {
    if (Date.now() > deadline || server.exitCode !== null) {
      server.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer within 15 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url, server };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: (() => Promise<unknown>)[] = [];
  let redisUrl = process.env.REDIS_URL;
  let redisNodes: string[] = [];
  if (ON_CLUSTER) {
    if (!commandWorks('redis-server --version') || !commandWorks('redis-cli --version')) {
      throw new Error(
        'SLUICE_TEST_TOPOLOGY=cluster starts its own cluster: redis-server and redis-cli must be on PATH ' +
          '(apt-get install redis-server)',
      );
    }
    const cluster = await startCluster();
    stops.push(() => cluster.stop());
    redisNodes = cluster.ports.map((port) => `127.0.0.1:${port}`);
    redisUrl = `redis://${redisNodes[0]}`;
    process.env[CLUSTER_NODES_ENV] = redisNodes.join(',');
    const skipped = Object.keys(SINGLE_NODE_ONLY).length;
    console.log(
      `[sluice tests] cluster topology: ${skipped} single-node-only files not run (test/setup/topology.ts lists why)`,
    );
  } else if (redisUrl) {
    const error = await pingError(redisUrl);
    if (error) throw new Error(`REDIS_URL=${redisUrl} does not answer (${error}); start Redis or fix the URL`);
  } else if ((await pingError(LOCAL_URL)) === null) {
    redisUrl = LOCAL_URL;
  } else if (commandWorks('redis-server --version')) {
    const { url, server } = await throwawayRedis();
    stops.push(async () => {
      if (server.exitCode === null) {
        server.kill('SIGTERM');
        await once(server, 'exit');
      }
    });
    redisUrl = url;
  } else if (commandWorks('docker info')) {
    const { GenericContainer } = await import('testcontainers');
    const container = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
    stops.push(() => container.stop());
    redisUrl = `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
  } else {
    throw new Error(
      'No Redis for the tests: nothing answers on 127.0.0.1:6379, redis-server is not on PATH and no Docker ' +
        'engine answers. Start Redis, install it (apt-get install redis-server), or set REDIS_URL.',
    );
  }
  const mysqlUrl = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
  const mysqlError = await mysqlPingError(mysqlUrl);
  if (mysqlError) {
    await Promise.all(stops.map((stop) => stop()));
    throw new Error(
      `No MariaDB/MySQL for the outbox's tests at ${mysqlUrl} (${mysqlError}): start MariaDB ≥ 10.6 or MySQL ≥ 8 ` +
        '(apt-get install mariadb-server), or set MYSQL_URL.',
    );
  }
  // Test files that start processes of their own (fixtures, the packed-package test) read them from here.
  process.env.REDIS_URL = redisUrl;
  process.env.MYSQL_URL = mysqlUrl;
  console.log(
    ON_CLUSTER
      ? `[sluice tests] Redis Cluster of 3 masters at ${redisNodes.join(', ')}`
      : `[sluice tests] Redis at ${redisUrl}`,
  );
  project.provide('redisUrl', redisUrl);
  project.provide('redisNodes', redisNodes);
  return async () => {
    await Promise.all(stops.map((stop) => stop()));
  };
}
