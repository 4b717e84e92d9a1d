import type { Cluster, Redis } from 'ioredis';
import { isCluster } from './client-shape.js';
import { DurabilityError } from './errors.js';
import { checkOptions, optionNames, requireInteger } from './validate.js';

/**
 * The `durability` option of a Queue or an EventBus: a send or publish resolves only once its write reached
 * `replicas` replicas of the master that holds it (Redis WAIT), within `timeoutMs`; else it rejects with
 * DurabilityError. Without the option nothing is waited for and no command is added.
 */
export interface DurabilityOptions {
  /** how many replicas must have the write (an integer >= 1) */
  replicas: number;
  /** how long to wait for them, 1..60000 ms (default 1000) */
  timeoutMs?: number;
}

/** The option, checked. @internal */
export interface Durability {
  replicas: number;
  timeoutMs: number;
}

export const DEFAULT_DURABILITY_TIMEOUT_MS = 1000;
const MAX_DURABILITY_TIMEOUT_MS = 60_000;
const MAX_REPLICAS = 1000;
const DURABILITY_OPTIONS = optionNames<DurabilityOptions>({ replicas: true, timeoutMs: true });

/** The durability option checked; null when absent. */
export function durabilityOption(value: unknown, where: string): Durability | null {
  if (value === undefined) return null;
  checkOptions(value, DURABILITY_OPTIONS, where, 'durability');
  const options = value as DurabilityOptions;
  return {
    replicas: requireInteger('durability.replicas', options.replicas, 1, MAX_REPLICAS),
    timeoutMs: requireInteger(
      'durability.timeoutMs',
      options.timeoutMs ?? DEFAULT_DURABILITY_TIMEOUT_MS,
      1,
      MAX_DURABILITY_TIMEOUT_MS,
    ),
  };
}

/**
 * Waits until the writes made so far on the connection that wrote under `baseKey` reached `durability.replicas`
 * replicas; rejects with DurabilityError naming `ids` otherwise. No ids (a call that wrote nothing, every
 * send refused at maxLength): nothing to wait for.
 *
 * WAIT counts the replicas that acknowledged the last write of the connection it is sent on, so it must go on
 * the connection that ran the script. A `Redis` is one connection. A `Cluster` keeps one connection per node
 * and sends a WAIT (no key) to any node; a pipeline goes to the node of its keyed commands, so an EXISTS of the
 * base key in front of the WAIT takes it to the node that owns the slot: the one the script ran on (a MOVED
 * reply during the script's call updated the slot map before the call was answered). Called after the
 * script's reply, never pipelined with it: a script refused with NOSCRIPT is sent again, after the WAIT.
 */
export async function waitForReplicas(
  client: Redis | Cluster,
  baseKey: string,
  durability: Durability,
  target: string,
  ids: readonly string[],
): Promise<void> {
  if (ids.length === 0) return;
  const { replicas, timeoutMs } = durability;
  let acknowledged: number;
  try {
    if (isCluster(client)) {
      const replies = await client.pipeline().exists(baseKey).wait(replicas, timeoutMs).exec();
      const [error, value] = replies?.[1] ?? [new Error('no reply to WAIT'), 0];
      if (error) throw error;
      acknowledged = Number(value);
    } else {
      acknowledged = Number(await client.wait(replicas, timeoutMs));
    }
  } catch (error) {
    throw new DurabilityError(target, ids, durability, 0, { cause: error });
  }
  if (acknowledged < replicas) throw new DurabilityError(target, ids, durability, acknowledged);
}
