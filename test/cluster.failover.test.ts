import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { ConnectionError, DurabilityError, EventBus, Locks, Queue, Scheduler, SluiceError } from '../src/index.js';
import { busBaseKey, lockKeys, queueBaseKey, schedulerKeys } from '../src/keys.js';
import { waitFor } from './helpers.js';
import { startCluster, type ClusterNode } from './servers.js';

/**
 * Failover on a real Redis Cluster of three masters and three replicas on 127.0.0.1 (cluster-node-timeout
 * 1000 ms): the master that owns a queue's slot is SIGKILLed while a producer sends and a consumer consumes,
 * its replica is promoted by the cluster, and the consumer, the producer, a bus subscriber, a lock and a
 * scheduler job each work again on their own; the time each took is measured and printed. Then the loss
 * window, made deterministic: with the replica stopped (SIGSTOP) it cannot have what the master acknowledges
 * next, so after the master is killed and the stale replica promoted those sends are gone; with
 * `durability: { replicas: 1 }` the same sends were never acknowledged (DurabilityError) and nothing
 * acknowledged is lost.
 */

const PREFIX = 'failover';
/** ports of nodes stopped with SIGSTOP (they answer nothing) */
const stopped = new Set<number>();
let servers: Awaited<ReturnType<typeof startCluster>> | undefined;
let cluster: Cluster;

/** The port of the master serving a key's slot, as the cluster itself says (asked of a live node). */
function ownerOf(key: string): number {
  const live = servers!.nodes.find(
    (node) => node.process.exitCode === null && node.process.signalCode === null && !stopped.has(node.port),
  )!;
  const cli = (...args: string[]) =>
    execFileSync('redis-cli', ['-p', String(live.port), ...args], { encoding: 'utf8' }).trim();
  const slot = Number(cli('cluster', 'keyslot', key));
  for (const line of cli('cluster', 'nodes').split('\n')) {
    const [, address, flags, , , , , state, ...ranges] = line.split(' ');
    if (!flags?.includes('master') || flags.includes('fail') || state !== 'connected') continue;
    for (const range of ranges) {
      const [from, to = from] = range.split('-').map(Number);
      if (slot >= from! && slot <= to!) return Number(address!.split(':')[1]!.split('@')[0]);
    }
  }
  throw new Error(`no live master serves slot ${slot}`);
}

/**
 * Waits until the node asked says the master at `expected` serves the key's slot: after a failover the nodes'
 * views converge by gossip, and a node may for a moment list the slot's old master as failed and no other.
 */
async function expectOwner(key: string, expected: number): Promise<void> {
  await waitFor(
    () => {
      try {
        return ownerOf(key) === expected;
      } catch {
        return false;
      }
    },
    `the master on port ${expected} to serve ${key}`,
    30_000,
    100,
  );
}

/** The replica of the master at `port` (its process, to stop it). */
function replicaOf(port: number): ClusterNode {
  for (const node of servers!.nodes) {
    if (node.process.exitCode !== null || node.process.signalCode !== null || node.port === port) continue;
    const info = execFileSync('redis-cli', ['-p', String(node.port), 'info', 'replication'], { encoding: 'utf8' });
    if (info.includes(`master_port:${port}`)) return node;
  }
  throw new Error(`the master on port ${port} has no replica`);
}

function nodeAt(port: number): ClusterNode {
  return servers!.nodes.find((node) => node.port === port)!;
}

/** SIGKILLs a node and waits for its process to be gone. */
async function kill(node: ClusterNode): Promise<void> {
  const exited = once(node.process, 'exit');
  node.process.kill('SIGKILL');
  await exited;
}

/** A name `<stem>-<n>` whose key lands on the master at `port`. */
function nameOn(port: number, stem: string, keyOf: (name: string) => string): string {
  for (let n = 0; n < 1000; n++) if (ownerOf(keyOf(`${stem}-${n}`)) === port) return `${stem}-${n}`;
  throw new Error(`no ${stem} name lands on port ${port}`);
}

