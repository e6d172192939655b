import { defineHost } from 'gantry';
import { customers } from './examples/customers/service.ts';
import { notifier } from './examples/notifier/service.ts';
import { replicator } from './examples/replicator/service.ts';
import { ChangeBroadcaster } from './examples/web/broadcaster.ts';
import { webApp } from './examples/web/plugin.ts';
import { webLogin, webService } from './examples/web/service.ts';

// The web service feeds it, the web app plugin streams it to the browsers of this instance.
const broadcaster = new ChangeBroadcaster();
// Browser login for the web app: off until GANTRY_OIDC_ISSUER (and the rest of GANTRY_OIDC_*) is set. In prod the
// example's events take the host default, which then names the session beside the machines' method
// (GANTRY_AUTH_DEFAULT=bearer,session), and the event stream wants the `support` role from the ID token's roles claim
// (GANTRY_OIDC_ROLES_CLAIM). The events declare no method themselves: a named method needs its settings in every
// environment, and `npm start` on a laptop runs with none.
const login = webLogin();

/** The example system that `npm start` runs: every service in one process, or any of them by name or group. */
export default defineHost({
  title: 'Gantry example system',
  services: [
    customers,
    notifier,
    replicator,
    webService({ broadcaster, login, group: process.env.WEB_CONSUMER_GROUP }),
  ],
  plugins: [login.plugin(), webApp(broadcaster)],
  // Browsers asking for `/` land on the web app; `/` still answers JSON to everyone else.
  home: '/app/',
});
