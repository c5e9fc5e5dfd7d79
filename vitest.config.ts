import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['impl/**/*.test.ts', 'model/**/*.test.ts', 'properties/**/*.test.ts', 'reports/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    coverage: { provider: 'v8', include: ['impl/**', 'model/**', 'properties/**', 'reports/**'] },
  },
});
