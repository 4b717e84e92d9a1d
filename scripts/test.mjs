// `npm test`: the whole suite twice, once on a single Redis node and once on a 3-master Redis Cluster that the
// global setup starts itself (SLUICE_TEST_TOPOLOGY, see test/setup/topology.ts), one after the other. Arguments
// go to both vitest runs; an `--outputFile=<path>` (or `--outputFile <path>`) becomes one file per topology,
// `<path without .json>.single.json` and `.cluster.json`. Both runs always run; the exit code is non-zero if
// either failed. SLUICE_TEST_TOPOLOGIES=single (or cluster) runs only that one.
import { spawn } from 'node:child_process';

const topologies = (process.env.SLUICE_TEST_TOPOLOGIES ?? 'single,cluster').split(',').filter(Boolean);
for (const topology of topologies) {
  if (topology !== 'single' && topology !== 'cluster') {
    console.error(`SLUICE_TEST_TOPOLOGIES: unknown topology "${topology}" (single, cluster)`);
    process.exit(2);
  }
}

const perTopology = (file, topology) => `${file.replace(/\.json$/, '')}.${topology}.json`;

function argsFor(topology) {
  const args = process.argv.slice(2);
  return args.map((arg, i) => {
    if (arg.startsWith('--outputFile='))
      return `--outputFile=${perTopology(arg.slice('--outputFile='.length), topology)}`;
    if (args[i - 1] === '--outputFile') return perTopology(arg, topology);
    return arg;
  });
}

const results = [];
for (const topology of topologies) {
  console.log(`\n[sluice tests] ${topology === 'single' ? 'single Redis node' : '3-master Redis Cluster'}: vitest run`);
  const started = Date.now();
  const child = spawn('npx', ['vitest', 'run', ...argsFor(topology)], {
    stdio: 'inherit',
    env: { ...process.env, SLUICE_TEST_TOPOLOGY: topology },
  });
  // A signal to this wrapper goes on to vitest, which then stops its servers; then no second run starts.
  let signalled = null;
  const forward = (signal) => {
    signalled = signal;
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const status = await new Promise((resolve) => {
    child.on('error', (error) => {
      console.error(`[sluice tests] could not start vitest: ${error.message}`);
      resolve(1);
    });
    child.on('exit', (code) => resolve(code ?? 1));
  });
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  results.push({ topology, status, seconds: Math.round((Date.now() - started) / 1000) });
  if (signalled) break;
}
console.log(
  `\n[sluice tests] ${results.map((r) => `${r.topology}: ${r.status === 0 ? 'passed' : 'FAILED'} in ${r.seconds} s`).join('; ')}`,
);
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
