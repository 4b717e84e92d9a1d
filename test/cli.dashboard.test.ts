import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { runCli, spawnCli } from './cli.helpers.js';
import { seedQueues } from './dashboard.helpers.js';
import { useRedis, waitFor } from './helpers.js';

/** `sluice dashboard` as an operator runs it: the built CLI as a child process, against the real Redis. */
describe('sluice dashboard', () => {
  const r = useRedis();

  it('serves the dashboard until SIGTERM, with the token from the environment, and exits 0', async () => {
    const prefix = r.prefix();
    const seed = await seedQueues((name) => r.queue(name, { prefix }));
    const token = 'cli-test-token-0123456789';
    const child = spawnCli(['dashboard', '--prefix', prefix, '--port', '0', '--json'], {
      SLUICE_DASHBOARD_TOKEN: token,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const { url, readOnly } = await waitFor(() => (stdout.includes('\n') ? JSON.parse(stdout) : null), 'the URL');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(readOnly).toBe(false);
    expect((await fetch(`${url}api/overview`)).status).toBe(401);
    const auth = { Authorization: `Bearer ${token}` };
    const overview = (await (await fetch(`${url}api/overview`, { headers: auth })).json()) as any;
    expect(overview.queues.find((q: any) => q.name === 'payments').deadLetters).toBe(1);
    const replay = await fetch(`${url}api/queues/payments/replay`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ids: [seed.deadId] }),
    });
    expect(replay.status).toBe(200);
    expect((await seed.payments.getMessage(seed.deadId))?.status).toBe('PENDING');
    const line = await waitFor(
      () => stderr.split('\n').find((l) => l.startsWith('sluice dashboard: ')),
      'the log line',
    );
    expect(JSON.parse(line.slice('sluice dashboard: '.length))).toMatchObject({
      who: 'token',
      action: 'queue.replay',
      outcome: 'done',
      result: { replayed: 1 },
    });
    child.kill('SIGTERM');
    const [code] = await once(child, 'close');
    expect(code).toBe(0);
  });

  it('read-only: actions are refused with READ_ONLY', async () => {
    const prefix = r.prefix();
    const seed = await seedQueues((name) => r.queue(name, { prefix }));
    const child = spawnCli(['dashboard', '--prefix', prefix, '--port', '0', '--read-only', '--json']);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const { url } = await waitFor(() => (stdout.includes('\n') ? JSON.parse(stdout) : null), 'the URL');
    const replay = await fetch(`${url}api/queues/payments/replay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ids: [seed.deadId] }),
    });
    expect(replay.status).toBe(403);
    expect(((await replay.json()) as any).error.code).toBe('READ_ONLY');
    expect((await seed.payments.getMessage(seed.deadId))?.status).toBe('FAILED');
    // Every action is logged, refused ones too: one JSON line on stderr.
    const line = await waitFor(
      () => stderr.split('\n').find((l) => l.startsWith('sluice dashboard: ')),
      'the log line',
    );
    expect(JSON.parse(line.slice('sluice dashboard: '.length))).toMatchObject({
      action: 'queue.replay',
      target: 'payments',
      outcome: 'refused',
      who: 'anonymous',
    });
    child.kill('SIGTERM');
    expect((await once(child, 'close'))[0]).toBe(0);
  });

  it('refuses a network address without a token, and a port in use (exit 2)', async () => {
    const open = await runCli(['dashboard', '--host', '0.0.0.0', '--port', '0']);
    expect(open.code).toBe(2);
    expect(open.stderr).toContain('reachable from the network, payloads included: give it a token (--token or');
    const first = spawnCli(['dashboard', '--port', '0', '--json']);
    let stdout = '';
    first.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const { url } = await waitFor(() => (stdout.includes('\n') ? JSON.parse(stdout) : null), 'the URL');
    const port = new URL(url).port;
    const second = await runCli(['dashboard', '--port', port]);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`port ${port} on 127.0.0.1 is in use`);
    first.kill('SIGTERM');
    await once(first, 'close');
  });
});
