import type { Cluster, Redis } from 'ioredis';

/**
 * Recognises an ioredis client by its shape rather than with `instanceof`: a project may hold a client made by
 * another copy of ioredis than the one sluice imports (ioredis 6 next to sluice's 5, two copies in a monorepo,
 * a bundled copy), and `instanceof` against our copy refuses those. What sluice calls on a client is
 * `defineCommand` (scripts), `duplicate` (the consumer's blocking connection), `status`, `on` and `pipeline`;
 * a Cluster is told apart by its `nodes()` method, because its `duplicate` takes other arguments.
 */
export function isIoredisClient(value: unknown): value is Redis | Cluster {
  if (value === null || typeof value !== 'object') return false;
  const client = value as Record<string, unknown>;
  return (
    typeof client.defineCommand === 'function' &&
    typeof client.duplicate === 'function' &&
    typeof client.pipeline === 'function' &&
    typeof client.on === 'function' &&
    typeof client.status === 'string'
  );
}

/** Whether an ioredis client (of any copy of ioredis) is a Cluster. */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return typeof (client as Partial<Cluster>).nodes === 'function';
}

/** Names what was passed instead of a client, for the error message. */
export function describeNonClient(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  const what = typeof name === 'string' && name !== 'Object' ? `an object of class ${name}` : 'an object';
  return `${what} without ioredis's defineCommand/duplicate/pipeline/status`;
}
