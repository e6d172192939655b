import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customers } from '../../examples/customers/service.ts';

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  instance: string;
  errors?: { path: string; message: string }[];
}

describe('bad input never gives a 500: every answer is problem+json', () => {
  let app: TestHost;
  beforeAll(async () => {
    app = await startTestHost({ services: [customers], config: { host: { bodyLimitBytes: 4096 } } });
  });
  afterAll(async () => app.stop());

  async function expectProblem(
    method: string,
    url: string,
    status: number,
    code: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ProblemBody> {
    const res = await app.request(method, url, body, headers);
    expect(res.status, `${method} ${url}: ${res.text}`).toBe(status);
    expect(res.headers['content-type']).toContain('application/problem+json');
    const problem = res.body as ProblemBody;
    expect(problem).toMatchObject({ status, code, instance: url.split('?')[0] });
    expect(problem.type).toBe(`urn:gantry:error:${code}`);
    expect(problem.requestId).toBe(res.headers['x-request-id']);
    return problem;
  }

  it('malformed JSON', async () => {
    await expectProblem('POST', '/customers', 400, 'GANTRY_ERR_HTTP_MALFORMED', '{"name": "x",');
  });

  it('an empty JSON body', async () => {
    await expectProblem('POST', '/customers', 400, 'GANTRY_ERR_HTTP_MALFORMED', '');
  });

  it('wrong types, listing every failing field', async () => {
    const problem = await expectProblem('POST', '/customers', 400, 'GANTRY_ERR_HTTP_VALIDATION', {
      name: 12,
      email: false,
    });
    expect(problem.errors?.map((e) => e.path).sort()).toEqual(['/body/email', '/body/name']);
  });

  it('missing fields, each named', async () => {
    const problem = await expectProblem('POST', '/customers', 400, 'GANTRY_ERR_HTTP_VALIDATION', {});
    expect(problem.errors).toEqual(
      expect.arrayContaining([
        { path: '/body/name', message: 'is required' },
        { path: '/body/email', message: 'is required' },
      ]),
    );
  });

  it('extra fields', async () => {
    const problem = await expectProblem('POST', '/customers', 400, 'GANTRY_ERR_HTTP_VALIDATION', {
      name: 'A',
      email: 'a@b.co',
      admin: true,
    });
    expect(problem.errors).toEqual([{ path: '/body/admin', message: 'is not allowed' }]);
  });

  it('an invalid email and a name too long', async () => {
    const problem = await expectProblem('POST', '/customers', 400, 'GANTRY_ERR_HTTP_VALIDATION', {
      name: 'x'.repeat(201),
      email: 'not-an-email',
    });
    expect(problem.errors?.map((e) => e.path).sort()).toEqual(['/body/email', '/body/name']);
  });

  it('an empty patch', async () => {
    await expectProblem(
      'PATCH',
      '/customers/7c9e6679-7425-40de-944b-e07fc1f90ae7',
      400,
      'GANTRY_ERR_HTTP_VALIDATION',
      {},
    );
  });

  it('an oversized body', async () => {
    await expectProblem('POST', '/customers', 413, 'GANTRY_ERR_HTTP_PAYLOAD_TOO_LARGE', {
      name: 'x'.repeat(10_000),
      email: 'a@b.co',
    });
  });

  it('a body that is not JSON', async () => {
    await expectProblem('POST', '/customers', 415, 'GANTRY_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE', 'name=x', {
      'content-type': 'application/x-www-form-urlencoded',
    });
  });

  it('a bad UUID in the path', async () => {
    const problem = await expectProblem('GET', '/customers/not-a-uuid', 400, 'GANTRY_ERR_HTTP_VALIDATION');
    expect(problem.errors).toEqual([{ path: '/params/id', message: expect.stringContaining('uuid') }]);
  });

  it('query values of the wrong type or out of range', async () => {
    const problem = await expectProblem('GET', '/customers?page=zero&pageSize=1000', 400, 'GANTRY_ERR_HTTP_VALIDATION');
    expect(problem.errors?.map((e) => e.path).sort()).toEqual(['/query/page', '/query/pageSize']);
  });

  it('an unknown route', async () => {
    await expectProblem('GET', '/nothing/here', 404, 'GANTRY_ERR_HTTP_NOT_FOUND');
  });

  it('an unknown method on a known route, naming the allowed ones', async () => {
    const res = await app.request('DELETE', '/customers');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, POST');
    expect(res.body).toMatchObject({ code: 'GANTRY_ERR_HTTP_METHOD_NOT_ALLOWED' });
  });

  it('a missing customer', async () => {
    await expectProblem('GET', '/customers/7c9e6679-7425-40de-944b-e07fc1f90ae7', 404, 'GANTRY_ERR_HTTP_NOT_FOUND');
  });
});
