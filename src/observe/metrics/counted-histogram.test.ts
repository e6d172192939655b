import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CountedHistogram } from './counted-histogram.ts';

const buckets = [0.005, 0.01, 0.1, 1];
const observations: [string, string, number][] = [
  ['GET', '200', 0.004],
  ['GET', '200', 0.005],
  ['GET', '200', 0.05],
  ['GET', '404', 2],
  ['POST', '201', 0.0099],
  ['POST', '201', 1],
  ['GET', '200', 0.3],
];

/** prom-client's text for the same observations made through its own Histogram. */
async function reference(): Promise<string> {
  const registry = new Registry();
  const histogram = new Histogram({
    name: 'requests_seconds',
    help: 'Request durations',
    labelNames: ['method', 'status'],
    buckets,
    registers: [registry],
  });
  for (const [method, status, value] of observations) histogram.observe({ method, status }, value);
  return registry.metrics();
}

describe('CountedHistogram', () => {
  it('writes the very exposition prom-client writes for the same observations', async () => {
    const registry = new Registry();
    const histogram = new CountedHistogram({
      name: 'requests_seconds',
      help: 'Request durations',
      labelNames: ['method', 'status'],
      buckets,
      registers: [registry],
    });
    const series = new Map<string, ReturnType<typeof histogram.series>>();
    for (const [method, status, value] of observations) {
      const key = `${method} ${status}`;
      let found = series.get(key);
      if (found === undefined) {
        found = histogram.series({ method, status });
        series.set(key, found);
      }
      found.observe(value);
    }
    const lines = (text: string) => text.split('\n').sort();
    expect(lines(await registry.metrics())).toEqual(lines(await reference()));
  });

  it('counts nothing for a value that is not a finite number, and reset zeroes every series', async () => {
    const registry = new Registry();
    const histogram = new CountedHistogram({ name: 'h', help: 'h', labelNames: ['a'], buckets, registers: [registry] });
    const series = histogram.series({ a: 'x' });
    series.observe(Number.NaN);
    series.observe(Number.POSITIVE_INFINITY);
    series.observe(0.5);
    expect(series.count).toBe(1);
    expect(await registry.metrics()).toContain('h_bucket{le="+Inf",a="x"} 1');
    histogram.reset();
    expect(await registry.metrics()).toContain('h_count{a="x"} 0');
  });
});
