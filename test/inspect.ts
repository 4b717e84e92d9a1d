import type { Redis } from 'ioredis';
import { queueKey } from '../src/keys.js';
import { recordId } from '../src/queue/record.js';

/** Where each message id sits, read straight from every state structure of a queue. */
export interface QueueSnapshot {
  places: Map<string, string[]>;
  /** ids with a stored record but in no structure that should own one, or the reverse */
  orphanRecords: string[];
  missingRecords: string[];
  inflightReceipts: Map<string, string[]>;
}

export async function snapshot(redis: Redis, base: string): Promise<QueueSnapshot> {
  const places = new Map<string, string[]>();
  const add = (id: string, place: string) => places.set(id, [...(places.get(id) ?? []), place]);
  for (const p of [1, 2, 3, 4] as const) {
    for (const rec of await redis.lrange(queueKey(base, `ready${p}`), 0, -1)) add(recordId(rec), `ready${p}`);
  }
  for (const pk of await redis.hkeys(queueKey(base, 'partitions'))) {
    for (const entry of await redis.lrange(queueKey(base, 'backlogPrefix') + pk, 0, -1)) {
      add(recordId(entry.slice(entry.indexOf('|') + 1)), `backlog:${pk}`);
    }
  }
  const withRecords = new Set<string>();
  for (const id of await redis.zrange(queueKey(base, 'delayed'), 0, -1)) {
    add(id, 'delayed');
    withRecords.add(id);
  }
  const inflightReceipts = new Map<string, string[]>();
  for (const member of await redis.zrange(queueKey(base, 'inflight'), 0, -1)) {
    const bar = member.lastIndexOf('|');
    const id = member.slice(0, bar);
    add(id, 'inflight');
    withRecords.add(id);
    inflightReceipts.set(id, [...(inflightReceipts.get(id) ?? []), member.slice(bar + 1)]);
  }
  for (const id of await redis.zrange(queueKey(base, 'deadLetter'), 0, -1)) {
    add(id, 'dead');
    withRecords.add(id);
  }
  const stored = new Set(await redis.hkeys(queueKey(base, 'records')));
  return {
    places,
    inflightReceipts,
    orphanRecords: [...stored].filter((id) => !withRecords.has(id)),
    missingRecords: [...withRecords].filter((id) => !stored.has(id)),
  };
}

/** Ids that are in more than one place, or in none of the places listed as expected. */
export function misplaced(snap: QueueSnapshot, expectedIds: Iterable<string>): string[] {
  const problems: string[] = [];
  for (const [id, where] of snap.places) if (where.length > 1) problems.push(`${id} in ${where.join(' and ')}`);
  for (const id of expectedIds) if (!snap.places.has(id)) problems.push(`${id} in no state`);
  for (const id of snap.orphanRecords) problems.push(`${id} has a record but no state`);
  for (const id of snap.missingRecords) problems.push(`${id} has a state but no record`);
  return problems;
}
