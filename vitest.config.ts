import { defineConfig } from 'vitest/config'

// One run covers every package; end-to-end tests start real processes and
// need the compiled dist/ (the `test` script builds first).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'shared', include: ['shared/test/**/*.test.ts'] } },
      { test: { name: 'profiles', include: ['firmware-profiles/test/**/*.test.ts'] } },
      { test: { name: 'hub', include: ['hub/test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 } },
      { test: { name: 'agent', include: ['agent/test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // e2e suites each start a hub and several agent processes: run them one at a time on 2 cores.
          fileParallelism: false,
        },
      },
    ],
  },
})
