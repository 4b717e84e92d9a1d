import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/index.js';
import { snapshot } from './inspect.js';
import { consumerIsBlocked, useRedis, waitFor } from './helpers.js';

const env = useRedis();

/** Every key of a queue, DUMPed: what a read-only call must leave exactly as it was. */
async function dumpQueue(baseKey: string): Promise<Map<string, string | null>> {
  const pattern = `${baseKey.replace(/[{}[\]*?\\]/g, (c) => `\\${c}`)}*`;
  const dumps = new Map<string, string | null>();
  let cursor = '0';
  do {
    const [next, keys] = await env.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) dumps.set(key, (await env.redis.dumpBuffer(key))?.toString('base64') ?? null);
  } while (cursor !== '0');
  return new Map([...dumps].sort(([a], [b]) => a.localeCompare(b)));
}

const ids = (result: { matches: { id: string }[] }) => result.matches.map((m) => m.id);

describe('queue.search: a bounded, read-only search of one state', () => {
  it('finds ready messages by type, partition key and text, in dequeue order across priorities', async () => {
    const queue = env.queue<{ customer: string; total?: number }>('orders');
    await queue.send({ customer: 'ann', total: 5 }, { id: 'low-ann', type: 'order.created', priority: 'LOW' });
    await queue.send({ customer: 'bob' }, { id: 'normal-bob', type: 'order.paid' });
    await queue.send({ customer: 'ann' }, { id: 'normal-ann', type: 'order.paid', partitionKey: 'acct-1' });
    // Behind acct-1's head: in no state search reads.
    await queue.send({ customer: 'ann' }, { id: 'backlog-ann', type: 'order.paid', partitionKey: 'acct-1' });
    await queue.send({ customer: 'ann' }, { id: 'critical-ann', type: 'order.created', priority: 'CRITICAL' });
    await queue.send({ customer: 'cat' }, { id: 'high-cat', type: 'order.created', priority: 'HIGH' });
    // Its headers hold the text, its payload does not: text is looked for in the payload only.
    await queue.send({ customer: 'dan' }, { id: 'headers-dan', headers: { note: 'ann' } });

    const byType = await queue.search({ type: 'order.created' });
    expect(ids(byType)).toEqual(['critical-ann', 'high-cat', 'low-ann']);
    expect(byType).toMatchObject({ cursor: null, scanned: 6 });
    expect(byType.matches[0]).toEqual({
      id: 'critical-ann',
      state: 'ready',
      message: expect.objectContaining({ id: 'critical-ann', type: 'order.created', payload: { customer: 'ann' } }),
      raw: expect.stringContaining('critical-ann|4|'),
      lastError: null,
      at: null,
    });
    // The same shape as peek's.
    const peeked = await queue.peek('ready', { limit: 1 });
    expect(byType.matches[0]).toEqual(peeked[0]);

    expect(ids(await queue.search({ partitionKey: 'acct-1' }))).toEqual(['normal-ann']);
    expect(ids(await queue.search({ text: '"customer":"ann"' }))).toEqual(['critical-ann', 'normal-ann', 'low-ann']);
    expect(ids(await queue.search({ text: 'ann', type: 'order.paid' }))).toEqual(['normal-ann']);
    expect(ids(await queue.search({ text: 'ann', type: 'order.created', partitionKey: 'acct-1' }))).toEqual([]);
    // '' is the type of a message sent without one.
    expect(ids(await queue.search({ type: '' }))).toEqual(['headers-dan']);
    // Plain text, not a Lua pattern: '.' and '%' are themselves.
    expect(ids(await queue.search({ text: 'a.n' }))).toEqual([]);
    expect(ids(await queue.search({ text: '%a' }))).toEqual([]);
  });

  it('searches the delayed, in-flight and dead states, with their times and last errors', async () => {
    const queue = env.queue<{ customer: string }>('states');
    await queue.send({ customer: 'ann' }, { id: 'fly-ann', type: 'a' });
    await queue.send({ customer: 'bob' }, { id: 'fly-bob', type: 'a' });
    await queue.send({ customer: 'ann' }, { id: 'die-ann', type: 'b' });
    await queue.send({ customer: 'ann' }, { id: 'retry-ann', type: 'b' });
    await queue.send({ customer: 'ann' }, { id: 'later-ann', type: 'a', delayMs: 60_000 });
    await queue.send({ customer: 'bob' }, { id: 'later-bob', type: 'a', delayMs: 30_000 });
    const deliveries = await queue.dequeue({ count: 4, visibilityMs: 60_000 });
    expect(deliveries.map((d) => d.id)).toEqual(['fly-ann', 'fly-bob', 'die-ann', 'retry-ann']);
    await queue.nack(deliveries[2]!, { retry: false, error: 'bad ann' });
    await queue.nack(deliveries[3]!, { error: 'try again', delayMs: 90_000 });

    const delayed = await queue.search({ text: 'ann' }, { state: 'delayed' });
    expect(ids(delayed)).toEqual(['later-ann', 'retry-ann']);
    expect(delayed.matches[0]!.at).toBeGreaterThan(Date.now() + 30_000);
    expect(delayed.matches[1]).toMatchObject({ state: 'delayed', lastError: 'try again', message: { attempts: 1 } });
    expect(ids(await queue.search({ type: 'a' }, { state: 'delayed' }))).toEqual(['later-bob', 'later-ann']);

    const inflight = await queue.search({ type: 'a' }, { state: 'inflight' });
    expect(ids(inflight)).toEqual(['fly-ann', 'fly-bob']);
    expect(inflight.matches[0]).toMatchObject({ state: 'inflight', message: { payload: { customer: 'ann' } } });
    expect(inflight.matches[0]!.at).toBeGreaterThan(Date.now() + 30_000);
    expect(ids(await queue.search({ text: 'bob' }, { state: 'inflight' }))).toEqual(['fly-bob']);

    const dead = await queue.search({ text: 'ann' }, { state: 'dead' });
    expect(dead).toMatchObject({ cursor: null, scanned: 1 });
    expect(dead.matches).toEqual(await queue.peek('dead'));
    expect(dead.matches[0]).toMatchObject({ id: 'die-ann', state: 'dead', lastError: 'bad ann' });
    expect(ids(await queue.search({ type: 'a' }, { state: 'dead' }))).toEqual([]);
    expect(await queue.search({ type: 'a' }, { state: 'ready' })).toEqual({ matches: [], cursor: null, scanned: 0 });
  });

  it('pages with cursor and scanLimit: every match once, in order, ending with cursor null', async () => {
    const queue = env.queue<{ n: number; tag: string }>('paging');
    const items = Array.from({ length: 40 }, (_, n) => ({
      payload: { n, tag: n % 3 === 0 ? 'hit' : 'miss' },
      id: `m${n}`,
      priority: (['LOW', 'NORMAL', 'HIGH', 'CRITICAL'] as const)[n % 4],
    }));
    await queue.sendMany(items);
    const expected = (await queue.peek('ready', { limit: 100 }))
      .filter((m) => (m.message!.payload as { tag: string }).tag === 'hit')
      .map((m) => m.id);
    expect(expected).toHaveLength(14);

    for (const scanLimit of [1, 7, 10, 40, 1000]) {
      const found: string[] = [];
      let cursor: number | null = 0;
      let scanned = 0;
      let calls = 0;
      while (cursor !== null) {
        const page: Awaited<ReturnType<typeof queue.search>> = await queue.search(
          { text: '"tag":"hit"' },
          { cursor, scanLimit },
        );
        expect(page.scanned).toBeLessThanOrEqual(scanLimit);
        found.push(...ids(page));
        scanned += page.scanned;
        cursor = page.cursor;
        calls++;
      }
      expect(found, `scanLimit ${scanLimit}`).toEqual(expected);
      expect(scanned).toBe(40);
      expect(calls).toBe(Math.ceil(40 / scanLimit));
    }

    // The delayed set pages the same way.
    await queue.sendMany(items.map((item) => ({ ...item, id: `d${item.id}`, delayMs: 60_000 + item.payload.n })));
    const delayed: string[] = [];
    let cursor: number | null = 0;
    while (cursor !== null) {
      const page: Awaited<ReturnType<typeof queue.search>> = await queue.search(
        { text: 'hit' },
        { state: 'delayed', cursor, scanLimit: 6 },
      );
      delayed.push(...ids(page));
      cursor = page.cursor;
    }
    expect(delayed).toEqual(items.filter((item) => item.payload.tag === 'hit').map((item) => `d${item.id}`));
  });

  it('reads a large state in pieces: one call of scanLimit 10,000 crosses the 1,000-entry chunks', async () => {
    const queue = env.queue<{ n: number }>('large');
    const items = (delayMs?: number) =>
      Array.from({ length: 2500 }, (_, n) => ({ payload: { n }, type: n % 600 === 599 ? 'rare' : 'common', delayMs }));
    for (let n = 0; n < 2500; n += 1000) await queue.sendMany(items().slice(n, n + 1000));
    for (let n = 0; n < 2500; n += 1000) await queue.sendMany(items(60_000).slice(n, n + 1000));
    for (const state of ['ready', 'delayed'] as const) {
      const all = await queue.search({ type: 'rare' }, { state, scanLimit: 10_000 });
      expect(all.matches.map((m) => m.message!.payload.n)).toEqual([599, 1199, 1799, 2399]);
      expect(all).toMatchObject({ cursor: null, scanned: 2500 });
      const first = await queue.search({ type: 'rare' }, { state });
      expect(first).toMatchObject({ cursor: 1000, scanned: 1000 });
      expect(first.matches).toHaveLength(1);
    }
  });

  it('stops early at limit, and the cursor goes on after the last match', async () => {
    const queue = env.queue<{ n: number }>('limit');
    await queue.sendMany(Array.from({ length: 20 }, (_, n) => ({ payload: { n }, id: `m${n}`, type: 'even-or-odd' })));
    const first = await queue.search({ type: 'even-or-odd' }, { limit: 3 });
    expect(first).toMatchObject({ cursor: 3, scanned: 3 });
    expect(ids(first)).toEqual(['m0', 'm1', 'm2']);
    const second = await queue.search({ text: '"n":1' }, { cursor: first.cursor!, limit: 2 });
    // From m3 on, '"n":1' is in m10..m19: the second match is m11, at position 11.
    expect(ids(second)).toEqual(['m10', 'm11']);
    expect(second).toMatchObject({ cursor: 12, scanned: 9 });
    const rest = await queue.search({ text: '"n":1' }, { cursor: second.cursor!, limit: 1000 });
    expect(ids(rest)).toEqual(['m12', 'm13', 'm14', 'm15', 'm16', 'm17', 'm18', 'm19']);
    expect(rest).toMatchObject({ cursor: null, scanned: 8 });
    // A cursor past the end reads nothing and says so.
    expect(await queue.search({ type: 'x' }, { cursor: 500 })).toEqual({ matches: [], cursor: null, scanned: 0 });
  });

  it('changes nothing in Redis', async () => {
    const queue = env.queue<{ n: number }>('read-only');
    await queue.sendMany([
      { payload: { n: 1 }, type: 't' },
      { payload: { n: 2 }, type: 't', priority: 'HIGH', partitionKey: 'p' },
      { payload: { n: 3 }, type: 't', partitionKey: 'p' },
      { payload: { n: 4 }, type: 't', delayMs: 60_000 },
      { payload: { n: 5 }, type: 't' },
    ]);
    const [delivery] = await queue.dequeue({ visibilityMs: 60_000 });
    await queue.nack(delivery!, { retry: false });
    await queue.dequeue({ visibilityMs: 60_000 });
    const stats = await queue.getStats();
    const before = await dumpQueue(queue.baseKey);
    expect(before.size).toBeGreaterThan(5);
    for (const state of ['ready', 'delayed', 'inflight', 'dead'] as const) {
      await queue.search({ type: 't' }, { state });
      await queue.search({ text: '"n"', partitionKey: 'p' }, { state, scanLimit: 1, limit: 1 });
    }
    expect(await dumpQueue(queue.baseKey)).toEqual(before);
    // oldestReadyAgeMs grows with the clock; everything else must be as it was.
    expect({ ...(await queue.getStats()), oldestReadyAgeMs: 0 }).toEqual({ ...stats, oldestReadyAgeMs: 0 });
  });

  it('refuses a filter or options it cannot use, naming the field and the fix', async () => {
    const queue = env.queue('invalid');
    const refused = async (call: () => Promise<unknown>, field: string, message: RegExp) => {
      const error = await call().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
      expect((error as ValidationError).message).toMatch(message);
    };
    await refused(
      () => queue.search({}),
      'filter',
      /at least one of filter.id, filter.type, filter.partitionKey, filter.text/,
    );
    await refused(() => queue.search(undefined as never), 'filter', /filter must be an object/);
    await refused(() => queue.search({ id: '' }), 'filter.id', /filter.id must be a message id/);
    await refused(() => queue.search({ id: 'a|b' }), 'filter.id', /filter.id must be a message id/);
    await refused(() => queue.search({ kind: 'x' } as never), 'filter.kind', /unknown option "kind"/);
    // A lone surrogate could not travel as the script's JSON argument.
    await refused(() => queue.search({ text: 'a\ud800b' }), 'filter.text', /not well-formed Unicode/);
    await refused(() => queue.search({ type: 'a' }, { state: 'pending' as never }), 'state', /state must be one of/);
    await refused(() => queue.search({ text: 'x'.repeat(257) }), 'filter.text', /at most 256 bytes, got 257 bytes/);
    await refused(() => queue.search({ text: 'é'.repeat(129) }), 'filter.text', /at most 256 bytes, got 258 bytes/);
    await refused(() => queue.search({ text: '' }), 'filter.text', /non-empty string/);
    await refused(() => queue.search({ type: 'a|b' }), 'filter.type', /filter.type must be a message type/);
    await refused(() => queue.search({ partitionKey: '' }), 'filter.partitionKey', /non-empty string/);
    await refused(() => queue.search({ type: 'a' }, { scanLimit: 10_001 }), 'scanLimit', /from 1 to 10000/);
    await refused(() => queue.search({ type: 'a' }, { limit: 1001 }), 'limit', /from 1 to 1000/);
    await refused(() => queue.search({ type: 'a' }, { cursor: -1 }), 'cursor', /integer from 0/);
    await refused(() => queue.search({ type: 'a' }, { offset: 1 } as never), 'offset', /unknown option "offset"/);
    // 256 bytes is fine.
    expect(await queue.search({ text: 'é'.repeat(128) })).toEqual({ matches: [], cursor: null, scanned: 0 });
  });

  it('finds one message by id in a bounded walk, in the state it is in', async () => {
    const queue = env.queue<{ n: number }>('by-id');
    const ids = await queue.sendMany(Array.from({ length: 30 }, (_, n) => ({ payload: { n } })));
    const later = await queue.send({ n: 99 }, { delayMs: 60_000 });
    const hit = await queue.search({ id: ids[17]! });
    expect(hit.matches.map((m) => [m.id, m.message?.payload])).toEqual([[ids[17], { n: 17 }]]);
    expect(hit.cursor).toBeNull();
    expect((await queue.search({ id: later })).matches).toEqual([]);
    expect((await queue.search({ id: later }, { state: 'delayed' })).matches.map((m) => m.id)).toEqual([later]);
    // Bounded like the other filters: ten entries examined, then a cursor to go on from.
    const first = await queue.search({ id: ids[25]! }, { scanLimit: 10 });
    expect(first).toMatchObject({ matches: [], cursor: 10, scanned: 10 });
  });
});

