import { describe, expect, it } from 'vitest';
import { parseKafkaUrl } from './options.ts';

describe('parseKafkaUrl', () => {
  it('reads one broker with the defaults', () => {
    expect(parseKafkaUrl('kafka://localhost:9092')).toEqual({
      brokers: [{ host: 'localhost', port: 9092 }],
      partitions: 6,
      replicas: -1,
      claimTimeoutMs: 30_000,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1_000,
      maxWaitMs: 500,
      tls: false,
    });
  });

  it('reads a comma-separated list of brokers, with 9092 as the default port', () => {
    expect(parseKafkaUrl('kafka://k1:19092,k2,[::1]:29092/').brokers).toEqual([
      { host: 'k1', port: 19092 },
      { host: 'k2', port: 9092 },
      { host: '::1', port: 29092 },
    ]);
  });

  it('accepts the URL object the bus resolver hands over', () => {
    expect(parseKafkaUrl(new URL('kafka://broker:9093?partitions=3')).brokers).toEqual([
      { host: 'broker', port: 9093 },
    ]);
  });

  it('reads the options of the query string', () => {
    const options = parseKafkaUrl(
      'kafka://k1:9092?partitions=12&replicas=3&claimTimeoutMs=1500&sessionTimeoutMs=6000&heartbeatIntervalMs=500&maxWaitMs=100&tls=true',
    );
    expect(options).toMatchObject({
      partitions: 12,
      replicas: 3,
      claimTimeoutMs: 1500,
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      maxWaitMs: 100,
      tls: true,
    });
  });

  it('takes SASL credentials from the user info, percent-decoded, PLAIN unless told', () => {
    expect(parseKafkaUrl('kafka://app:p%40ss%3Aword@k1:9092').sasl).toEqual({
      mechanism: 'PLAIN',
      username: 'app',
      password: 'p@ss:word',
    });
    expect(parseKafkaUrl('kafka://app:pw@k1:9092?sasl=scram-sha-512').sasl).toEqual({
      mechanism: 'SCRAM-SHA-512',
      username: 'app',
      password: 'pw',
    });
    expect(parseKafkaUrl('kafka://k1:9092').sasl).toBeUndefined();
  });

  it.each([
    ['an unknown option', 'kafka://k1?partition=3', /unknown option 'partition'/],
    ['a number below its minimum', 'kafka://k1?partitions=0', /'partitions' must be an integer of at least 1/],
    ['a number that is not an integer', 'kafka://k1?claimTimeoutMs=1.5', /'claimTimeoutMs' must be an integer/],
    ['an empty number', 'kafka://k1?maxWaitMs=', /'maxWaitMs' must be an integer/],
    ['zero replicas', 'kafka://k1?replicas=0', /'replicas' must be -1/],
    [
      'a heartbeat longer than the session',
      'kafka://k1?sessionTimeoutMs=2000&heartbeatIntervalMs=3000',
      /must not exceed sessionTimeoutMs/,
    ],
    ['a bad tls flag', 'kafka://k1?tls=yes', /'tls' must be true or false/],
    ['an unknown SASL mechanism', 'kafka://u:p@k1?sasl=kerberos', /'sasl' must be one of PLAIN/],
    ['an empty broker', 'kafka://k1,,k2', /empty entry/],
    ['a port out of range', 'kafka://k1:70000', /port must be within/],
    ['another scheme', 'redis://k1:9092', /must look like kafka:\/\//],
  ])('refuses %s with GANTRY_ERR_CONFIG_INVALID', (_what, url, message) => {
    expect(() => parseKafkaUrl(url)).toThrow(message);
    expect(() => parseKafkaUrl(url)).toThrow(expect.objectContaining({ code: 'GANTRY_ERR_CONFIG_INVALID' }));
  });

  it('never repeats the password in an error', () => {
    expect(() => parseKafkaUrl('kafka://app:secret-pw@k1?bogus=1')).toThrow(
      expect.not.objectContaining({ message: expect.stringContaining('secret-pw') }),
    );
  });
});
