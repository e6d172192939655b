import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const alias = {
  'gantry/testing': fileURLToPath(new URL('./src/testing/index.ts', import.meta.url)),
  'gantry/calls': fileURLToPath(new URL('./src/calls/index.ts', import.meta.url)),
  'gantry/db': fileURLToPath(new URL('./src/db/index.ts', import.meta.url)),
  'gantry/auth': fileURLToPath(new URL('./src/auth/index.ts', import.meta.url)),
  'gantry/observe': fileURLToPath(new URL('./src/observe/index.ts', import.meta.url)),
  'gantry/smtp': fileURLToPath(new URL('./src/drivers/smtp/index.ts', import.meta.url)),
  'gantry/mysql': fileURLToPath(new URL('./src/drivers/mysql/index.ts', import.meta.url)),
  'gantry/jobs': fileURLToPath(new URL('./src/jobs/index.ts', import.meta.url)),
  gantry: fileURLToPath(new URL('./src/index.ts', import.meta.url)),
};

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'examples/**/*.test.ts', 'test/unit/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          // Some start real processes on a loaded CI machine; see the integration project.
          retry: process.env.CI ? 1 : 0,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          // These tests kill processes and restart brokers under a loaded CI machine; one more try in CI tells a
          // timing accident from a real fault (a fault fails both), and the report names every retried test.
          retry: process.env.CI ? 1 : 0,
        },
      },
    ],
  },
});
