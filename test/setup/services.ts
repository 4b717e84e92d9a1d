import { execSync } from 'node:child_process';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';

/**
 * Finds the services the tests talk to, in this order: the URL in REDIS_URL; else a container started
 * with testcontainers when a Docker engine answers; else the run fails with a message saying what to set.
 * Tests never skip for a missing service.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

function dockerAnswers(): boolean {
  try {
    execSync('docker info', { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

async function assertRedisAnswers(url: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(`REDIS_URL=${url} does not answer (${(error as Error).message}); start Redis or fix the URL`);
  } finally {
    redis.disconnect();
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: (() => Promise<unknown>)[] = [];
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    if (!dockerAnswers()) {
      throw new Error(
        'No Redis for the tests: set REDIS_URL (for example REDIS_URL=redis://127.0.0.1:6379 npm test), ' +
          'or run a Docker engine so that the tests can start a Redis container.',
      );
    }
    const { GenericContainer } = await import('testcontainers');
    const container = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
    stops.push(() => container.stop());
    redisUrl = `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
  }
  await assertRedisAnswers(redisUrl);
  project.provide('redisUrl', redisUrl);
  return async () => {
    await Promise.all(stops.map((stop) => stop()));
  };
}
