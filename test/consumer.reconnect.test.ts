import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Queue } from '../src/index.js';
import { useRedis, waitFor } from './helpers.js';
import { freePort, startRedis } from './servers.js';

const env = useRedis();

describe('consumer resilience', () => {
  it('resumes on its own after its Redis connections are killed (CLIENT KILL)', async () => {
    const connection = env.connection();
    await connection.client('SETNAME', 'reconnect-test-main');
    const queue = env.queue<string>('killed', { connection });
    const handled: string[] = [];
    const consumer = queue.consume((m) => {
      handled.push(m.payload);
    });
    consumer.on('error', () => undefined);
    await queue.send('before');
    await waitFor(() => handled.includes('before'), 'the first message');

    const clients = (await env.redis.client('LIST')) as string;
    const ids = clients
      .split('\n')
      .filter(
        (line) => line.includes('name=reconnect-test-main') || line.includes(`name=sluice:consumer:${queue.baseKey}`),
      )
      .map((line) => /id=(\d+)/.exec(line)![1]!);
    expect(ids.length).toBe(2);
    for (const id of ids) await env.redis.client('KILL', 'ID', id);

    const producer = env.queue<string>('killed', { prefix: queue.prefix, connection: env.connection() });
    await producer.send('after');
    await waitFor(() => handled.includes('after'), 'the message sent after the kill', 30_000);
    await consumer.close();
    expect(handled).toEqual(['before', 'after']);
  });

  it('resumes on its own after the Redis server restarts', async () => {
    const port = await freePort();
    let server = await startRedis(port);
    const url = `redis://127.0.0.1:${port}`;
    const queue = new Queue<string>('restarted', { connection: url });
    const handled: string[] = [];
    const consumer = queue.consume((m) => {
      handled.push(m.payload);
    });
    consumer.on('error', () => undefined);
    try {
      await queue.send('before');
      await waitFor(() => handled.includes('before'), 'the first message');

      server.kill('SIGKILL');
      await once(server, 'exit');
      server = await startRedis(port);

      // The restarted server has no data and no scripts; sending and consuming must both recover.
      await waitFor(
        async () => {
          try {
            await queue.send('after');
            return true;
          } catch {
            return false;
          }
        },
        'a send to succeed after the restart',
        30_000,
      );
      await waitFor(() => handled.includes('after'), 'the message sent after the restart', 30_000);
      expect(handled).toEqual(['before', 'after']);
    } finally {
      await consumer.close({ graceMs: 1_000 });
      await queue.close();
      server.kill('SIGKILL');
    }
  });
});
