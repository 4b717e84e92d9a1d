import { configDefaults, defineConfig } from 'vitest/config';
import { ON_CLUSTER, SINGLE_NODE_ONLY } from './test/setup/topology.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // SLUICE_TEST_TOPOLOGY=cluster runs the same files on a 3-master cluster, but for those that need one node.
    exclude: [...configDefaults.exclude, ...(ON_CLUSTER ? Object.keys(SINGLE_NODE_ONLY) : [])],
    // `npm test -- test/cli.test.ts` names only single-node files: the cluster run then has nothing to do.
    passWithNoTests: ON_CLUSTER,
    globalSetup: ['./test/setup/services.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // A test that fails once is a bug to fix, not to retry.
    retry: 0,
  },
});
