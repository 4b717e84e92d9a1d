import { describe, expect, it } from 'vitest';
import { serveDashboard } from '../src/dashboard/index.js';
import { EventBus, Locks, Scheduler, ValidationError } from '../src/index.js';
import { json, seedQueues, useDashboards } from './dashboard.helpers.js';
import { useRedis, waitFor } from './helpers.js';

const TOKEN = 'a-long-enough-test-token-1234';

describe('dashboard routes', () => {
  const r = useRedis();
  const start = useDashboards();

  async function seeded(options: { readOnly?: boolean; token?: string } = {}) {
    const prefix = r.prefix();
    const seed = await seedQueues((name) => r.queue(name, { prefix }));
    const dashboard = await start({ connection: r.redis, prefix, ...options });
    return { prefix, seed, dashboard };
  }

  it('serves the page with a content security policy, and its assets', async () => {
    const { dashboard } = await seeded();
    const page = await dashboard.get('');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const html = await page.text();
    expect(html).toContain('<script type="module" src="assets/app.js">');
    const script = await dashboard.get('assets/app.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect((await script.text()).length).toBeGreaterThan(1000);
    const missing = await dashboard.get('nothing-here');
    expect(missing.status).toBe(404);
    expect((await json(missing)).error.code).toBe('NOT_FOUND');
  });

  it('overview reports the counts that are in Redis, with warnings', async () => {
    const { dashboard } = await seeded();
    const overview = await json(await dashboard.get('api/overview'));
    const orders = overview.queues.find((q: any) => q.name === 'orders');
    const payments = overview.queues.find((q: any) => q.name === 'payments');
    expect(orders.ready).toEqual({ critical: 0, high: 1, normal: 2, low: 0 });
    expect(orders.delayed).toBe(1);
    expect(orders.consumers).toBe(0);
    expect(payments.deadLetters).toBe(1);
    expect(overview.readOnly).toBe(false);
    expect(overview.warnings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ queue: 'orders', kind: 'no-consumer' }),
        expect.objectContaining({ queue: 'payments', kind: 'dead-letters' }),
      ]),
    );
  });

  it('throughput comes from the counters between samples', async () => {
    const { dashboard, seed } = await seeded();
    await json(await dashboard.get('api/overview'));
    // Samples are at least 2 s apart: wait for the second one, sending in between.
    await seed.orders.sendMany(Array.from({ length: 40 }, (_, n) => ({ payload: { n } })));
    const later = await waitFor(async () => {
      const overview = await json(await dashboard.get('api/overview'));
      return overview.throughput.length > 0 ? overview : null;
    }, 'a second throughput sample');
    expect(later.throughput[0].sent).toBeGreaterThan(0);
    expect(later.queues.find((q: any) => q.name === 'orders').sentPerSecond).toBeGreaterThan(0);
  });

  it('pages messages by state, and shows one message', async () => {
    const { dashboard, seed } = await seeded();
    const ready = await json(await dashboard.get('api/queues/orders/messages?state=ready&limit=2'));
    expect(ready.map((m: any) => m.id)).toEqual([seed.ready[2], seed.ready[0]]); // high first, then FIFO
    const next = await json(await dashboard.get('api/queues/orders/messages?state=ready&offset=2&limit=2'));
    expect(next.map((m: any) => m.id)).toEqual([seed.ready[1]]);
    const delayed = await json(await dashboard.get('api/queues/orders/messages?state=delayed'));
    expect(delayed[0].id).toBe(seed.delayed);
    expect(delayed[0].at).toBeGreaterThan(Date.now() + 3_000_000);
    const dead = await json(await dashboard.get('api/queues/payments/messages?state=dead'));
    expect(dead[0]).toMatchObject({ id: seed.deadId, lastError: 'card declined' });
    expect(dead[0].message).toMatchObject({ payload: { paymentId: 9, card: 'visa' }, attempts: 1 });
    const bad = await dashboard.get('api/queues/orders/messages?state=finished');
    expect(bad.status).toBe(400);
    expect((await json(bad)).error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await json(await dashboard.get('api/queues/orders/messages?limit=5000'))).error.message).toContain(
      'limit must be a whole number from 1 to 200',
    );
  });

  it('searches by id, type, partition key and payload text', async () => {
    const { dashboard, seed } = await seeded();
    const byKey = await json(await dashboard.get('api/queues/orders/search?state=ready&partitionKey=customer-7'));
    expect(byKey.matches.map((m: any) => m.id)).toEqual([seed.ready[2]]);
    expect(byKey.cursor).toBeNull();
    const byType = await json(await dashboard.get('api/queues/orders/search?state=ready&type=order.created'));
    expect(byType.matches.map((m: any) => m.id).sort()).toEqual([seed.ready[0], seed.ready[1]].sort());
    const byText = await json(await dashboard.get('api/queues/orders/search?state=ready&text=rush'));
    expect(byText.matches.map((m: any) => m.id)).toEqual([seed.ready[2]]);
    const byId = await json(await dashboard.get(`api/queues/orders/search?state=delayed&id=${seed.delayed}`));
    expect(byId.matches).toEqual([expect.objectContaining({ id: seed.delayed, state: 'delayed' })]);
    expect(
      (await json(await dashboard.get(`api/queues/orders/search?state=ready&id=${seed.delayed}`))).matches,
    ).toEqual([]);
    const none = await dashboard.get('api/queues/orders/search?state=ready');
    expect(none.status).toBe(400);
  });

  it('replays a selected dead letter, and purges all matching a filter', async () => {
    const { dashboard, seed } = await seeded();
    const replay = await dashboard.post('api/queues/payments/replay', { ids: [seed.deadId] });
    expect(await json(replay)).toEqual({ replayed: 1, ids: [seed.deadId] });
    // A replay of what is no longer a dead letter replays nothing (and says so).
    expect(await json(await dashboard.post('api/queues/payments/replay', { ids: [seed.deadId] }))).toEqual({
      replayed: 0,
      ids: [],
    });
    expect((await seed.payments.getMessage(seed.deadId))?.status).toBe('PENDING');
    expect(dashboard.logs[0]).toEqual(
      expect.objectContaining({
        who: 'anonymous',
        action: 'queue.replay',
        target: 'payments',
        detail: { ids: [seed.deadId] },
        outcome: 'done',
      }),
    );

    // Three more dead letters, two of one type: purge by filter takes exactly those two.
    for (const type of ['payment.charge', 'payment.charge', 'payment.refund']) {
      await seed.payments.send({ type }, { type });
    }
    for (let n = 0; n < 4; n++) {
      const [delivery] = await seed.payments.dequeue();
      await seed.payments.nack(delivery!, { retry: false, error: 'declined' });
    }
    expect((await seed.payments.getStats()).deadLetters).toBe(4);
    const purge = await dashboard.post('api/queues/payments/purge', { filter: { type: 'payment.refund' } });
    expect(await json(purge)).toEqual({ purged: 1 });
    const left = await seed.payments.deadLetters();
    expect(left.map((d) => d.message?.type)).toEqual(['payment.charge', 'payment.charge', 'payment.charge']);
    const refused = await dashboard.post('api/queues/payments/purge', {});
    expect(refused.status).toBe(400);
  });

  it('promotes a delayed message, pauses, resumes and sets a rate limit', async () => {
    const { dashboard, seed } = await seeded();
    expect(await json(await dashboard.post('api/queues/orders/promote', { ids: [seed.delayed] }))).toEqual({
      promoted: 1,
    });
    expect((await seed.orders.getMessage(seed.delayed))?.status).toBe('PENDING');
    await dashboard.post('api/queues/orders/pause', {});
    expect((await seed.orders.getStats()).paused).toBe(true);
    await dashboard.post('api/queues/orders/resume', {});
    expect((await seed.orders.getStats()).paused).toBe(false);
    await dashboard.post('api/queues/orders/rate-limit', { limit: { max: 10, windowMs: 1000 } });
    expect((await seed.orders.getStats()).rateLimit).toEqual({ max: 10, windowMs: 1000 });
    const bad = await dashboard.post('api/queues/orders/rate-limit', { limit: { max: -1, windowMs: 1000 } });
    expect(bad.status).toBe(400);
    // A body without `limit` is refused, not read as "no limit".
    for (const body of [{}, { max: 5, windowMs: 1000 }, { limit: 5 }]) {
      const refused = await dashboard.post('api/queues/orders/rate-limit', body);
      expect(refused.status).toBe(400);
      expect((await json(refused)).error.message).toContain('{ "limit": null } to remove it');
    }
    expect((await seed.orders.getStats()).rateLimit).toEqual({ max: 10, windowMs: 1000 });
    await dashboard.post('api/queues/orders/rate-limit', { limit: null });
    expect((await seed.orders.getStats()).rateLimit).toBeNull();
  });

  it('read-only refuses every action on the server and logs the refusal', async () => {
    const { dashboard, seed } = await seeded({ readOnly: true });
    const refused = await dashboard.post('api/queues/payments/replay', { ids: [seed.deadId] });
    expect(refused.status).toBe(403);
    expect((await json(refused)).error.code).toBe('READ_ONLY');
    expect((await seed.payments.getMessage(seed.deadId))?.status).toBe('FAILED');
    expect(dashboard.logs).toEqual([expect.objectContaining({ action: 'queue.replay', outcome: 'refused' })]);
    expect((await dashboard.get('api/overview')).status).toBe(200);
  });

  it('a queue or bus that does not exist is NOT_FOUND, and an action on one writes nothing', async () => {
    const { dashboard, prefix } = await seeded();
    for (const path of ['api/queues/nosuchqueue', 'api/queues/nosuchqueue/messages', 'api/buses/nosuchbus']) {
      const reply = await dashboard.get(path);
      expect(reply.status, path).toBe(404);
      expect((await json(reply)).error.code).toBe('NOT_FOUND');
    }
    const pause = await dashboard.post('api/queues/nosuchqueue/pause', {});
    expect(pause.status).toBe(404);
    expect((await json(pause)).error.message).toContain(`no queue nosuchqueue under prefix ${prefix}`);
    expect(await r.redis.keys(`{${prefix}:nosuchqueue}*`)).toEqual([]);
    expect(dashboard.logs).toEqual([expect.objectContaining({ action: 'queue.pause', outcome: 'refused' })]);
    // A queue made after the dashboard's discovery was cached is found (discovery is read again once).
    await r.queue('fresh', { prefix }).send({ n: 1 });
    expect((await dashboard.get('api/queues/fresh')).status).toBe(200);
  });

  it("a subscriber's queue is read and acted on through ?bus=", async () => {
    const prefix = r.prefix();
    const bus = new EventBus('domain', { connection: r.redis, prefix });
    try {
      await bus.subscribe('billing', 'order.*');
      await bus.publish('order.created', { orderId: 5 });
      const dashboard = await start({ connection: r.redis, prefix });
      const detail = await json(await dashboard.get('api/queues/billing?bus=domain'));
      expect(detail.stats.ready.normal).toBe(1);
      const page = await json(await dashboard.get('api/queues/billing/messages?state=ready&bus=domain'));
      expect(page[0].message.payload).toMatchObject({ type: 'order.created', data: { orderId: 5 } });
      await dashboard.post('api/queues/billing/pause?bus=domain', {});
      expect((await bus.subscriberQueue('billing').getStats()).paused).toBe(true);
      expect((await dashboard.get('api/queues/nobody?bus=domain')).status).toBe(404);
      // Without ?bus= the name is a plain queue, which does not exist.
      expect((await dashboard.get('api/queues/billing')).status).toBe(404);
    } finally {
      await bus.close();
    }
  });

  it('replays and purges all matching in batches past the 1,000 ids of one call', async () => {
    const { dashboard, seed } = await seeded();
    const ids = await seed.payments.sendMany(
      Array.from({ length: 1500 }, (_, n) => ({ payload: { n }, type: 'payment.bulk' })),
    );
    for (let done = 0; done < ids.length;) {
      const deliveries = await seed.payments.dequeue({ count: 1000 });
      await seed.payments.nackMany(deliveries.map((ref) => ({ ref, retry: false, error: 'bulk' })));
      done += deliveries.length;
    }
    expect((await seed.payments.getStats()).deadLetters).toBe(1501);
    const replay = await json(await dashboard.post('api/queues/payments/replay', { filter: { type: 'payment.bulk' } }));
    expect(replay.replayed).toBe(1500);
    const stats = await seed.payments.getStats();
    expect(stats.deadLetters).toBe(1);
    expect(stats.ready.normal).toBe(1500);
    const both = await dashboard.post('api/queues/payments/purge', { ids: [seed.deadId], all: true });
    expect(both.status).toBe(400);
  });

  it('refuses addresses that would leave the dashboard, malformed escapes, and Host names not allowed', async () => {
    const { dashboard, prefix } = await seeded();
    const { request } = await import('node:http');
    const raw = (path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; location: string | undefined; body: string }>((resolve, reject) => {
        const req = request(`${dashboard.origin}/`, { path, headers }, (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString()));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, location: response.headers.location, body }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    for (const path of ['//evil.example', '/\\evil.example', '//evil.example/api/overview']) {
      const reply = await raw(path);
      expect(reply.status, path).toBe(404);
      expect(reply.location).toBeUndefined();
    }
    const escape = await raw('/api/queues/%E0');
    expect(escape.status).toBe(400);
    expect(JSON.parse(escape.body).error.message).toContain('malformed %-escape');
    expect((await raw('/api/overview', { Cookie: 'sluice_dashboard=%E0' })).status).toBe(200);
    expect((await raw('/favicon.ico')).status).toBe(204);

    // serveDashboard on loopback with no token answers loopback Host names only (DNS rebinding).
    const served = await serveDashboard({ connection: r.redis, prefix, port: 0 });
    try {
      const port = new URL(served.url).port;
      expect((await fetch(`${served.url}api/overview`)).status).toBe(200);
      const { request: req2 } = await import('node:http');
      const rebound = await new Promise<number>((resolve, reject) => {
        const call = req2(
          { host: '127.0.0.1', port, path: '/api/overview', headers: { Host: `evil.example:${port}` } },
          (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          },
        );
        call.on('error', reject);
        call.end();
      });
      expect(rebound).toBe(403);
    } finally {
      await served.close();
    }
  });

  it('a token guards every request: bearer header, or the cookie set by ?token=', async () => {
    const { dashboard } = await seeded({ token: TOKEN });
    const anonymous = await dashboard.get('api/overview');
    expect(anonymous.status).toBe(401);
    expect((await json(anonymous)).error.code).toBe('UNAUTHORIZED');
    expect((await dashboard.get('api/overview', { Authorization: 'Bearer wrong-token-wrong-token' })).status).toBe(401);
    expect((await dashboard.get('api/overview', { Authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    const login = await dashboard.get(`?token=${TOKEN}`);
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const withCookie = await dashboard.get('api/overview', { Cookie: cookie.split(';')[0]! });
    expect(withCookie.status).toBe(200);
    const action = await dashboard.post('api/queues/orders/pause', {}, { Cookie: cookie.split(';')[0]! });
    expect(action.status).toBe(200);
    expect(dashboard.logs.at(-1)).toMatchObject({ who: 'token', action: 'queue.pause', outcome: 'done' });
    // An action without the token is refused and logged.
    expect((await dashboard.post('api/queues/orders/resume', {})).status).toBe(401);
    expect(dashboard.logs.at(-1)).toMatchObject({ who: 'anonymous', action: 'queue.resume', outcome: 'refused' });
  });

  it('an authorize hook decides each action and names who is logged', async () => {
    const prefix = r.prefix();
    const seed = await seedQueues((name) => r.queue(name, { prefix }));
    const asked: string[] = [];
    const dashboard = await start({
      connection: r.redis,
      prefix,
      authorize: (request, action) => {
        asked.push(action);
        if (request.headers['x-user'] === 'mallory') return false;
        return action === 'read' ? true : String(request.headers['x-user'] ?? '');
      },
    });
    const denied = await dashboard.post('api/queues/payments/purge', { ids: [seed.deadId] }, { 'X-User': 'mallory' });
    expect(denied.status).toBe(403);
    expect((await json(denied)).error.code).toBe('FORBIDDEN');
    expect((await seed.payments.getStats()).deadLetters).toBe(1);
    const done = await dashboard.post('api/queues/payments/purge', { ids: [seed.deadId] }, { 'X-User': 'alice' });
    expect(await json(done)).toEqual({ purged: 1 });
    expect(dashboard.logs).toEqual([
      expect.objectContaining({ who: 'anonymous', action: 'queue.purge', outcome: 'refused' }),
      expect.objectContaining({ who: 'alice', action: 'queue.purge', outcome: 'done', result: { purged: 1 } }),
    ]);
    expect(asked).toEqual(['queue.purge', 'queue.purge']);
  });

  it('refuses cross-site writes and bodies that are not JSON', async () => {
    const { dashboard } = await seeded();
    const crossSite = await dashboard.post('api/queues/orders/pause', {}, { 'Sec-Fetch-Site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    expect((await json(crossSite)).error.code).toBe('CROSS_SITE');
    const otherOrigin = await dashboard.post('api/queues/orders/pause', {}, { Origin: 'https://evil.example' });
    expect(otherOrigin.status).toBe(403);
    // A form parser in front (express.urlencoded) would parse the body: the content type is what is checked.
    const form = await fetch(`${dashboard.url}api/queues/orders/pause`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    expect(form.status).toBe(415);
    expect((await json(form)).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const sameOrigin = await dashboard.post(
      'api/queues/orders/pause',
      {},
      { Origin: dashboard.origin, 'Sec-Fetch-Site': 'same-origin' },
    );
    expect(sameOrigin.status).toBe(200);
    expect(dashboard.logs.map((entry) => entry.outcome)).toEqual(['refused', 'refused', 'refused', 'done']);
  });

  it('works mounted under a path, redirecting the bare path to the slash', async () => {
    const prefix = r.prefix();
    await seedQueues((name) => r.queue(name, { prefix }));
    const dashboard = await start({ connection: r.redis, prefix }, '/ops/sluice');
    const bare = await fetch(`${dashboard.origin}/ops/sluice`, { redirect: 'manual' });
    expect(bare.status).toBe(301);
    expect(bare.headers.get('location')).toBe('/ops/sluice/');
    expect((await dashboard.get('')).status).toBe(200);
    const overview = await json(await dashboard.get('api/overview'));
    expect(overview.queues.map((q: any) => q.name).sort()).toEqual(['orders', 'payments']);
  });

  it('shows buses with their subscriptions and history, jobs, and locks with holder and fence', async () => {
    const prefix = r.prefix();
    const bus = new EventBus('domain', { connection: r.redis, prefix });
    const locks = new Locks({ connection: r.redis, prefix });
    const scheduler = new Scheduler({ connection: r.redis, prefix });
    try {
      await bus.subscribe('billing', ['order.*'], { filter: { 'data.region': { in: ['eu', 'us'] } } });
      await bus.publish('order.created', { amount: 50, region: 'eu' });
      const lock = (await locks.acquire('nightly-report', { holder: 'worker-a', ttlMs: 60_000 }))!;
      scheduler.addJob({ name: 'cleanup', every: 3_600_000, handler: async () => undefined }).start();
      const dashboard = await start({ connection: r.redis, prefix });
      const detail = await json(await dashboard.get('api/buses/domain'));
      expect(detail.subscriptions).toEqual([
        expect.objectContaining({
          subscriberId: 'billing',
          patterns: ['order.*'],
          filter: { 'data.region': { in: ['eu', 'us'] } },
          active: true,
          queue: expect.objectContaining({ ready: expect.objectContaining({ normal: 1 }) }),
        }),
      ]);
      expect(detail.types).toEqual(['order.created']);
      const history = await json(await dashboard.get('api/buses/domain/history?type=order.created'));
      expect(history[0].event.data).toEqual({ amount: 50, region: 'eu' });
      await dashboard.post('api/buses/domain/subscriptions/billing/pause', {});
      expect((await bus.listSubscriptions())[0]!.active).toBe(false);
      const locksList = await json(await dashboard.get('api/locks'));
      expect(locksList).toEqual([
        expect.objectContaining({ name: 'nightly-report', held: true, holder: 'worker-a', fence: lock.fence }),
      ]);
      const jobs = await waitFor(async () => {
        const list = await json(await dashboard.get('api/jobs'));
        return list.length > 0 ? list : null;
      }, 'the job in the dashboard');
      expect(jobs[0]).toMatchObject({ name: 'cleanup', paused: false });
      await dashboard.post('api/jobs/cleanup/pause', {});
      expect((await scheduler.getJobStatus('cleanup'))?.paused).toBe(true);
      await locks.release(lock);
    } finally {
      await scheduler.close({ graceMs: 0 });
      await Promise.all([bus.close(), locks.close()]);
    }
  });

  it('has no outbox unless given one, and validates its options', async () => {
    const { dashboard } = await seeded();
    const outbox = await dashboard.get('api/outbox');
    expect(outbox.status).toBe(400);
    expect((await json(outbox)).error.message).toContain('pass outbox');
    await expect(start({ connection: r.redis, token: 'short' })).rejects.toThrow(ValidationError);
    for (const readOnly of [false, true]) {
      await expect(serveDashboard({ connection: r.redis, host: '0.0.0.0', port: 0, readOnly })).rejects.toThrow(
        /reachable from the network, payloads included: give it a token/,
      );
    }
    const open = await serveDashboard({ connection: r.redis, host: '0.0.0.0', port: 0, token: TOKEN });
    expect(open.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/$/);
    await open.close();
  });
});
