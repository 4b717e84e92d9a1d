import { Redis, type Cluster } from 'ioredis';
import { describeNonClient, isIoredisClient } from './client-shape.js';
import { ValidationError } from './errors.js';
import type { RedisClient } from './scripts.js';

/** What every sluice component accepts as its connection. */
export type Connection = Redis | Cluster | string;

/**
 * An ioredis client from a connection option: a client the caller passed (the caller closes it), or
 * one opened from a redis:// URL (the component owns it and closes it).
 */
export function resolveConnection(connection: unknown): { client: RedisClient; owned: boolean } {
  if (typeof connection === 'string') {
    const client = new Redis(connection);
    // Connection failures reach callers as rejected commands; the client reconnects by itself.
    client.on('error', () => undefined);
    return { client, owned: true };
  }
  // By shape, not instanceof: a client from the project's own copy of ioredis (5 or 6) is as good as ours.
  if (isIoredisClient(connection)) return { client: connection, owned: false };
  throw new ValidationError(
    'connection',
    `connection must be an ioredis client (Redis or Cluster, ioredis 5 or 6) or a redis:// URL, got ${describeNonClient(connection)}`,
  );
}

/**
 * Closes a client a component opened itself: QUIT when connected (pending replies arrive first), otherwise
 * drop it at once, since QUIT would wait for a reconnection to a server that may be gone.
 */
export async function closeOwned(client: RedisClient): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => undefined);
  else client.disconnect();
}