beforeAll(async () => {
  servers = await startCluster({ replicas: 1 });
  cluster = new Cluster([{ host: '127.0.0.1', port: servers.ports[0]! }]);
  cluster.on('error', () => undefined);
  await cluster.ping();
}, 60_000);

afterAll(async () => {
  // (SIGKILL ends a stopped process too; a replica left stopped by a failed test is resumed first all the same.)
  for (const node of servers?.nodes ?? []) if (stopped.has(node.port)) node.process.kill('SIGCONT');
  cluster?.disconnect();
  await servers?.stop();
});

describe('Redis Cluster failover (3 masters, 3 replicas)', () => {
  it('a master killed mid-load: its replica takes over, and every component resumes on its own', async () => {
    /** where the test is, for the report of a test that timed out */
    let step = 'setup';
    let producing = true;
    // A short visibility timeout: a delivery whose ack went to the dead master comes back within the drain.
    const queue = new Queue<{ n: number }>('orders', { connection: cluster, prefix: PREFIX, visibilityMs: 5_000 });
    const master = ownerOf(queue.baseKey);
    const bus = new EventBus(
      nameOn(master, 'events', (name) => busBaseKey(PREFIX, name)),
      { connection: cluster, prefix: PREFIX, visibilityMs: 5_000 },
    );
    expect(ownerOf(bus.baseKey)).toBe(master);
    const lockName = nameOn(master, 'resource', (name) => lockKeys(PREFIX, name).holder);
    const schedulerPrefix = nameOn(master, 'jobs', (prefix) => schedulerKeys(prefix).jobs);
    const locks = new Locks({ connection: cluster, prefix: PREFIX });
    const scheduler = new Scheduler({ connection: cluster, prefix: schedulerPrefix, pollMs: 50 });
    scheduler.on('error', () => undefined);
    const runs: number[] = [];
    scheduler.addJob({ name: 'tick', every: 100, lockTtlMs: 2_000, handler: () => void runs.push(Date.now()) });

    /** id -> [send started, send resolved], of every send that resolved (acknowledged) */
    const acked = new Map<string, [number, number]>();
    const delivered = new Map<string, number>();
    let failedSends = 0;
    /** every error a sluice call or event gave during the run: each must be a SluiceError with a code */
    const seenErrors: unknown[] = [];
    const consumer = queue.consume((m) => void delivered.set(m.id, Date.now()), { concurrency: 4 });
    consumer.on('error', (error) => void seenErrors.push(error));
    await bus.subscribe('audit', 'order.#');
    const published = new Map<string, [number, number]>();
    const handled = new Map<string, number>();
    const subscriber = bus.consume('audit', (event) => void handled.set(event.id, Date.now()));
    subscriber.on('error', (error) => void seenErrors.push(error));
    scheduler.start();
    // A failed test stops its producer and consumers, so that the run ends (the nodes are gone after it).
    onTestFailed(() => {
      const pending = current === null ? 'none' : `${current.what} pending for ${Date.now() - current.since} ms`;
      console.log(
        `the failover test failed at step: ${step}; the producer's call: ${pending}; acknowledged ` +
          `${acked.size}, delivered ${delivered.size}, published ${published.size}, handled ${handled.size}, ` +
          `refused ${failedSends}, scheduler runs ${runs.length}; the cluster client's status: ${cluster.status}`,
      );
      producing = false;
      void Promise.allSettled([consumer.close({ graceMs: 0 }), subscriber.close({ graceMs: 0 }), scheduler.close()]);
    });

    let seq = 0;
    let current: { what: string; since: number } | null = null;
    const produce = async () => {
      while (producing) {
        const n = seq++;
        const startedAt = Date.now();
        current = { what: `send m-${n}`, since: startedAt };
        try {
          acked.set(await queue.send({ n }, { id: `m-${n}` }), [startedAt, Date.now()]);
        } catch (error) {
          seenErrors.push(error);
          failedSends++;
        }
        const publishedAt = Date.now();
        current = { what: `publish e-${n}`, since: publishedAt };
        try {
          const [result] = await bus.publishMany([{ type: 'order.placed', data: { n }, id: `e-${n}` }]);
          published.set(result!.id, [publishedAt, Date.now()]);
        } catch (error) {
          seenErrors.push(error); // refused: not acknowledged, not counted
        }
      }
    };
    const producer = produce();
    step = 'steady load';
    await waitFor(() => delivered.size >= 200 && handled.size >= 200 && runs.length >= 3, 'steady load');

    await locks.release((await locks.acquire(lockName, { ttlMs: 5_000 }))!);
    const replica = replicaOf(master).port;
    const killedAt = Date.now();
    step = 'kill';
    await kill(nodeAt(master));
    // The lock is tried every 20 ms from the kill on, until an acquire succeeds.
    const lockResumed = waitFor(
      async () => {
        try {
          const lock = await locks.acquire(lockName, { ttlMs: 5_000 });
          if (lock === null) return null;
          await locks.release(lock);
          return Date.now() - killedAt;
        } catch (error) {
          seenErrors.push(error);
          await new Promise((resolve) => setTimeout(resolve, 20));
          return null;
        }
      },
      'the lock to be acquired again',
      60_000,
    );
    // Resumed: a send made after the kill acknowledged (by the new master) and delivered; an event likewise.
    const since = (sends: Map<string, [number, number]>, seen: Map<string, number>) =>
      [...sends].filter(([id, [startedAt]]) => startedAt > killedAt && seen.has(id));
    step = 'resume of producer, consumer, publisher, subscriber';
    const sentSince = (sends: Map<string, [number, number]>) => [...sends.values()].some(([at]) => at > killedAt);
    await waitFor(() => sentSince(acked), 'a send made after the kill to be acknowledged', 60_000);
    await waitFor(() => since(acked, delivered).length > 0, 'such a send to be delivered', 60_000);
    await waitFor(() => sentSince(published), 'a publish made after the kill to be acknowledged', 60_000);
    await waitFor(() => since(published, handled).length > 0, 'such an event to be handled', 60_000);
    const producerResumedMs = Math.min(...since(acked, delivered).map(([, [, at]]) => at)) - killedAt;
    const consumerResumedMs = Math.min(...since(acked, delivered).map(([id]) => delivered.get(id)!)) - killedAt;
    const publisherResumedMs = Math.min(...since(published, handled).map(([, [, at]]) => at)) - killedAt;
    const subscriberResumedMs = Math.min(...since(published, handled).map(([id]) => handled.get(id)!)) - killedAt;
    const longestSendMs = Math.max(...[...acked.values()].map(([from, to]) => to - from));
    step = 'scheduler resume';
    await waitFor(() => runs.some((t) => t > killedAt + 100), 'a scheduler run after the failover', 60_000);
    const schedulerResumedMs = Math.min(...runs.filter((t) => t > killedAt + 100)) - killedAt;
    step = 'lock resume';
    const lockResumedMs = await lockResumed;
    await expectOwner(queue.baseKey, replica);

    // A few hundred more after the resume, then the accounting: every acknowledged send delivered or still queued.
    const resumedAt = acked.size;
    step = 'more sends';
    await waitFor(() => acked.size >= resumedAt + 200, 'more sends after the failover', 60_000);
    producing = false;
    step = 'producer stop';
    await producer;
    step = 'drain';
    await waitFor(
      async () => {
        const stats = await queue.getStats();
        const waiting = stats.ready.normal + stats.inflight + stats.delayed + stats.partitionBacklog;
        const audit = await bus.subscriberQueue('audit').getStats();
        const backlog = audit.ready.normal + audit.inflight + audit.delayed + audit.partitionBacklog;
        return waiting === 0 && backlog === 0;
      },
      'the queue and the subscriber queue to drain',
      60_000,
    );
    const lost = [...acked.keys()].filter((id) => !delivered.has(id));
    const eventsLost = [...published.keys()].filter((id) => !handled.has(id));
    console.log(
      `failover resume (ms after SIGKILL): producer ${producerResumedMs}, consumer ${consumerResumedMs}, ` +
        `publisher ${publisherResumedMs}, subscriber ${subscriberResumedMs}, scheduler ${schedulerResumedMs}, ` +
        `lock ${lockResumedMs}; longest acknowledged send ${longestSendMs} ms; sends acknowledged ${acked.size}, refused ${failedSends}, acknowledged and lost ` +
        `${lost.length}; events acknowledged ${published.size}, lost ${eventsLost.length}`,
    );
    for (const ms of [producerResumedMs, consumerResumedMs, subscriberResumedMs, schedulerResumedMs, lockResumedMs])
      expect(ms).toBeLessThan(30_000);
    // What the failover made callers see are SluiceErrors with a code (a connection or failover error, a stale
    // receipt), never the client's own redirection errors.
    const uncoded = seenErrors.filter((error) => !(error instanceof SluiceError));
    expect(uncoded.map((error) => String(error))).toEqual([]);
    console.log(
      `errors seen during the failover: ${JSON.stringify(
        Object.entries(
          seenErrors.reduce<Record<string, number>>((counts, error) => {
            const key = `${(error as SluiceError).code}${error instanceof ConnectionError ? `/${error.failure}` : ''}`;
            counts[key] = (counts[key] ?? 0) + 1;
            return counts;
          }, {}),
        ),
      )}`,
    );

    step = 'close';
    await Promise.all([consumer.close(), subscriber.close(), scheduler.close()]);
    await Promise.all([queue.close(), bus.close(), locks.close()]);
  }, 180_000);
  it('the loss window: without durability acknowledged sends are lost to a stale replica; with it none is', async () => {
    // A master that still has its replica (the first test's master is gone), and a queue and a bus on it.
    const master = servers!.nodes.find((node) => {
      if (node.process.exitCode !== null || node.process.signalCode !== null) return false;
      try {
        replicaOf(node.port);
        return true;
      } catch {
        return false;
      }
    })!.port;
    const replica = replicaOf(master);
    const name = nameOn(master, 'payments', (queue) => queueBaseKey(PREFIX, queue));
    const busName = nameOn(master, 'ledger', (bus) => busBaseKey(PREFIX, bus));
    const durability = { replicas: 1, timeoutMs: 300 };
    const plain = new Queue<{ n: number }>(name, { connection: cluster, prefix: PREFIX });
    const durable = new Queue<{ n: number }>(name, { connection: cluster, prefix: PREFIX, durability });
    const plainBus = new EventBus(busName, { connection: cluster, prefix: PREFIX });
    const durableBus = new EventBus(busName, { connection: cluster, prefix: PREFIX, durability });
    await plainBus.subscribe('books', 'payment.#');

    // In sync: durable sends and publishes resolve (WAIT saw the replica).
    expect(await durable.send({ n: -1 }, { id: 'in-sync' })).toBe('in-sync');
    expect(await durable.sendMany([{ payload: { n: -2 }, id: 'in-sync-many' }])).toEqual(['in-sync-many']);
    expect((await durableBus.publish('payment.made', { n: -1 }, { id: 'in-sync-event' })).delivered).toBe(1);

    // The replica stops replicating: what the master acknowledges from now on exists only on the master
    // (Stopped, then cut off: the master drops its link, so nothing written from now on is even in the
    // replica's socket buffer, and the stopped replica cannot reconnect.)
    replica.process.kill('SIGSTOP');
    stopped.add(replica.port);
    execFileSync('redis-cli', ['-p', String(master), 'client', 'kill', 'type', 'replica']);
    const count = 100;
    const plainIds = await Promise.all(
      Array.from({ length: count }, (_, n) => plain.send({ n }, { id: `plain-${n}` })),
    );
    const plainEvents = await plainBus.publishMany(
      Array.from({ length: 10 }, (_, n) => ({ type: 'payment.made', data: { n }, id: `plain-event-${n}` })),
    );
    // The same with durability: the master writes them, WAIT times out, none is acknowledged. Sends made in
    // one tick are one script call and share one WAIT, hence one error. WAIT went to the queue's master: a
    // WAIT on any other node's connection would have counted that node's own (running) replica and resolved.
    const startedAt = Date.now();
    const durableSends = await Promise.allSettled(
      Array.from({ length: count }, (_, n) => durable.send({ n }, { id: `durable-${n}` })),
    );
    const waitedMs = Date.now() - startedAt;
    const errors = durableSends.map((outcome) => (outcome.status === 'rejected' ? outcome.reason : outcome.value));
    expect(errors.every((error) => error instanceof DurabilityError)).toBe(true);
    expect(new Set(errors).size).toBe(1);
    const notDurable = errors[0] as DurabilityError;
    expect(notDurable).toMatchObject({ code: 'NOT_DURABLE', replicas: 1, acknowledged: 0, timeoutMs: 300 });
    expect(notDurable.ids).toEqual(Array.from({ length: count }, (_, n) => `durable-${n}`));
    expect(waitedMs).toBeGreaterThanOrEqual(290);
    await expect(durable.sendMany([{ payload: { n: 0 }, id: 'durable-many' }])).rejects.toBeInstanceOf(DurabilityError);
    await expect(
      durableBus.publishMany([{ type: 'payment.made', data: { n: 0 }, id: 'durable-event' }]),
    ).rejects.toMatchObject({ code: 'NOT_DURABLE', ids: ['durable-event'] });
    // The master has them all.
    expect((await plain.getStats()).ready.normal).toBe(2 * count + 3);

    // The master dies; the stale replica resumes and is promoted.
    const killedAt = Date.now();
    await kill(nodeAt(master));
    replica.process.kill('SIGCONT');
    stopped.delete(replica.port);
    await waitFor(
      async () => {
        try {
          return (await plain.send({ n: 0 }, { id: 'after-failover' })) === 'after-failover';
        } catch {
          return false;
        }
      },
      'sends to work again on the promoted replica',
      60_000,
    );
    const resumedMs = Date.now() - killedAt;
    await expectOwner(plain.baseKey, replica.port);

    // The accounting: an acknowledged send is delivered or still in the queue, else lost.
    const present = async (id: string) => (await plain.getMessage(id)) !== null;
    const lostPlain: string[] = [];
    for (const id of plainIds) if (!(await present(id))) lostPlain.push(id);
    const history = new Set((await plainBus.history('payment.made')).map((entry) => entry.event.id));
    const lostEvents = plainEvents.filter((result) => !history.has(result.id)).map((result) => result.id);
    const ackedDurable = durableSends.filter((outcome) => outcome.status === 'fulfilled').length;
    expect(await present('in-sync')).toBe(true);
    expect(await present('in-sync-many')).toBe(true);
    expect(history.has('in-sync-event')).toBe(true);
    console.log(
      `loss window (replica stopped, master killed, stale replica promoted in ${resumedMs} ms): without ` +
        `durability ${lostPlain.length} of ${count} acknowledged sends and ${lostEvents.length} of ` +
        `${plainEvents.length} acknowledged events lost; with durability ${ackedDurable} of ${count} acknowledged ` +
        `(each rejected with NOT_DURABLE after ${waitedMs} ms), so 0 acknowledged lost`,
    );
    expect(lostPlain).toHaveLength(count);
    expect(lostEvents).toHaveLength(plainEvents.length);
    expect(ackedDurable).toBe(0);

    // The dead master comes back as the new master's replica; the refused sends, sent again with durability
    // under their ids, are now acknowledged, and sending them once more writes nothing twice.
    await servers!.restart(nodeAt(master));
    const patient = new Queue<{ n: number }>(name, {
      connection: cluster,
      prefix: PREFIX,
      durability: { replicas: 1, timeoutMs: 10_000 },
    });
    await waitFor(
      async () => {
        try {
          return (await patient.send({ n: 0 }, { id: 'durable-again' })) === 'durable-again';
        } catch {
          return false;
        }
      },
      'the restarted node to replicate the new master',
      60_000,
    );
    const resend = () => Promise.all(notDurable.ids.map((id, n) => patient.send({ n }, { id })));
    expect(await resend()).toEqual(notDurable.ids);
    expect(await resend()).toEqual(notDurable.ids);
    expect((await plain.getStats()).ready.normal).toBe(2 + 1 + 1 + count);

    await Promise.all([plain.close(), durable.close(), patient.close(), plainBus.close(), durableBus.close()]);
  }, 120_000);
});
