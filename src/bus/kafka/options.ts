import { GantryError } from '../../errors/gantry-error.ts';

/** The SASL mechanisms the Kafka bus accepts in its URL (`?sasl=scram-sha-512`). */
export type KafkaSaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

/** One bootstrap broker. */
export interface KafkaBroker {
  host: string;
  port: number;
}

/**
 * Where and how a {@link KafkaBus} connects, read from its URL by {@link parseKafkaUrl}
 * (`kafka://broker-1:9092,broker-2:9092?partitions=12&claimTimeoutMs=60000`).
 */
export interface KafkaBusOptions {
  /** Bootstrap brokers; the client discovers the rest of the cluster from them. IPv6 hosts are kept without brackets. */
  brokers: KafkaBroker[];
  /** Partitions of each topic the bus creates (a stream's topic and its retry topics). Default 6. */
  partitions: number;
  /** Replication factor of the topics the bus creates; `-1` leaves it to the broker's `default.replication.factor`. */
  replicas: number;
  /**
   * How long a delivery may stay unsettled in a live consumer before the adapter hands it to the group again through
   * the retry topic, with its attempt counted, in ms. Default 30,000. A consumer that dies is covered by Kafka itself:
   * its partitions move to another member after {@link sessionTimeoutMs}.
   */
  claimTimeoutMs: number;
  /** Kafka's group session timeout: how long a silent member keeps its partitions, in ms. Default 10,000. */
  sessionTimeoutMs: number;
  /** How often a member heartbeats the group coordinator, in ms; at most `sessionTimeoutMs`. Default 1,000. */
  heartbeatIntervalMs: number;
  /** Longest wait of one fetch when a partition has nothing new, in ms; bounds how late a rebalance is noticed. Default 500. */
  maxWaitMs: number;
  /** Connect with TLS (`?tls=true`). Default false. */
  tls: boolean;
  /** SASL credentials, from the URL's user and password; the mechanism from `?sasl=` (default PLAIN). */
  sasl?: { mechanism: KafkaSaslMechanism; username: string; password: string };
}

type NumericOption =
  | 'partitions'
  | 'replicas'
  | 'claimTimeoutMs'
  | 'sessionTimeoutMs'
  | 'heartbeatIntervalMs'
  | 'maxWaitMs';

const DEFAULTS: Omit<KafkaBusOptions, 'brokers' | 'sasl'> = {
  partitions: 6,
  replicas: -1,
  claimTimeoutMs: 30_000,
  sessionTimeoutMs: 10_000,
  heartbeatIntervalMs: 1_000,
  maxWaitMs: 500,
  tls: false,
};

/** The smallest value each numeric option accepts. */
const MINIMUM: Record<NumericOption, number> = {
  partitions: 1,
  replicas: -1,
  claimTimeoutMs: 100,
  sessionTimeoutMs: 1_000,
  heartbeatIntervalMs: 100,
  maxWaitMs: 10,
};

const MECHANISMS: readonly KafkaSaslMechanism[] = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'];
const DEFAULT_PORT = 9092;

/**
 * Reads a `kafka://` URL: the bootstrap brokers (`host:port`, comma-separated, port 9092 when omitted), SASL user and
 * password, and the options of {@link KafkaBusOptions} from the query string. An unknown or malformed option fails
 * with `GANTRY_ERR_CONFIG_INVALID`; the error names the option, never the rest of the URL (it may hold a password).
 *
 * A list of brokers is only accepted as a string: WHATWG `URL` rejects `host:port,host:port` as a host.
 *
 * @example
 * parseKafkaUrl('kafka://k1:9092,k2:9092?partitions=12&claimTimeoutMs=60000');
 * // → { brokers: [{ host: 'k1', port: 9092 }, { host: 'k2', port: 9092 }], partitions: 12, claimTimeoutMs: 60000, ... }
 */
export function parseKafkaUrl(url: string | URL): KafkaBusOptions {
  const text = typeof url === 'string' ? url : url.href;
  const match = /^kafka:\/\/(?:([^@/?#]*)@)?([^/?#]*)\/?([?][^#]*)?(?:#.*)?$/i.exec(text);
  if (!match) throw invalid(`the URL must look like kafka://host:port[,host:port][?option=value]`);
  const [, userInfo, hostList = '', query = ''] = match;
  const options: KafkaBusOptions = { ...DEFAULTS, brokers: parseBrokers(hostList) };

  let mechanism: KafkaSaslMechanism = 'PLAIN';
  for (const [name, value] of new URLSearchParams(query)) {
    if (name === 'tls') {
      if (value !== 'true' && value !== 'false') throw invalid(`option 'tls' must be true or false, got '${value}'`);
      options.tls = value === 'true';
      continue;
    }
    if (name === 'sasl') {
      const upper = value.toUpperCase() as KafkaSaslMechanism;
      if (!MECHANISMS.includes(upper))
        throw invalid(`option 'sasl' must be one of ${MECHANISMS.join(', ')}, got '${value}'`);
      mechanism = upper;
      continue;
    }
    if (!(name in MINIMUM)) {
      throw invalid(`unknown option '${name}'; use one of tls, sasl, ${Object.keys(MINIMUM).join(', ')}`);
    }
    const key = name as NumericOption;
    const number = Number(value);
    if (value.trim() === '' || !Number.isSafeInteger(number) || number < MINIMUM[key]) {
      throw invalid(`option '${name}' must be an integer of at least ${MINIMUM[key]}, got '${value}'`);
    }
    options[key] = number;
  }

  if (options.replicas === 0) throw invalid(`option 'replicas' must be -1 (broker default) or at least 1, got '0'`);
  if (options.heartbeatIntervalMs > options.sessionTimeoutMs) {
    throw invalid(
      `option 'heartbeatIntervalMs' (${options.heartbeatIntervalMs}) must not exceed sessionTimeoutMs (${options.sessionTimeoutMs})`,
    );
  }
  if (userInfo !== undefined && userInfo !== '') {
    const colon = userInfo.indexOf(':');
    const username = decode(colon === -1 ? userInfo : userInfo.slice(0, colon), 'user name');
    const password = colon === -1 ? '' : decode(userInfo.slice(colon + 1), 'password');
    options.sasl = { mechanism, username, password };
  }
  return options;
}

function parseBrokers(hostList: string): KafkaBroker[] {
  const brokers: KafkaBroker[] = [];
  for (const entry of hostList.split(',')) {
    const trimmed = entry.trim();
    if (trimmed === '') throw invalid(`every broker must be host or host:port, got an empty entry`);
    const hostPort = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(trimmed);
    if (!hostPort) throw invalid(`every broker must be host or host:port, got '${trimmed}'`);
    const port = hostPort[2] === undefined ? DEFAULT_PORT : Number(hostPort[2]);
    if (port < 1 || port > 65_535) throw invalid(`broker port must be within 1-65535, got '${hostPort[2]}'`);
    // Brackets only delimit an IPv6 literal in the URL; sockets want the bare address.
    const host = (hostPort[1] as string).replace(/^\[(.*)\]$/, '$1');
    brokers.push({ host, port });
  }
  return brokers;
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw invalid(`the ${what} is not valid percent-encoding`);
  }
}

function invalid(message: string): GantryError {
  return new GantryError('GANTRY_ERR_CONFIG_INVALID', `kafka bus URL: ${message}`);
}
