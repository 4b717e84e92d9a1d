import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { json, useDashboards } from './dashboard.helpers.js';
import { useOutbox } from './outbox.helpers.js';

/** The outbox screen, with MariaDB: backlog, lag and failed rows, and retry from the API and from the page. */
describe('dashboard outbox (MariaDB)', () => {
  const ctx = useOutbox();
  const start = useDashboards();

  async function withFailedRows() {
    const prefix = ctx.prefix();
    const bus = ctx.bus(prefix);
    const table = ctx.table();
    const outbox = ctx.outbox(bus, table);
    await outbox.migrate();
    for (let n = 1; n <= 4; n++) {
      await outbox.publishInTransaction(() => undefined, {
        aggregateType: 'account',
        aggregateId: n,
        type: 'account.created',
        data: { n },
        id: `evt-${n}`,
      });
    }
    // No relay runs: all are pending. Two are marked FAILED as the relay would after maxAttempts.
    await ctx.pool.query(
      `UPDATE \`${table}\` SET status = 'FAILED', attempts = 5, last_error = 'bus refused' WHERE event_id IN ('evt-2', 'evt-3')`,
    );
    const dashboard = await start({ connection: ctx.redis, prefix, outbox });
    return { table, dashboard };
  }

  it('shows the backlog and failed rows, and retries one and then all', async () => {
    const { table, dashboard } = await withFailedRows();
    const overview = await json(await dashboard.get('api/overview'));
    expect(overview.outboxConfigured).toBe(true);
    expect(overview.outbox).toMatchObject({ pending: 2, failed: 2, published: 0 });
    const detail = await json(await dashboard.get('api/outbox'));
    expect(detail).toMatchObject({ table, pending: 2, failed: 2 });
    expect(detail.failedRows.map((row: any) => [row.eventId, row.lastError, row.attempts])).toEqual([
      ['evt-2', 'bus refused', 5],
      ['evt-3', 'bus refused', 5],
    ]);
    expect(await json(await dashboard.post('api/outbox/retry-failed', { eventIds: ['evt-3'] }))).toEqual({
      retried: 1,
    });
    expect(await ctx.statuses(table)).toEqual({ PENDING: 3, FAILED: 1 });
    expect(await json(await dashboard.post('api/outbox/retry-failed', {}))).toEqual({ retried: 1 });
    expect(await ctx.statuses(table)).toEqual({ PENDING: 4 });
    expect(dashboard.logs.map((entry) => [entry.action, entry.outcome])).toEqual([
      ['outbox.retryFailed', 'done'],
      ['outbox.retryFailed', 'done'],
    ]);
  });

  it('the outbox screen in Chromium: failed rows listed, Retry puts one back', async () => {
    const { table, dashboard } = await withFailedRows();
    if (!existsSync('/usr/bin/chromium')) throw new Error('/usr/bin/chromium is missing: apt-get install chromium');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
      await page.goto(`${dashboard.url}#/outbox`);
      const failed = page.getByTestId('outbox-failed');
      await expect.poll(() => failed.locator('tbody tr').count(), { timeout: 20_000 }).toBe(2);
      expect(await page.getByTestId('outbox-stats').textContent()).toContain('failed 2');
      const shots = process.env.SCREENSHOTS_DIR ?? mkdtempSync(join(tmpdir(), 'sluice-dashboard-'));
      mkdirSync(shots, { recursive: true });
      await page.screenshot({ path: join(shots, 'outbox.png'), fullPage: true });
      await failed.locator('tr', { hasText: 'evt-2' }).getByRole('button', { name: 'Retry' }).click();
      await expect.poll(() => failed.locator('tbody tr').count()).toBe(1);
      expect(await ctx.statuses(table)).toEqual({ PENDING: 3, FAILED: 1 });
    } finally {
      await browser.close();
    }
  });
});