describe('queue.promote({ ids }): run delayed messages now', () => {
  it('a delayed message becomes ready at once and wakes a consumer blocked waiting', async () => {
    const queue = env.queue<string>('promote-now');
    const id = await queue.send('later', { delayMs: 120_000, type: 'report' });
    const started: string[] = [];
    // Without the wake-up it would sleep until the message is due (2 minutes) or blockMs (10 minutes).
    const consumer = queue.consume((m) => void started.push(m.id), { blockMs: 600_000 });
    await waitFor(() => consumerIsBlocked(env.redis, queue.baseKey), 'the consumer to block');
    expect(await queue.promote({ ids: [id] })).toBe(1);
    await waitFor(() => started.length === 1, 'the promoted message to be delivered');
    expect(started).toEqual([id]);
    await consumer.close();
    expect(await queue.getStats()).toMatchObject({ delayed: 0, inflight: 0, counters: { acked: 1 } });
  });

  it('a retry-waiting message keeps its attempts and last error; priority and order as when due', async () => {
    const queue = env.queue<string>('promote-retry');
    await queue.send('failing', { id: 'retry' });
    await queue.send('urgent', { id: 'urgent', priority: 'HIGH', delayMs: 60_000 });
    await queue.send('first', { id: 'first', delayMs: 90_000 });
    const [delivery] = await queue.dequeue();
    await queue.nack(delivery!, { error: 'upstream 503', delayMs: 60_000 });
    expect((await queue.getMessage('retry'))!.status).toBe('RETRY');

    expect(await queue.promote({ ids: ['first', 'retry', 'urgent'] })).toBe(3);
    const info = await queue.getMessage('retry');
    expect(info).toMatchObject({ status: 'PENDING', attempts: 1, lastError: 'upstream 503' });
    const deliveries = await queue.dequeue({ count: 10 });
    expect(deliveries.map((d) => [d.id, d.attempts])).toEqual([
      ['urgent', 0],
      ['first', 0],
      ['retry', 1],
    ]);
  });

  it('a partitioned message goes where a due one would: ready, its partition still held until it is acked', async () => {
    const queue = env.queue<string>('promote-partition');
    await queue.send('head', { id: 'head', partitionKey: 'acct-1', delayMs: 60_000 });
    await queue.send('next', { id: 'next', partitionKey: 'acct-1' });
    // 'next' waits behind its partition's head, in no delayed set: skipped.
    expect(await queue.promote({ ids: ['next', 'head'] })).toBe(1);
    expect(await queue.getStats()).toMatchObject({ delayed: 0, partitionBacklog: 1, ready: { normal: 1 } });
    const [first] = await queue.dequeue({ count: 10 });
    expect(first!.id).toBe('head');
    expect(await queue.dequeue()).toEqual([]);
    await queue.ack(first!);
    expect((await queue.dequeue()).map((d) => d.id)).toEqual(['next']);
  });

  it('skips unknown ids and ids not delayed; the same promote twice promotes once', async () => {
    const queue = env.queue<string>('promote-twice');
    await queue.send('ready', { id: 'ready' });
    await queue.send('a', { id: 'a', delayMs: 60_000 });
    await queue.send('b', { id: 'b', delayMs: 60_000 });
    await queue.send('c', { id: 'c', delayMs: 60_000 });
    expect(await queue.promote({ ids: ['nope', 'ready', 'a', 'a', 'b'] })).toBe(2);
    const after = await snapshot(env.redis, queue.baseKey);
    expect(await queue.promote({ ids: ['nope', 'ready', 'a', 'a', 'b'] })).toBe(0);
    expect(await snapshot(env.redis, queue.baseKey)).toEqual(after);
    expect(await queue.getStats()).toMatchObject({ delayed: 1, ready: { normal: 3 } });
    expect((await queue.dequeue({ count: 10 })).map((d) => d.id)).toEqual(['ready', 'a', 'b']);
    // promote() without ids still promotes only what is due.
    expect(await queue.promote()).toBe(0);
  });

  it('refuses ids with limit, too many ids or ids that are not strings; [] promotes nothing without Redis', async () => {
    const queue = env.queue('promote-invalid');
    await queue.send('a', { id: 'a', delayMs: 60_000 });
    await expect(queue.promote({ ids: ['a'], limit: 5 })).rejects.toMatchObject({
      field: 'limit',
      message: expect.stringMatching(/give ids .* or limit .*, not both/),
    });
    await expect(queue.promote({ ids: Array.from({ length: 1001 }, (_, n) => `m${n}`) })).rejects.toThrow(
      /at most 1000 ids per call, got 1001/,
    );
    await expect(queue.promote({ ids: [1] as never })).rejects.toBeInstanceOf(ValidationError);
    await expect(queue.promote({ ids: 'a' as never })).rejects.toThrow(/ids must be an array of message ids/);
    expect((await queue.getStats()).delayed).toBe(1);
    await queue.close();
    // A closed queue refuses every call to Redis: [] makes none.
    expect(await queue.promote({ ids: [] })).toBe(0);
  });
});
