import { hostname } from 'node:os';
import { type AnyService, service, t } from 'gantry';
import { OidcLogin, OidcSettingsSchema } from 'gantry/auth';
import { customerChanged } from '../customers/streams.ts';
import type { ChangeBroadcaster } from './broadcaster.ts';

/** Options of {@link webService}. */
export interface WebServiceOptions {
  /** Where each change goes; the `webApp` plugin of the same host streams it to the browsers. */
  broadcaster: ChangeBroadcaster;
  /**
   * The consumer group of this instance. Every instance that serves browsers needs every change, so each needs a group
   * of its own; defaults to {@link defaultWebGroup} (`web-<hostname>`).
   */
  group?: string | undefined;
  /**
   * The browser login of the web app: this service owns its settings (`services.web.settings.login`, or the
   * `GANTRY_OIDC_*` variables) and hands them over at setup. Login stays off while no issuer is set.
   */
  login?: OidcLogin | undefined;
}

/** The paths of the web app that need a session once login is on: its pages and stream, and the APIs it calls. */
export const WEB_APP_PATHS: readonly string[] = ['/app', '/customers', '/mailbox', '/replica/status'];

/**
 * The login of the web app: guards {@link WEB_APP_PATHS} and lands on `/app/`. Pass the same instance to
 * {@link webService} (which configures it) and add `login.plugin()` to the host's plugins.
 *
 * @example
 * const login = webLogin();
 * defineHost({ services: [customers, webService({ broadcaster, login })], plugins: [login.plugin(), webApp(broadcaster)] });
 */
export function webLogin(): OidcLogin {
  return new OidcLogin({ protect: WEB_APP_PATHS, home: '/app/' });
}

/**
 * The consumer group an instance uses when none is given: `web-` and the host name, in the characters every broker
 * accepts in a group name.
 *
 * A group per machine rather than per process: brokers keep a durable group after its consumer leaves, so a group per
 * process would leave one behind at every restart, while the host name comes back with the instance. (Where host
 * names change at every deploy, as pods' do, set the group from something stable, such as a StatefulSet's pod name.)
 *
 * @example
 * defaultWebGroup('Web-1.example.com'); // 'web-web-1-example-com'
 */
export function defaultWebGroup(host: string = hostname()): string {
  const name = host
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `web-${name || 'local'}`;
}

/**
 * The `web` service: consumes `customers.changed` in a group of its own per instance and hands every change to the
 * instance's broadcaster, from which the `webApp` plugin pushes it to the open browsers. It keeps nothing: a change
 * that arrives while no browser is connected is simply dropped.
 *
 * The group is fixed when the service is built (a consumer's group is part of its definition), so it is an option of
 * this factory, which the host file fills from `WEB_CONSUMER_GROUP`.
 *
 * @example
 * const broadcaster = new ChangeBroadcaster();
 * defineHost({ services: [customers, webService({ broadcaster })], plugins: [webApp(broadcaster)] });
 */
export function webService(options: WebServiceOptions): AnyService {
  const { broadcaster, login } = options;
  const group = options.group || defaultWebGroup();
  let detach: (() => void) | undefined;
  return (
    service({
      name: 'web',
      version: '1.0.0',
      description: 'Pushes every customer change to the browsers of the web app connected to this instance.',
      groups: ['web'],
      settings: t.Object({ login: OidcSettingsSchema }, { default: {} }),
    })
      .setup((ctx) => {
        login?.configure(ctx.settings.login);
        detach = broadcaster.attachFeed();
      })
      .shutdown(() => {
        detach?.();
      })
      // One at a time: the handler is synchronous, and browsers then see one customer's changes in their order.
      .on(customerChanged, { group, concurrency: 1 }, (change, ctx) => {
        const delivered = broadcaster.publish({ id: ctx.message.id, change });
        ctx.log.debug({ customerId: change.customerId, version: change.version, browsers: delivered }, 'change pushed');
      })
  );
}
