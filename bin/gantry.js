#!/usr/bin/env node
// Launches the CLI with TypeScript support, so host files and services need no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
