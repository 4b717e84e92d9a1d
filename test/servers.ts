import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { waitFor } from './wait.js';
import { freePort } from './ports.js';

export { freePort };

/** A throwaway redis-server on 127.0.0.1 that keeps nothing on disk; resolves once it answers. */
export async function startRedis(port: number, extraArgs: string[] = []): Promise<ChildProcess> {
  // Files (a replica's full sync writes dump.rdb, cluster configs) go to the temporary folder unless given a --dir.
  const dir = extraArgs.includes('--dir') ? [] : ['--dir', tmpdir()];
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...dir, ...extraArgs],
    { stdio: 'ignore' },
  );
  const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on('error', () => undefined);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  try {
    await waitFor(async () => {
      // A server that could not bind (the port was taken since freePort, by another test file's server) exits:
      // fail at once rather than talk to whoever holds the port.
      if (exited()) throw new PortTakenError(port);
      try {
        if (probe.status !== 'ready') await probe.connect();
        // The server answering must be ours, not another file's that got the port first.
        const info = await probe.info('server');
        if (Number(/process_id:(\d+)/.exec(info)?.[1]) !== child.pid) {
          if (exited()) throw new PortTakenError(port);
          return false;
        }
        return true;
      } catch (error) {
        if (error instanceof PortTakenError) throw error;
        probe.disconnect();
        return false;
      }
    }, `redis-server on port ${port}`);
  } catch (error) {
    if (!exited()) child.kill('SIGKILL');
    throw error;
  } finally {
    probe.disconnect();
  }
  return child;
}

/** startRedis's server exited before answering: its port was taken (startCluster then tries other ports). */
export class PortTakenError extends Error {
  constructor(readonly port: number) {
    super(`redis-server on port ${port} exited before answering: the port (or its cluster bus port) was taken`);
  }
}

/** A node of a cluster started by startCluster: its port and its process (to stop or kill it by its PID). */
export interface ClusterNode {
  port: number;
  /** the node's redis-server; replaced by `restart` */
  process: ChildProcess;
}

/**
 * A throwaway Redis Cluster of three masters on 127.0.0.1, formed and answering. `stop` kills the nodes
 * and removes their files. (test/cluster.test.ts predates it and forms its own the same way.)
 *
 * With `replicas: 1`: six nodes, a replica for each master, `cluster-node-timeout` 1000 ms (a dead master is
 * failed over in about two seconds) and `cluster-replica-validity-factor 0` (a replica that lost its link for a
 * while may still take over: a test stops one on purpose); resolves once every replica is in sync.
 * `restart(node)` starts a killed node again on its port with its cluster files (it rejoins: a master that was
 * failed over comes back as a replica of its successor).
 */
export async function startCluster(options: { replicas?: 0 | 1 } = {}): Promise<StartedCluster> {
  // Ports are picked free, but test files start servers in parallel: one taken meanwhile means new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(options);
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt === 3) throw error;
    }
  }
}

export interface StartedCluster {
  ports: number[];
  nodes: ClusterNode[];
  restart(node: ClusterNode): Promise<void>;
  stop(): Promise<void>;
}

async function startClusterOnce(options: { replicas?: 0 | 1 }): Promise<StartedCluster> {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const replicas = options.replicas ?? 0;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
  const ports: number[] = [];
  for (let n = 0; n < 3 * (1 + replicas); n++) ports.push(await freePort());
  const failover = replicas > 0 ? ['--cluster-node-timeout', '1000', '--cluster-replica-validity-factor', '0'] : [];
  const processes: ChildProcess[] = [];
  const nodeArgs = (port: number) => [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    `nodes-${port}.conf`,
    '--dir',
    dir,
    ...failover,
  ];
  // vitest answers SIGINT and SIGTERM with process.exit() and skips teardown: the nodes and their folder go
  // with the process whatever ends it.
  const onExit = () => {
    for (const node of processes) if (node.exitCode === null && node.signalCode === null) node.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const stop = async () => {
    process.off('exit', onExit);
    for (const node of processes) if (node.exitCode === null && node.signalCode === null) node.kill('SIGKILL');
    await Promise.all(
      processes.filter((node) => node.exitCode === null && node.signalCode === null).map((node) => once(node, 'exit')),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Every start settles before a failure is thrown, so stop() sees every process that was started.
    const started = await Promise.allSettled(
      ports.map(async (port) => processes.push(await startRedis(port, nodeArgs(port)))),
    );
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    execFileSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { stdio: 'ignore' },
    );
    const cli = (port: number, ...args: string[]) =>
      execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' });
    await waitFor(
      () => ports.every((port) => cli(port, 'cluster', 'info').includes('cluster_state:ok')),
      'the cluster to form',
      20_000,
      150, // each check runs redis-cli on every node: not every 10 ms on a 2-core machine
    );
    if (replicas > 0) {
      await waitFor(
        () =>
          ports.every((port) => {
            const info = cli(port, 'info', 'replication');
            return info.includes('role:master')
              ? info.includes('connected_slaves:1') && /slave0:.*state=online/.test(info)
              : info.includes('master_link_status:up');
          }),
        'every replica to be in sync with its master',
        20_000,
        150,
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const byPort = new Map(processes.map((child) => [Number(child.spawnargs[2]), child]));
  const restart = async (node: ClusterNode) => {
    if (node.process.exitCode === null && node.process.signalCode === null) throw new Error(`node ${node.port} runs`);
    node.process = await startRedis(node.port, nodeArgs(node.port));
    processes.push(node.process);
  };
  return { ports, nodes: ports.map((port) => ({ port, process: byPort.get(port)! })), restart, stop };
}
