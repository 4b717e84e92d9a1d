import { describe, expect, it } from 'vitest';
import { useRedis, waitFor } from './helpers.js';

const env = useRedis();

describe('dead-letter queue', () => {
  it('holds failed messages with their reason, oldest first; replay resets attempts; purge deletes', async () => {
    const queue = env.queue<{ n: number }>('dlq');
    const ids = await queue.sendMany([1, 2, 3].map((n) => ({ payload: { n }, maxRetries: 0, type: 'job' })));
    const batch = await queue.dequeue({ count: 3 });
    for (const d of batch) await queue.nack(d, { error: new Error(`bad input ${d.payload.n}`) });

    const letters = await queue.deadLetters();
    expect(letters.map((l) => l.id)).toEqual(ids);
    expect(letters.map((l) => l.reason)).toEqual(['bad input 1', 'bad input 2', 'bad input 3']);
    for (const letter of letters) expect(Math.abs(letter.failedAt - Date.now())).toBeLessThan(60_000);
    expect(letters[0]!.message).toMatchObject({ payload: { n: 1 }, attempts: 1, type: 'job' });
    expect((await queue.getStats()).deadLetters).toBe(3);

    expect(await queue.replayDeadLetters({ ids: [ids[1]!, 'not-there'] })).toEqual([ids[1]]);
    const [replayed] = await queue.dequeue();
    expect(replayed).toMatchObject({ id: ids[1], attempts: 0, payload: { n: 2 } });
    await queue.ack(replayed!);

    expect(await queue.purgeDeadLetters({ ids: [ids[0]!] })).toBe(1);
    expect((await queue.deadLetters()).map((l) => l.id)).toEqual([ids[2]]);
    expect(await queue.replayDeadLetters()).toEqual([ids[2]]);
    expect((await queue.getStats()).counters).toMatchObject({ deadLettered: 3, replayed: 2 });
    expect(await queue.purgeDeadLetters({ limit: 10 })).toBe(0);
  });

  it('retry: false skips the remaining retries', async () => {
    const queue = env.queue<string>('no-retry');
    const id = await queue.send('x', { maxRetries: 10 });
    const [d] = await queue.dequeue();
    expect(await queue.nack(d!, { retry: false, error: 'unrecoverable' })).toBe('dead-lettered');
    expect(await queue.getMessage(id)).toMatchObject({ status: 'FAILED', lastError: 'unrecoverable' });
  });

  it('a replayed partitioned message re-enters its partition at the back', async () => {
    const queue = env.queue<string>('replay-partition');
    await queue.send('old', { partitionKey: 'k', maxRetries: 0 });
    const [old] = await queue.dequeue();
    await queue.nack(old!, { error: 'x' });
    await queue.send('newer', { partitionKey: 'k' });
    await queue.replayDeadLetters();
    const order: string[] = [];
    for (let n = 0; n < 2; n++) {
      const [d] = await queue.dequeue({ count: 10 });
      order.push(d!.payload);
      await queue.ack(d!);
    }
    expect(order).toEqual(['newer', 'old']);
  });

  it('a record corrupted in Redis goes to the DLQ with a reason and the consumer keeps running', async () => {
    const queue = env.queue<string>('corrupt');
    await queue.sendMany([{ payload: 'one' }, { payload: 'two' }, { payload: 'three' }]);
    const readyKey = `${queue.baseKey}:r2`;
    const [, secondRec] = await env.redis.lrange(readyKey, 0, 1);
    // One entry loses its header, another keeps its header but its payload is no longer JSON.
    await env.redis.lset(readyKey, 0, 'garbage without any header');
    await env.redis.lset(readyKey, 1, secondRec!.replace(/"two"$/, '{"broken'));

    const handled: string[] = [];
    const consumer = queue.consume((m) => {
      handled.push(m.payload);
    });
    await queue.send('four');
    await waitFor(() => handled.includes('four'), 'the message sent after the corrupt ones');
    await consumer.close();

    expect(handled).toEqual(['three', 'four']);
    const letters = await queue.deadLetters();
    expect(letters).toHaveLength(2);
    expect(letters.map((l) => l.reason).sort()).toEqual(
      [
        'corrupt message record: payload is not JSON (Unterminated string in JSON at position 8)',
        'corrupt record: its header does not parse',
      ].sort(),
    );
    expect(letters.find((l) => l.reason?.includes('header'))!.raw).toBe('garbage without any header');
  });
});
