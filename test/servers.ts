import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { waitFor } from './wait.js';
import { freePort } from './ports.js';

export { freePort };

/** A throwaway redis-server on 127.0.0.1 that keeps nothing on disk; resolves once it answers. */
export async function startRedis(port: number, extraArgs: string[] = []): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs],
    { stdio: 'ignore' },
  );
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on('error', () => undefined);
  try {
    await waitFor(async () => {
      try {
        if (probe.status !== 'ready') await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        probe.disconnect();
        return false;
      }
    }, `redis-server on port ${port}`);
  } finally {
    probe.disconnect();
  }
  return child;
}

/**
 * A throwaway Redis Cluster of three masters on 127.0.0.1, formed and answering. `stop` kills the nodes
 * and removes their files. (test/cluster.test.ts predates it and forms its own the same way.)
 */
export async function startCluster(): Promise<{ ports: number[]; stop(): Promise<void> }> {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const nodes = await Promise.all(
    ports.map((port) =>
      startRedis(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--dir', dir]),
    ),
  );
  const stop = async () => {
    for (const node of nodes) node.kill('SIGKILL');
    await Promise.all(
      nodes.filter((node) => node.exitCode === null && node.signalCode === null).map((node) => once(node, 'exit')),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    execFileSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      {
        stdio: 'ignore',
      },
    );
    await waitFor(
      () =>
        ports.every((port) =>
          execFileSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' }).includes(
            'cluster_state:ok',
          ),
        ),
      'the cluster to form',
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { ports, stop };
}
