import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Priority, Queue, type DeadLetter } from '../src/index.js';
import {
  CHANNELS,
  injectsFailure,
  type ChannelName,
  type NotificationMessage,
} from '../examples/notifications/channels.js';
import { deleteRunData, runNotificationPipeline, type PipelineResult } from '../examples/notifications/pipeline.js';
import { INAPP_TABLE } from '../examples/notifications/store.js';
import { URGENT_CONFIDENCE } from '../examples/notifications/signals.js';
import { redisUrl, uniquePrefix } from './helpers.js';
import { mysqlUrl } from './outbox.helpers.js';

const PER_USER_LIMIT = 10;

const perChannel = <V>(make: (channel: ChannelName) => V) =>
  Object.fromEntries(CHANNELS.map((c) => [c, make(c)])) as Record<ChannelName, V>;

/**
 * What the pipeline should have done, worked out from the signal list alone: each user's first 10 signals
 * pass the limit (the run lasts far less than the minute), a signal seen before for the same user is a
 * duplicate, and the others are queued on in-app, email, push, and SMS for premium users; then each
 * queued message fails the attempts the injected fault hits, until one succeeds or the retries run out.
 */
function expectedOf(result: PipelineResult) {
  const premium = new Set(result.users.filter((u) => u.premium).map((u) => u.id));
  const taken = new Map<string, number>();
  const seen = new Set<string>();
  const signals = { total: 0, rateLimited: 0, duplicates: 0 };
  const rateLimited = perChannel(() => 0);
  const deduplicated = perChannel(() => 0);
  const queued = perChannel((): { id: string; userId: string; urgent: boolean }[] => []);
  for (const signal of result.signals) {
    signals.total++;
    const channels: ChannelName[] = premium.has(signal.userId)
      ? ['inapp', 'email', 'sms', 'push']
      : ['inapp', 'email', 'push'];
    const used = taken.get(signal.userId) ?? 0;
    if (used >= PER_USER_LIMIT) {
      signals.rateLimited++;
      for (const c of channels) rateLimited[c]++;
      continue;
    }
    taken.set(signal.userId, used + 1);
    if (seen.has(`${signal.userId}/${signal.id}`)) {
      signals.duplicates++;
      for (const c of channels) deduplicated[c]++;
      continue;
    }
    seen.add(`${signal.userId}/${signal.id}`);
    const urgent = signal.confidence >= URGENT_CONFIDENCE;
    for (const c of channels) queued[c].push({ id: `n${signal.seq}.${c}`, userId: signal.userId, urgent });
  }
  const failures = perChannel(() => 0);
  const dead = perChannel((): string[] => []);
  for (const c of CHANNELS) {
    for (const { id } of queued[c]) {
      let attempt = 0;
      while (attempt <= result.maxRetries && injectsFailure(result.summary.seed, id, attempt, result.failureRates[c])) {
        attempt++;
      }
      failures[c] += Math.min(attempt, result.maxRetries + 1);
      if (attempt > result.maxRetries) dead[c].push(id);
    }
  }
  return { signals, rateLimited, deduplicated, queued, failures, dead, premium };
}

