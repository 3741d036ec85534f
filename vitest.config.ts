import { defineConfig } from 'vitest/config'

// One run covers every package; end-to-end tests start real processes and
// need the compiled dist/ (the `test` script builds first). Two groups, one
// after the other: the unit projects first, two files at a time (2 cores);
// then the e2e suites, one at a time, each on a machine nothing else is using
// (they start a hub and several agent processes and time their waits).
const unit = { sequence: { groupOrder: 0 }, maxWorkers: 2 }
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'shared', include: ['shared/test/**/*.test.ts'], ...unit } },
      { test: { name: 'profiles', include: ['firmware-profiles/test/**/*.test.ts'], ...unit } },
      {
        test: {
          name: 'hub',
          include: ['hub/test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          ...unit,
        },
      },
      {
        test: {
          name: 'agent',
          include: ['agent/test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          ...unit,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 1 },
          maxWorkers: 1,
        },
      },
    ],
  },
})
