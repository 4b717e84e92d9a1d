import { randomBytes } from 'node:crypto';
import BeeQueue from 'bee-queue';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import { Queue } from '../src/index.js';
import { deleteMatching } from './measure.js';

/**
 * The systems under test behind one small interface, so that every case runs the same code for each.
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
  readonly name: SystemKind;
  send(payload: Payload): Promise<unknown>;
  /** one call for the whole chunk (sluice sendMany, BullMQ addBulk, Bee-Queue saveAll) */
  sendBulk(payloads: Payload[]): Promise<unknown>;
  /** starts a consumer; `onMessage` runs at handler start, the handler then resolves (completes) */
  consume(concurrency: number, onMessage: (payload: Payload) => void): Promise<Running>;
  /**
   * messages completed and removed so far, counted once the completion is written in Redis (sluice: its
   * acked counter, read from Redis; BullMQ and Bee-Queue: their completion events, which fire after the
   * finishing script or MULTI returned)
   */
  completed(): Promise<number>;
  /** deletes every key under this system's prefix */
  cleanup(): Promise<void>;
  close(): Promise<void>;
}

export type SystemKind = 'sluice' | 'bullmq' | 'bee' | 'raw';

export const QUEUE_NAME = 'bench';

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
 * Bee-Queue 2.0, set up as its README advises for speed: no events (getEvents, sendEvents), no job store
 * (storeJobs) and completed jobs removed (removeOnSuccess), like the other two systems.
 */
export class BeeSystem implements System {
  readonly name = 'bee' as const;
  private readonly queue: BeeQueue<Payload>;
  private completedCount = 0;

  constructor(
    readonly url: string,
    readonly prefix = newPrefix('bee'),
  ) {
    this.queue = new BeeQueue<Payload>(QUEUE_NAME, { ...beeSettings(url, prefix), isWorker: false });
  }

  send(payload: Payload): Promise<unknown> {
    return this.queue.createJob(payload).save();
  }

  sendBulk(payloads: Payload[]): Promise<unknown> {
    return this.queue.saveAll(payloads.map((data) => this.queue.createJob(data)));
  }

  async consume(concurrency: number, onMessage: (payload: Payload) => void): Promise<Running> {
    const worker = new BeeQueue<Payload>(QUEUE_NAME, { ...beeSettings(this.url, this.prefix), isWorker: true });
    // 'succeeded' fires after the MULTI that removes the finished job returned: the job is done in Redis.
    worker.on('succeeded', () => {
      this.completedCount++;
    });
    worker.process(concurrency, async (job) => {
      onMessage(job.data);
    });
    await worker.ready();
    return {
      async close() {
        await worker.close();
      },
    };
  }

  async completed(): Promise<number> {
    return this.completedCount;
  }

  async cleanup(): Promise<void> {
    const redis = new Redis(this.url);
    try {
      await deleteMatching(redis, `${this.prefix}:*`);
    } finally {
      redis.disconnect();
    }
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

function beeSettings(url: string, prefix: string): BeeQueue.QueueSettings {
  return {
    prefix,
    redis: { url },
    getEvents: false,
    sendEvents: false,
    storeJobs: false,
    removeOnSuccess: true,
    activateDelayedJobs: false,
  };
}

/**
 * Not a queue: the floor under the latency case. A send is an RPUSH of the payload; the consumer blocks in
 * BLPOP and calls the handler as soon as it returns, then takes whatever queued up meanwhile with one LPOP
 * before it blocks again. That is the least any Redis queue can do per message (one push, one pop, no claim,
 * no ack), so no library can be faster than it: its latency is what the machine and Redis give.
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
    let running = true;
    const loop = (async () => {
      while (running) {
        const popped = await blocker.blpop(this.key, 1).catch(() => null);
        if (!popped) continue;
        onMessage(JSON.parse(popped[1]) as Payload);
        const more = await blocker.lpop(this.key, 1000).catch(() => null);
        for (const item of more ?? []) onMessage(JSON.parse(item) as Payload);
      }
    })();
    return {
      async close() {
        running = false;
        blocker.disconnect();
        await loop;
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

export function createSystem(name: SystemKind, url: string, prefix?: string): System {
  switch (name) {
    case 'raw':
      return new RawSystem(url, prefix);
    case 'bee':
      return new BeeSystem(url, prefix);
    case 'bullmq':
      return new BullSystem(url, prefix);
    case 'sluice':
      return new SluiceSystem(url, prefix);
  }
}
