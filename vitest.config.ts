import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Multi-process cluster tests spawn real replicas; keep parallelism modest on 2 cores.
    maxWorkers: 2,
  },
})
