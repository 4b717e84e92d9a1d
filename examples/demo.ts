// npm run demo: sends and consumes with priorities, a delay, a retry and a dead-letter replay, printing
// what happens. Uses REDIS_URL (default redis://127.0.0.1:6379); when nothing answers there and
// redis-server is on PATH, it starts a throwaway one on a free port and stops it afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { Queue, type Delivery } from '../src/index.js';

interface Task {
  task: string;
}

const t0 = Date.now();
const say = (text: string) => console.log(`${String(Date.now() - t0).padStart(6)} ms  ${text}`);

async function answers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function throwawayRedis(): Promise<{ url: string; server: ChildProcess }> {
  const listener = createServer().listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const port = (listener.address() as { port: number }).port;
  listener.close();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  server.on('error', () => undefined);
  const url = `redis://127.0.0.1:${port}`;
  for (let tries = 0; tries < 100 && !(await answers(url)); tries++) await new Promise((r) => setTimeout(r, 50));
  if (!(await answers(url))) throw new Error('could not start redis-server; set REDIS_URL to a running Redis');
  return { url, server };
}

async function main(): Promise<void> {
  let url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  let server: ChildProcess | undefined;
  if (!(await answers(url))) {
    say(`nothing answers at ${url}; starting a throwaway redis-server`);
    ({ url, server } = await throwawayRedis());
  }
  say(`using ${url}`);
  const redis = new Redis(url);
  const prefix = `demo-${process.pid}`;
  const queue = new Queue<Task>('tasks', { connection: redis, prefix, retry: { baseMs: 300, capMs: 1_000 } });

  try {
    await queue.sendMany([
      { payload: { task: 'send newsletter' }, priority: 'LOW' },
      { payload: { task: 'resize avatar' } },
      { payload: { task: 'charge card' }, priority: 'HIGH' },
      { payload: { task: 'page the on-call engineer' }, priority: 'CRITICAL' },
    ]);
    await queue.send({ task: 'reminder in 1 s' }, { delayMs: 1_000 });
    await queue.send({ task: 'flaky API call (fails once)' }, { maxRetries: 3 });
    const poisonId = await queue.send({ task: 'poison message (always fails)' }, { maxRetries: 1 });
    say('sent 7 messages: 4 priorities, 1 delayed by 1 s, 1 that fails once, 1 that always fails');
    say(`stats: ${JSON.stringify(await queue.getStats())}`);

    let replayed = false;
    const finished = new Set<string>();
    const consumer = queue.consume(
      async (m: Delivery<Task>) => {
        say(`handling "${m.payload.task}" (priority ${m.priority}, attempt ${m.attempts + 1})`);
        if (m.payload.task.startsWith('flaky') && m.attempts === 0) throw new Error('upstream timed out');
        if (m.payload.task.startsWith('poison') && !replayed) throw new Error('cannot parse the order');
        finished.add(m.id);
      },
      { concurrency: 1 },
    );
    consumer.on('failed', (m, error) =>
      say(`  failed "${m.payload.task}": ${error instanceof Error ? error.message : String(error)}`),
    );

    while ((await queue.getStats()).deadLetters === 0) await new Promise((r) => setTimeout(r, 50));
    const [letter] = await queue.deadLetters();
    say(
      `dead-letter queue holds "${letter!.message!.payload.task}" after ${letter!.message!.attempts} attempts: ${letter!.reason}`,
    );
    replayed = true;
    say(`replaying it: ${JSON.stringify(await queue.replayDeadLetters({ ids: [poisonId] }))}`);

    while (finished.size < 7) await new Promise((r) => setTimeout(r, 50));
    await consumer.close();
    const stats = await queue.getStats();
    say(`done: ${JSON.stringify(stats.counters)}`);
  } finally {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
    await redis.quit();
    if (server) {
      server.kill();
      say('stopped the throwaway redis-server');
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
