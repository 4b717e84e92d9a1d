import { randomBytes } from 'node:crypto';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import { Queue } from '../src/index.js';

/**
 * The two systems under test behind one small interface, so that every case runs the same code for both.
 * Each system lives under a prefix of its own (`bench-<system>-<random>`), and cleanup deletes only the
 * keys under that prefix.
 */

export interface Payload {
  i: number;
  ts: number;
}

export interface Running {
  close(): Promise<void>;
}

export interface System {
  readonly name: 'sluice' | 'bullmq' | 'raw';
  send(payload: Payload): Promise<unknown>;
  /** one call for the whole chunk (sluice sendMany, BullMQ addBulk) */
  sendBulk(payloads: Payload[]): Promise<unknown>;
  /** starts a consumer; `onMessage` runs at handler start, the handler then resolves (completes) */
  consume(concurrency: number, onMessage: (payload: Payload) => void): Promise<Running>;
  /** messages completed and removed so far (read from Redis) */
  completed(): Promise<number>;
  /** deletes every key under this system's prefix */
  cleanup(): Promise<void>;
  close(): Promise<void>;
}

export const QUEUE_NAME = 'bench';

async function deleteMatching(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}

export function newPrefix(system: string): string {
  return `bench-${system}-${randomBytes(4).toString('hex')}`;
}

export class SluiceSystem implements System {
  readonly name = 'sluice' as const;
  private readonly redis: Redis;
  private readonly queue: Queue<Payload>;

  constructor(
    readonly url: string,
    readonly prefix = newPrefix('sluice'),
  ) {
    this.redis = new Redis(url);
    this.queue = new Queue<Payload>(QUEUE_NAME, { connection: this.redis, prefix });
  }

  send(payload: Payload): Promise<unknown> {
    return this.queue.send(payload);
  }

  sendBulk(payloads: Payload[]): Promise<unknown> {
    return this.queue.sendMany(payloads.map((payload) => ({ payload })));
  }

  async consume(concurrency: number, onMessage: (payload: Payload) => void): Promise<Running> {
    // The consumer gets a connection of its own, as a worker process would have.
    const redis = new Redis(this.url);
    const queue = new Queue<Payload>(QUEUE_NAME, { connection: redis, prefix: this.prefix });
    const consumer = queue.consume(
      async (message) => {
        onMessage(message.payload);
      },
      { concurrency },
    );
    return {
      async close() {
        await consumer.close();
        await queue.close();
        redis.disconnect();
      },
    };
  }

  async completed(): Promise<number> {
    return (await this.queue.getStats()).counters.acked;
  }

  cleanup(): Promise<void> {
    return deleteMatching(this.redis, `{${this.prefix}:*`);
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.redis.disconnect();
  }
}

export class BullSystem implements System {
  readonly name = 'bullmq' as const;
  private readonly redis: Redis;
  private readonly queue: BullQueue<Payload>;
  private completedCount = 0;

  constructor(
    readonly url: string,
    readonly prefix = newPrefix('bullmq'),
  ) {
    this.redis = new Redis(url, { maxRetriesPerRequest: null });
    this.queue = new BullQueue<Payload>(QUEUE_NAME, {
      connection: this.redis,
      prefix,
      defaultJobOptions: { removeOnComplete: true },
    });
  }

  send(payload: Payload): Promise<unknown> {
    return this.queue.add('job', payload);
  }

  sendBulk(payloads: Payload[]): Promise<unknown> {
    return this.queue.addBulk(payloads.map((data) => ({ name: 'job', data })));
  }

  async consume(concurrency: number, onMessage: (payload: Payload) => void): Promise<Running> {
    const redis = new Redis(this.url, { maxRetriesPerRequest: null });
    const worker = new BullWorker<Payload>(
      QUEUE_NAME,
      async (job) => {
        onMessage(job.data);
      },
      { connection: redis, prefix: this.prefix, concurrency },
    );
    // 'completed' fires after BullMQ's moveToFinished script returned: the job is done in Redis.
    worker.on('completed', () => {
      this.completedCount++;
    });
    await worker.waitUntilReady();
    return {
      async close() {
        await worker.close();
        redis.disconnect();
      },
    };
  }

  async completed(): Promise<number> {
    return this.completedCount;
  }

  cleanup(): Promise<void> {
    return deleteMatching(this.redis, `${this.prefix}:*`);
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.redis.disconnect();
  }
}

/**
 * Not a queue: the floor under the latency case. A send is an RPUSH of the payload; the consumer blocks in
 * BLPOP and, when woken, makes one more round trip (PING) before it calls the handler, as a queue that
 * claims messages atomically must (sluice: BLPOP wake-up, then the dequeue script). Its latency is what
 * the machine and Redis give any such queue.
 */
export class RawSystem implements System {
  readonly name = 'raw' as const;
  private readonly redis: Redis;
  private readonly key: string;

  constructor(
    readonly url: string,
    readonly prefix = newPrefix('raw'),
  ) {
    this.redis = new Redis(url);
    this.key = `${prefix}:list`;
  }

  send(payload: Payload): Promise<unknown> {
    return this.redis.rpush(this.key, JSON.stringify(payload));
  }

  sendBulk(payloads: Payload[]): Promise<unknown> {
    return this.redis.rpush(this.key, ...payloads.map((p) => JSON.stringify(p)));
  }

  async consume(_concurrency: number, onMessage: (payload: Payload) => void): Promise<Running> {
    const blocker = new Redis(this.url);
    const client = new Redis(this.url);
    let running = true;
    const loop = (async () => {
      while (running) {
        const popped = await blocker.blpop(this.key, 1).catch(() => null);
        if (!popped) continue;
        await client.ping();
        onMessage(JSON.parse(popped[1]) as Payload);
      }
    })();
    return {
      async close() {
        running = false;
        blocker.disconnect();
        await loop;
        client.disconnect();
      },
    };
  }

  async completed(): Promise<number> {
    return 0;
  }

  cleanup(): Promise<void> {
    return deleteMatching(this.redis, `${this.prefix}:*`);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

export function createSystem(name: 'sluice' | 'bullmq' | 'raw', url: string, prefix?: string): System {
  if (name === 'raw') return new RawSystem(url, prefix);
  return name === 'sluice' ? new SluiceSystem(url, prefix) : new BullSystem(url, prefix);
}
