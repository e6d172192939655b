#!/usr/bin/env node
// Launches the CLI on TypeScript source, so host files and services need no build step. Where Node strips types itself
// (Node ≥ 22.18), Gantry and the host file load natively: no transform beyond erasing types, so the request path runs
// the code as written. A host file or service that needs more than erasing (an enum, a namespace) is loaded again
// under tsx (see src/cli/load-host.ts); GANTRY_TSX=1, or a Node without type stripping, registers tsx up front.
if (!process.features.typescript || process.env.GANTRY_TSX === '1') {
  const { register } = await import('tsx/esm/api');
  register();
}
await import('../src/cli/main.ts');
