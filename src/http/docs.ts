import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';

const require = createRequire(import.meta.url);

/**
 * Serves the API docs UI at `/docs` from the swagger-ui-dist package on disk (no CDN), pointed at `/openapi.json`.
 */
export function registerDocsUi(app: FastifyInstance, title: string): void {
  const dist = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const assets: Record<string, string> = {
    'swagger-ui.css': 'text/css; charset=utf-8',
    'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
  };
  const cache = new Map<string, Buffer>();
  app.get('/docs', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page(title)));
  app.get<{ Params: { file: string } }>('/docs/assets/:file', async (request, reply) => {
    const type = assets[request.params.file];
    if (!type) return reply.callNotFound();
    let body = cache.get(request.params.file);
    if (!body) {
      body = await readFile(path.join(dist, request.params.file));
      cache.set(request.params.file, body);
    }
    return reply.type(type).header('cache-control', 'public, max-age=86400').send(body);
  });
}

function page(title: string): string {
  const safe = title.replace(/[<>&"]/g, '');
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${safe} — API</title><link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.onload = () => { window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#ui' }); };</script>
</body>
</html>`;
}
