import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ConsumerInfo } from './types.js';
import type { Queue } from './queue.js';

/** Default interval between a consumer's heartbeats (ConsumerOptions.heartbeatMs). */
export const DEFAULT_HEARTBEAT_MS = 5_000;
export const MIN_HEARTBEAT_MS = 10;
export const MAX_HEARTBEAT_MS = 10 * 60_000;
/** A consumer counts as gone once this many heartbeats in a row are missing (its process died, say). */
const MISSED_HEARTBEATS = 3;
/** Most consumers queue.consumers() lists. */
export const MAX_CONSUMERS_LISTED = 1_000;

/**
 * A running consumer's entry in its queue's consumers set (lua/queue/presence.lua), so that stats and
 * dashboards can tell a queue nobody consumes. The member, fixed for the consumer's life, carries what a
 * listing shows: `<id>|<ttl ms>|<JSON {host, pid, concurrency, startedAt}>`; the id is
 * `<host>:<pid>:<random>`, with no `|`. Its score is the deadline, so that stats counts without knowing
 * any consumer's TTL. The heartbeat runs on its own timer: dequeue and ack never pay for it.
 */
export class ConsumerPresence {
  readonly id: string;
  private readonly member: string;
  private readonly ttlMs: number;
  private readonly timer: NodeJS.Timeout;
  /** the heartbeat in flight: one at a time, so that beats to an unreachable Redis do not pile up */
  private beating = false;
  private left = false;

  constructor(
    private readonly queue: Pick<Queue, 'runScript'>,
    concurrency: number,
    heartbeatMs: number,
  ) {
    const host = hostname();
    this.id = `${host.replace(/\|/g, '_')}:${process.pid}:${randomBytes(6).toString('base64url')}`;
    this.ttlMs = heartbeatMs * MISSED_HEARTBEATS;
    const info = { host, pid: process.pid, concurrency, startedAt: Date.now() };
    this.member = `${this.id}|${this.ttlMs}|${JSON.stringify(info)}`;
    this.beat();
    this.timer = setInterval(() => this.beat(), heartbeatMs);
    // Presence never keeps a process alive: one that exits without close() drops out after the TTL.
    this.timer.unref();
  }

  /**
   * A heartbeat that fails (Redis unreachable) is not reported: the fetch loop reports the same trouble,
   * and the next tick tries again; until then the entry counts as long as its TTL allows.
   */
  private beat(): void {
    if (this.beating || this.left) return;
    this.beating = true;
    this.queue.runScript('queue/presence', [this.member, this.ttlMs]).then(
      () => (this.beating = false),
      () => (this.beating = false),
    );
  }

  /** Stops the heartbeat and removes the entry. Never rejects; close() bounds how long it waits for it. */
  leave(): Promise<void> {
    this.left = true;
    clearInterval(this.timer);
    return this.queue.runScript('queue/presence', [this.member, 0]).then(
      () => undefined,
      () => undefined,
    );
  }
}

/** Decodes queue/consumers' reply: member, deadline pairs. Members that do not parse are skipped. */
export function decodeConsumers(reply: readonly string[]): ConsumerInfo[] {
  const consumers: ConsumerInfo[] = [];
  for (let n = 0; n + 1 < reply.length; n += 2) {
    const member = reply[n]!;
    const idEnd = member.indexOf('|');
    const ttlEnd = member.indexOf('|', idEnd + 1);
    if (idEnd < 0 || ttlEnd < 0) continue;
    try {
      const info = JSON.parse(member.slice(ttlEnd + 1)) as Partial<ConsumerInfo>;
      consumers.push({
        id: member.slice(0, idEnd),
        host: String(info.host),
        pid: Number(info.pid),
        concurrency: Number(info.concurrency),
        startedAt: Number(info.startedAt),
        lastSeenAt: Number(reply[n + 1]) - Number(member.slice(idEnd + 1, ttlEnd)),
      });
    } catch {
      continue;
    }
  }
  return consumers;
}