async function keysOf(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

describe('examples/notifications (seed 002 pipeline)', () => {
  const redis = new Redis(redisUrl());
  let prefixes: string[] = [];
  // A passing test's runs are deleted; a failing test's are kept for inspection, and named.
  afterEach(async (context) => {
    if (context.task.result?.state === 'fail') {
      console.error(`keeping the runs of failed test "${context.task.name}": prefixes ${prefixes.join(', ')}`);
    } else {
      for (const prefix of prefixes) await deleteRunData({ prefix, redisUrl: redisUrl(), mysqlUrl: mysqlUrl() });
    }
    prefixes = [];
  });
  afterAll(async () => {
    await redis.quit();
  });

  const run = (seed: number, label: string) => {
    const prefix = uniquePrefix(label);
    prefixes.push(prefix);
    return runNotificationPipeline({ seed, prefix, redisUrl: redisUrl(), mysqlUrl: mysqlUrl() });
  };

  it('delivers, retries, dead-letters, limits and deduplicates as the signal list and the faults say', async () => {
    const result = await run(3, 'notify');
    const { summary } = result;
    const expected = expectedOf(result);
    expect(result.errors).toEqual([]);
    expect(summary.signals).toEqual(expected.signals);
    // The example must exercise every path, or the checks below prove little.
    expect(expected.signals.rateLimited).toBeGreaterThan(0);
    expect(expected.signals.duplicates).toBeGreaterThan(0);
    expect(CHANNELS.some((c) => expected.dead[c].length > 0)).toBe(true);

    const mysql = await createConnection({ uri: mysqlUrl() });
    try {
      for (const c of CHANNELS) {
        const line = summary.channels[c];
        const queuedIds = expected.queued[c].map((q) => q.id).sort();
        expect(line.queued, c).toBe(queuedIds.length);
        expect(line.sent + line.deadLettered, c).toBe(line.queued);
        expect(line.rateLimited, c).toBe(expected.rateLimited[c]);
        expect(line.deduplicated, c).toBe(expected.deduplicated[c]);

        // Every injected failure was either retried or the last one before the DLQ.
        expect(result.injected[c].length, c).toBe(expected.failures[c]);
        expect(line.retried, c).toBe(expected.failures[c] - expected.dead[c].length);
        expect(line.deadLettered, c).toBe(expected.dead[c].length);

        // What the channel delivered and what its DLQ holds are, together, exactly the queued messages.
        const queue = new Queue<NotificationMessage>(result.queueNames[c], {
          connection: redis,
          prefix: result.prefix,
        });
        const letters: DeadLetter<NotificationMessage>[] = await queue.deadLetters({ limit: 1000 });
        await queue.close();
        expect(letters.map((l) => l.id).sort(), c).toEqual([...expected.dead[c]].sort());
        for (const letter of letters) {
          expect(letter.reason, c).toMatch(/provider unavailable \(injected fault, attempt \d\)/);
          expect(letter.message!.attempts, c).toBe(result.maxRetries + 1);
          const wanted = expected.queued[c].find((q) => q.id === letter.id)!;
          expect(letter.message!.priority, letter.id).toBe(wanted.urgent ? Priority.HIGH : Priority.NORMAL);
        }
        const deliveredIds = result.delivered[c].map((d) => d.messageId);
        expect(deliveredIds.length, c).toBe(line.sent);
        expect([...deliveredIds, ...letters.map((l) => l.id)].sort(), c).toEqual(queuedIds);

        if (c === 'sms') {
          expect(line.queued).toBeGreaterThan(0);
          const users = [
            ...result.delivered.sms.map((d) => d.userId),
            ...letters.map((l) => l.message!.payload.userId),
          ];
          expect(users.every((u) => expected.premium.has(u))).toBe(true);
        }
        if (c === 'inapp') {
          const [rows] = await mysql.query<RowDataPacket[]>(`SELECT id FROM ${INAPP_TABLE} WHERE run_id = ?`, [
            result.prefix,
          ]);
          expect(rows.length).toBe(line.sent);
          expect(rows.map((r) => String(r.id)).sort()).toEqual([...deliveredIds].sort());
        }
      }
      expect(summary.totals.queued).toBe(CHANNELS.reduce((n, c) => n + summary.channels[c].queued, 0));
      expect(summary.totals.sent + summary.totals.deadLettered).toBe(summary.totals.queued);

      // deleteRunData leaves nothing of the run behind.
      const deleted = await deleteRunData({ prefix: result.prefix, redisUrl: redisUrl(), mysqlUrl: mysqlUrl() });
      expect(deleted.inAppRows).toBe(summary.channels.inapp.sent);
      expect(deleted.redisKeys).toBeGreaterThan(0);
      expect(await keysOf(redis, result.prefix)).toEqual([]);
      const [left] = await mysql.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${INAPP_TABLE} WHERE run_id = ?`, [
        result.prefix,
      ]);
      expect(Number(left[0]!.n)).toBe(0);
    } finally {
      await mysql.end();
    }
  });

  it('gives the same summary for the same seed', async () => {
    const first = await run(11, 'notify-a');
    const second = await run(11, 'notify-b');
    expect(second.summary).toEqual(first.summary);
    // The same faults hit the same attempts (in whatever order the concurrent handlers met them).
    const faults = (r: PipelineResult) =>
      perChannel((c) => r.injected[c].map((f) => `${f.messageId}#${f.attempt}`).sort());
    expect(faults(second)).toEqual(faults(first));
  });

  it('npm run example:notifications prints the summary and exits by itself', async () => {
    // The compiled program, as the npm script runs it (npm test builds first).
    const program = fileURLToPath(new URL('../dist/examples/notifications/run.js', import.meta.url));
    const child = spawn(process.execPath, [program, '--seed=5', '--signals=60'], {
      env: { ...process.env, REDIS_URL: redisUrl(), MYSQL_URL: mysqlUrl() },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(output).toMatch(/^seed 5: 60 signals for 20 users/m);
    expect(output).toMatch(/^total +\d+/m);
    expect(output).toMatch(/deleted \d+ Redis keys and \d+ in-app rows of the run/);
  });
});
