// What each script costs inside Redis, per call and per message: µs of Redis CPU from INFO commandstats
// (usec of EVALSHA over its calls) on a private redis-server started for the run, so that nothing else
// is counted. The figures are steadier than wall-clock ones: they do not include the network or Node.
//   npm run bench:scripts        (CALLS=5000)
import { EventBus, Locks, Queue } from '../src/index.js';
import { scriptTime, startPrivateRedis } from './measure.js';

const CALLS = Number(process.env.CALLS ?? '5000');

const { redis, stop } = await startPrivateRedis();

interface Cost {
  label: string;
  /** µs per script call */
  perCall: number;
  /** µs per message, for the batch cases */
  perMessage?: number;
  calls: number;
}

const costs: Cost[] = [];

/** Runs `work` (after `prepare`, which is not counted) and records the scripts' µs it cost in Redis. */
async function cost(
  label: string,
  work: () => Promise<unknown>,
  options: { prepare?: () => Promise<unknown>; messages?: number; rounds?: number } = {},
) {
  const rounds = options.rounds ?? CALLS;
  let calls = 0;
  let usec = 0;
  for (let round = 0; round < rounds; round++) {
    await options.prepare?.();
    const before = await scriptTime(redis);
    await work();
    const after = await scriptTime(redis);
    calls += after.calls - before.calls;
    usec += after.usec - before.usec;
  }
  const messages = options.messages ? options.messages * rounds : undefined;
  costs.push({ label, perCall: usec / calls, calls, ...(messages ? { perMessage: usec / messages } : {}) });
  console.error(
    `  ${label}: ${(usec / calls).toFixed(2)} µs/call${messages ? `, ${(usec / messages).toFixed(2)} µs/message` : ''}`,
  );
}

try {
  const sha = (await redis.script('LOAD', 'return 0')) as string;
  const queue = new Queue<{ n: number }>('cost', { connection: redis, prefix: 'cost' });
  const bus = new EventBus('cost', { connection: redis, prefix: 'cost', historyLimit: 0 });
  const locks = new Locks({ connection: redis, prefix: 'cost' });
  // Load every script first.
  await queue.send({ n: -1 });
  const [warm] = await queue.dequeue();
  await queue.ack(warm!);
  await queue.dequeue();

  await cost('empty script (`return 0`)', () => redis.evalsha(sha, 0));
  await cost('send, one message', () => queue.send({ n: 1 }));
  await redis.del(...(await redis.keys('{cost:cost}*')));
  await cost('dequeue, empty queue', () => queue.dequeue());
  let taken: Awaited<ReturnType<typeof queue.dequeue>> = [];
  await cost('dequeue, one message', async () => (taken = await queue.dequeue()), {
    prepare: () => queue.send({ n: 1 }),
  });
  await cost('ack, one message', () => queue.ack(taken[0]!), {
    prepare: async () => {
      await queue.send({ n: 1 });
      taken = await queue.dequeue();
    },
  });
  await cost('nack (retry), one message', () => queue.nack(taken[0]!, { error: 'x', delayMs: 60_000 }), {
    prepare: async () => {
      await queue.send({ n: 1 });
      taken = await queue.dequeue();
    },
  });
  await redis.del(...(await redis.keys('{cost:cost}*')));
  const batch = Array.from({ length: 100 }, (_, n) => ({ payload: { n } }));
  await cost('sendMany, 100 messages', () => queue.sendMany(batch), { messages: 100, rounds: CALLS / 50 });
  await redis.del(...(await redis.keys('{cost:cost}*')));
  await cost(
    'dequeue 100 + ack 100',
    async () => {
      const got = await queue.dequeue({ count: 100 });
      await queue.ackMany(got);
    },
    { prepare: () => queue.sendMany(batch), messages: 100, rounds: CALLS / 50 },
  );
  await bus.subscribe('one', 'cost.event');
  await cost('publish, 1 subscriber', () => bus.publish('cost.event', { n: 1 }));
  await cost('lock acquire + release', async () => {
    const lock = await locks.acquire('cost', { ttlMs: 10_000 });
    await locks.release(lock!);
  });
  await queue.close();
  await bus.close();
  await locks.close();

  const { redis_version } = Object.fromEntries(
    (await redis.info('server')).split('\r\n').map((line) => line.split(':') as [string, string]),
  );
  console.log(`Redis ${redis_version}, private server, ${CALLS} calls per case (batches: ${CALLS / 50} rounds):`);
  console.log('');
  console.log('| script call | µs per call in Redis | µs per message |');
  console.log('|---|---:|---:|');
  for (const c of costs) {
    console.log(
      `| ${c.label} | ${c.perCall.toFixed(2)} | ${c.perMessage === undefined ? '' : c.perMessage.toFixed(2)} |`,
    );
  }
} finally {
  stop();
}
