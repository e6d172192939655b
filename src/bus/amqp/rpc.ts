import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { RpcResponder, RpcTransport, RpcTransportOptions } from '../../calls/rpc-transport.ts';
import { rpcTimeout, rpcUnreachable } from '../../calls/rpc-transport.ts';
import { loadClient } from '../../db/load-client.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import type { CheckResult } from '../bus.ts';
import { AMQP_NO_DELAY, parseAmqpBusUrl } from './options.ts';

/** RabbitMQ's pseudo-queue for direct reply-to: replies go straight to the requesting channel's consumer. */
const REPLY_TO = 'amq.rabbitmq.reply-to';
/** Requests one responder channel holds unanswered at once. */
const RESPONDER_PREFETCH = 64;

type AmqpClient = typeof import('amqplib');

/**
 * Opens request/reply on the RabbitMQ broker an `amqp://` URL names, on a connection of its own.
 *
 * @example
 * const rpc = await openAmqpRpc(new URL('amqp://guest:guest@127.0.0.1:5672'), { instanceId: 'orders-1' });
 */
export async function openAmqpRpc(url: URL, options: RpcTransportOptions): Promise<AmqpRpcTransport> {
  const settings = parseAmqpBusUrl(url, `${options.instanceId}-rpc`);
  const client = await loadClient(() => import('amqplib'), 'amqplib');
  const transport = new AmqpRpcTransport(client, settings.connectUrl, settings.connectionName, settings.displayUrl);
  await transport.connection();
  return transport;
}

/**
 * RPC on RabbitMQ with direct reply-to: each subject is a non-durable, auto-deleted queue that every responder
 * consumes (the broker hands each request to one of them); callers publish to it through the default exchange with
 * `reply-to: amq.rabbitmq.reply-to` and a correlation id, and get the reply on their channel with no queue of their
 * own. Requests are published `mandatory`, so a subject with no queue (nobody ever served it, or every responder
 * left) comes back at once as `GANTRY_ERR_CALL_NO_INSTANCE`; each request expires in the queue with its timeout.
 *
 * @remarks A lost connection fails the calls in flight with `GANTRY_ERR_CALL_UNREACHABLE`; the next request opens a
 * new one. Responders do not follow a lost connection: the host's readiness shows the transport down.
 */
export class AmqpRpcTransport implements RpcTransport {
  readonly kind = 'amqp';
  private model: Promise<ChannelModel> | undefined;
  private requester: Promise<Channel> | undefined;
  private readonly pending = new Map<
    string,
    { resolve: (body: string) => void; reject: (error: GantryError) => void }
  >();
  private broken: Error | undefined;

  private readonly client: AmqpClient;
  private readonly connectUrl: string;
  private readonly connectionName: string;
  private readonly displayUrl: string;

  constructor(client: AmqpClient, connectUrl: string, connectionName: string, displayUrl: string) {
    this.client = client;
    this.connectUrl = connectUrl;
    this.connectionName = connectionName;
    this.displayUrl = displayUrl;
  }

  /** The open connection, opened on first use and again after it was lost. */
  connection(): Promise<ChannelModel> {
    this.model ??= this.client
      .connect(this.connectUrl, { clientProperties: { connection_name: this.connectionName }, noDelay: AMQP_NO_DELAY })
      .then(
        (model) => {
          this.broken = undefined;
          model.on('error', () => undefined);
          model.on('close', () => {
            this.broken = new Error('connection closed');
            this.model = undefined;
            this.requester = undefined;
            for (const [id, waiter] of this.pending) {
              this.pending.delete(id);
              waiter.reject(rpcUnreachable(id, this.broken));
            }
          });
          return model;
        },
        (error: unknown) => {
          this.model = undefined;
          throw new GantryError('GANTRY_ERR_CALL_UNREACHABLE', `cannot reach the AMQP broker at ${this.displayUrl}`, {
            cause: error,
          });
        },
      );
    return this.model;
  }

  async respond(subject: string, handle: (body: string) => Promise<string>): Promise<RpcResponder> {
    const channel = await (await this.connection()).createChannel();
    channel.on('error', () => undefined);
    await channel.assertQueue(subject, { durable: false, autoDelete: true });
    await channel.prefetch(RESPONDER_PREFETCH);
    const inFlight = new Set<Promise<void>>();
    const { consumerTag } = await channel.consume(subject, (msg: ConsumeMessage | null) => {
      if (!msg) return;
      const { replyTo, correlationId } = msg.properties as { replyTo?: string; correlationId?: string };
      const work = handle(msg.content.toString('utf8')).then(
        (reply) => {
          if (replyTo)
            channel.sendToQueue(replyTo, Buffer.from(reply), { correlationId, contentType: 'application/json' });
          channel.ack(msg);
        },
        () => channel.ack(msg),
      );
      inFlight.add(work);
      void work.catch(() => undefined).finally(() => inFlight.delete(work));
    });
    return {
      stop: async () => {
        await channel.cancel(consumerTag).catch(() => undefined);
        await Promise.all(inFlight);
        await channel.close().catch(() => undefined);
      },
    };
  }

  async request(subject: string, body: string, timeoutMs: number): Promise<string> {
    const channel = await this.replyChannel().catch((error: unknown) => {
      throw rpcUnreachable(subject, error);
    });
    const id = randomUUID();
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(rpcTimeout(subject, timeoutMs));
      }, timeoutMs);
      const settle = (): void => {
        clearTimeout(timer);
        this.pending.delete(id);
      };
      this.pending.set(id, {
        resolve: (reply) => {
          settle();
          resolve(reply);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      try {
        channel.publish('', subject, Buffer.from(body), {
          replyTo: REPLY_TO,
          correlationId: id,
          mandatory: true,
          expiration: String(Math.max(1, Math.ceil(timeoutMs))),
          contentType: 'application/json',
        });
      } catch (error) {
        settle();
        reject(rpcUnreachable(subject, error));
      }
    });
  }

  async check(): Promise<CheckResult> {
    return this.broken ? { ok: false, detail: `amqp rpc: ${this.broken.message}` } : { ok: true };
  }

  async close(): Promise<void> {
    const model = this.model;
    this.model = undefined;
    if (model) await (await model.catch(() => undefined))?.close().catch(() => undefined);
  }

  /** The channel requests are published on and replies arrive at (direct reply-to needs them on one channel). */
  private replyChannel(): Promise<Channel> {
    this.requester ??= (async () => {
      const channel = await (await this.connection()).createChannel();
      channel.on('error', () => undefined);
      channel.on('return', (msg: ConsumeMessage) => {
        const id = msg.properties.correlationId as string | undefined;
        const waiter = id === undefined ? undefined : this.pending.get(id);
        const subject = msg.fields.routingKey;
        waiter?.reject(new GantryError('GANTRY_ERR_CALL_NO_INSTANCE', `no instance serves ${subject}`));
      });
      await channel.consume(
        REPLY_TO,
        (msg: ConsumeMessage | null) => {
          if (!msg) return;
          const id = msg.properties.correlationId as string | undefined;
          if (id !== undefined) this.pending.get(id)?.resolve(msg.content.toString('utf8'));
        },
        { noAck: true },
      );
      return channel;
    })();
    this.requester.catch(() => {
      this.requester = undefined;
    });
    return this.requester;
  }
}
