import { existsSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus, Locks, Scheduler } from '../src/index.js';
import { seedQueues, useDashboards } from './dashboard.helpers.js';
import { useRedis } from './helpers.js';

/**
 * The dashboard in a real browser: Debian's Chromium (apt-get install chromium), driven by playwright-core,
 * against the real Redis. Screenshots of each screen go to SCREENSHOTS_DIR (the README's come from
 * `SCREENSHOTS_DIR=docs/dashboard npx vitest run test/dashboard.browser.test.ts`), else to a temporary folder.
 */
const CHROMIUM = '/usr/bin/chromium';
const shots = process.env.SCREENSHOTS_DIR ?? mkdtempSync(join(tmpdir(), 'sluice-dashboard-'));
mkdirSync(shots, { recursive: true });

describe('dashboard in Chromium', () => {
  const r = useRedis();
  const start = useDashboards();
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's Chromium with apt-get install chromium (.ci/run does)`);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function open(url: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    // A CSP violation or a script error is a failure of the page, whatever the test checks.
    page.on('console', (message) => {
      if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) errors.push(message.text());
    });
    await page.goto(url);
    (page as any).errors = errors;
    return page;
  }

  async function shot(page: Page, name: string): Promise<void> {
    const path = join(shots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    expect(statSync(path).size).toBeGreaterThan(10_000);
  }

  it('overview shows the counts in Redis; search finds by partition key; replay puts a dead letter back', async () => {
    const prefix = r.prefix();
    const seed = await seedQueues((name) => r.queue(name, { prefix }));
    const bus = new EventBus('domain', { connection: r.redis, prefix });
    const locks = new Locks({ connection: r.redis, prefix });
    const scheduler = new Scheduler({ connection: r.redis, prefix });
    try {
      await bus.subscribe('billing', ['order.*', 'payment.#'], { filter: { 'data.region': 'eu' } });
      await bus.subscribe('audit', '#');
      await bus.publish('order.created', { orderId: 1, region: 'eu' });
      await bus.publish('payment.captured', { paymentId: 9, region: 'us' });
      const lock = (await locks.acquire('nightly-report', { holder: 'report-worker-1', ttlMs: 120_000 }))!;
      scheduler.addJob({ name: 'cleanup', every: 3_600_000, handler: async () => undefined }).start();
      // Live traffic for the chart: a producer and a consumer on a third queue.
      const emails = r.queue<{ n: number }>('emails', { prefix });
      const consumer = emails.consume(() => undefined, { concurrency: 4 });
      let sending = true;
      const producer = (async () => {
        for (let n = 0; sending; n++) {
          // A rate that changes, so the chart has a shape: 100 to 300 messages per second.
          await emails.sendMany(Array.from({ length: 10 * (1 + (n % 3)) }, (_, k) => ({ payload: { n: n * 30 + k } })));
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
      const dashboard = await start({ connection: r.redis, prefix });
      const page = await open(dashboard.url);
      // Four points of the chart: five samples of the counters, 2 s apart.
      await expect
        .poll(async () => Number(await page.getByTestId('chart').getAttribute('data-points')), { timeout: 30_000 })
        .toBeGreaterThanOrEqual(4);
      expect(await page.locator('.chart polyline').count()).toBe(3);
      await expect
        .poll(() => page.getByTestId('queues').locator('tr', { hasText: 'emails' }).locator('td').nth(7).textContent())
        .toBe('1');
      sending = false;
      await producer;
      await consumer.close();

      // Overview: every queue with the counts that are in Redis.
      const orders = page.getByTestId('queues').locator('tr', { hasText: 'orders' });
      await expect.poll(() => orders.textContent(), { timeout: 20_000 }).toContain('orders');
      const cells = await orders.locator('td').allTextContents();
      expect(cells.slice(0, 6)).toEqual(['orders', '3', '0/1/2/0', '0', '1', '0']);
      const payments = await page
        .getByTestId('queues')
        .locator('tr', { hasText: 'payments' })
        .locator('td')
        .allTextContents();
      expect(payments[5]).toBe('1');
      await expect.poll(() => page.getByTestId('warnings').textContent()).toContain('no consumer running');
      expect(await page.getByTestId('buses').textContent()).toContain('domain');
      await shot(page, 'overview');

      // Queue detail and search by partition key.
      await orders.getByRole('link', { name: 'orders' }).click();
      await expect.poll(() => page.getByTestId('stat-ready').textContent()).toBe('3');
      await page.getByTestId('search').locator('input[name=partitionKey]').fill('customer-7');
      await page
        .getByTestId('search')
        .getByRole('button', { name: /Search/ })
        .click();
      await expect.poll(() => page.getByTestId('search-summary').textContent()).toContain('1 found');
      const found = page.getByTestId('messages').locator('tbody tr');
      expect(await found.count()).toBe(1);
      expect(await found.textContent()).toContain(seed.ready[2]);
      expect(await found.textContent()).toContain('customer-7');
      await shot(page, 'queue-search');
      await found.getByRole('button', { name: seed.ready[2] }).click();
      await expect.poll(() => page.getByTestId('message-detail').textContent()).toContain('"note": "rush"');
      await shot(page, 'message');
      await page.getByRole('button', { name: 'close' }).click();

      // The dead-letter queue of payments: replay from the UI puts the message back in the queue.
      await page.goto(`${dashboard.url}#/queue/payments`);
      await page.getByRole('tab', { name: 'dead letters' }).click();
      const dead = page.getByTestId('messages').locator('tbody tr', { hasText: seed.deadId });
      await expect.poll(() => dead.textContent()).toContain('card declined');
      await shot(page, 'dead-letters');
      await dead.getByRole('checkbox').check();
      await page.getByRole('button', { name: 'Replay selected (1)' }).click();
      await expect.poll(() => page.getByTestId('notice').textContent()).toContain('replayed');
      expect((await seed.payments.getMessage(seed.deadId))?.status).toBe('PENDING');
      expect((await seed.payments.getStats()).deadLetters).toBe(0);
      await expect.poll(() => page.getByTestId('stat-dead').textContent()).toBe('0');
      expect(dashboard.logs).toEqual([
        expect.objectContaining({ action: 'queue.replay', target: 'payments', outcome: 'done' }),
      ]);

      // Bus, jobs and locks screens.
      await page.goto(`${dashboard.url}#/bus/domain`);
      await expect.poll(() => page.getByTestId('subscriptions').textContent()).toContain('billing');
      await page.getByRole('button', { name: 'order.created' }).click();
      await expect.poll(() => page.getByTestId('history').textContent()).toContain('"orderId":1');
      await shot(page, 'bus');
      // A subscription's link opens its own queue (not a plain queue of that name).
      await page.getByTestId('subscriptions').getByRole('link', { name: 'billing' }).click();
      await expect.poll(() => page.getByTestId('queue-name').textContent()).toBe('billing');
      await expect.poll(() => page.getByTestId('stat-ready').textContent()).toBe('1');
      await page.getByRole('tab', { name: 'ready' }).click();
      await expect.poll(() => page.getByTestId('messages').textContent()).toContain('order.created');
      await page.goto(`${dashboard.url}#/jobs`);
      await expect.poll(() => page.getByTestId('jobs').textContent()).toContain('cleanup');
      await shot(page, 'jobs');
      await page.goto(`${dashboard.url}#/locks`);
      await expect.poll(() => page.getByTestId('locks').textContent()).toContain('report-worker-1');
      await shot(page, 'locks');
      expect((page as any).errors).toEqual([]);
      await locks.release(lock);
    } finally {
      await scheduler.close({ graceMs: 0 });
      await Promise.all([bus.close(), locks.close()]);
    }
  });

  it('read-only mode shows no actions and the server refuses the same replay', async () => {
    const prefix = r.prefix();
    const seed = await seedQueues((name) => r.queue(name, { prefix }));
    const dashboard = await start({ connection: r.redis, prefix, readOnly: true });
    const page = await open(`${dashboard.url}#/queue/payments`);
    await expect.poll(() => page.getByTestId('read-only').textContent(), { timeout: 20_000 }).toBe('read-only');
    await page.getByRole('tab', { name: 'dead letters' }).click();
    await expect.poll(() => page.getByTestId('messages').textContent()).toContain(seed.deadId);
    expect(await page.getByRole('button', { name: /Replay/ }).count()).toBe(0);
    // The same request the button sends, from the page itself: refused by the server.
    const reply = await page.evaluate(async (id) => {
      const response = await fetch('api/queues/payments/replay', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ ids: [id] }),
      });
      return { status: response.status, body: (await response.json()) as { error: { code: string } } };
    }, seed.deadId);
    expect(reply).toEqual({ status: 403, body: { error: expect.objectContaining({ code: 'READ_ONLY' }) } });
    expect((await seed.payments.getMessage(seed.deadId))?.status).toBe('FAILED');
    await shot(page, 'read-only');
  });

  it('a cross-site page cannot act on the dashboard', async () => {
    const prefix = r.prefix();
    const seed = await seedQueues((name) => r.queue(name, { prefix }));
    const dashboard = await start({ connection: r.redis, prefix });
    // A page of another origin (a plain server of its own, no policy) tries a write with the browser's help.
    const evil = createServer((_, response) => response.end('<!doctype html><title>elsewhere</title>'));
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const page = await open(`http://localhost:${(evil.address() as AddressInfo).port}/`);
    const status = await page.evaluate(async (target) => {
      try {
        const response = await fetch(target, {
          method: 'POST',
          mode: 'no-cors',
          headers: { 'Content-Type': 'text/plain' },
          body: '{"ids":["x"]}',
        });
        return response.type;
      } catch (error) {
        return `blocked: ${(error as Error).message}`;
      }
    }, `${dashboard.url}api/queues/orders/pause`);
    expect(status).toMatch(/opaque|blocked/);
    expect((await seed.orders.getStats()).paused).toBe(false);
    expect(dashboard.logs).toEqual([
      expect.objectContaining({
        action: 'queue.pause',
        outcome: 'refused',
        result: expect.stringContaining('cross-site'),
      }),
    ]);
    await new Promise<void>((resolve) => evil.close(() => resolve()));
  });
});
