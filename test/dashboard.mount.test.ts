import middie from '@fastify/middie';
import express from 'express';
import Fastify from 'fastify';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createDashboard, type DashboardHandler, type DashboardLogEntry } from '../src/dashboard/index.js';
import { seedQueues } from './dashboard.helpers.js';
import { useRedis } from './helpers.js';

/**
 * The handler mounted in the frameworks the README names, the real ones: Express (app.use(path, handler)) and
 * Fastify (through @fastify/middie). Page, API read and an action work under the mount path.
 */
describe('dashboard mounted in an application', () => {
  const r = useRedis();
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  async function exercise(origin: string, seed: Awaited<ReturnType<typeof seedQueues>>, logs: DashboardLogEntry[]) {
    const bare = await fetch(`${origin}/ops/queues`, { redirect: 'manual' });
    expect(bare.status).toBe(301);
    expect(bare.headers.get('location')).toBe('/ops/queues/');
    const page = await fetch(`${origin}/ops/queues/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('assets/app.js');
    expect((await fetch(`${origin}/ops/queues/assets/app.js`)).status).toBe(200);
    const overview = (await (await fetch(`${origin}/ops/queues/api/overview`)).json()) as {
      queues: { name: string }[];
    };
    expect(overview.queues.map((q) => q.name).sort()).toEqual(['orders', 'payments']);
    const replay = await fetch(`${origin}/ops/queues/api/queues/payments/replay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ids: [seed.deadId] }),
    });
    expect(await replay.json()).toEqual({ replayed: 1, ids: [seed.deadId] });
    expect((await seed.payments.getMessage(seed.deadId))?.status).toBe('PENDING');
    expect(logs).toEqual([expect.objectContaining({ action: 'queue.replay', outcome: 'done' })]);
    // The application's own routes are untouched.
    expect(await (await fetch(`${origin}/health`)).text()).toBe('ok');
  }

  function dashboardFor(prefix: string, logs: DashboardLogEntry[]): DashboardHandler {
    const dashboard = createDashboard({ connection: r.redis, prefix, log: (entry) => logs.push(entry) });
    closers.push(() => dashboard.close());
    return dashboard;
  }

  it('Express: app.use(path, handler), with express.json() parsing bodies before it', async () => {
    const prefix = r.prefix();
    const seed = await seedQueues((name) => r.queue(name, { prefix }));
    const logs: DashboardLogEntry[] = [];
    const app = express();
    app.use(express.json());
    app.get('/health', (_, response) => void response.send('ok'));
    app.use('/ops/queues', dashboardFor(prefix, logs));
    const server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    await exercise(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, seed, logs);
  });

  it('Fastify: @fastify/middie, then app.use(path, handler)', async () => {
    const prefix = r.prefix();
    const seed = await seedQueues((name) => r.queue(name, { prefix }));
    const logs: DashboardLogEntry[] = [];
    const app = Fastify();
    await app.register(middie);
    app.use('/ops/queues', dashboardFor(prefix, logs));
    app.get('/health', async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    await exercise(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, seed, logs);
  });
});
