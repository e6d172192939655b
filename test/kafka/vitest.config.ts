import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The Kafka tests need a broker (KAFKA_URL), which CI does not have, so they live outside the root config's projects
// and run by their own command:
//   npx vitest run --config test/kafka/vitest.config.ts --project kafka           conformance and Kafka specifics
//   npx vitest run --config test/kafka/vitest.config.ts --project kafka-restart   the manual broker-restart check
const root = fileURLToPath(new URL('../..', import.meta.url));
const alias = {
  'gantry/testing': fileURLToPath(new URL('../../src/testing/index.ts', import.meta.url)),
  gantry: fileURLToPath(new URL('../../src/index.ts', import.meta.url)),
};

export default defineConfig({
  root,
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'kafka',
          root,
          include: ['test/kafka/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'kafka-restart',
          root,
          include: ['test/kafka/restart/*.test.ts'],
          // Long enough for a person to restart the broker by hand.
          testTimeout: 900_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
