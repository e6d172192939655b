import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Account, type ProviderContext } from 'oidc-provider';

/** The one account of the test provider: log in with this name (any password, as dev interactions allow). */
export const TEST_ACCOUNT = 'alice';

/** A real OpenID provider (`oidc-provider`) on a loopback port, with one client and one account. */
export interface TestOidcProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /**
   * Logs in through the provider's own forms without a browser: follows the redirects from `authorizationUrl`,
   * posts the login form with `login`, and returns the URL the provider sends the browser back to (with the code).
   */
  signIn(authorizationUrl: string, login?: string): Promise<URL>;
  close(): Promise<void>;
}

/** A free port on loopback, for a host that must know its own URL before it starts. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Options of {@link startOidcProvider}. */
export interface TestOidcProviderOptions {
  redirectUri: string;
  /**
   * More claims of the account (`roles`, `realm_access`), granted with the `roles` scope and written into the ID
   * token itself, as providers configured to put roles there do.
   */
  claims?: Record<string, unknown>;
}

/**
 * Starts the provider. Dev interactions serve the login form; consent is granted without a page (the test client
 * is first-party), so a login is: authorise → login form → back to `redirectUri`.
 */
export async function startOidcProvider(options: TestOidcProviderOptions): Promise<TestOidcProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientId = 'gantry-web';
  const clientSecret = `secret-${Math.random().toString(36).slice(2)}`;
  const accounts: Record<string, Record<string, unknown>> = {
    [TEST_ACCOUNT]: {
      sub: TEST_ACCOUNT,
      name: 'Alice Example',
      email: 'alice@example.com',
      email_verified: true,
      ...options.claims,
    },
  };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    findAccount: (_ctx: unknown, id: string): Account | undefined => {
      const claims = accounts[id];
      return claims ? { accountId: id, claims: () => claims } : undefined;
    },
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
      roles: ['roles', 'realm_access'],
    },
    // Claims of the granted scopes go into the ID token too, not only to the userinfo endpoint.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    cookies: { keys: [`cookie-key-${Math.random().toString(36).slice(2)}`] },
    features: { devInteractions: { enabled: true } },
    ttl: { Interaction: 600, Grant: 600, Session: 600, AccessToken: 600, IdToken: 600 },
    loadExistingGrant: async (ctx: ProviderContext) => {
      const clientIdOf = ctx.oidc.client?.clientId as string;
      const existing = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session?.grantIdFor(clientIdOf);
      if (existing) return provider.Grant.find(existing);
      const grant = new provider.Grant({ clientId: clientIdOf, accountId: ctx.oidc.session?.accountId as string });
      grant.addOIDCScope('openid profile email roles');
      await grant.save();
      return grant;
    },
  });
  server.on('request', provider.callback());

  return {
    issuer,
    clientId,
    clientSecret,
    async signIn(authorizationUrl, login = TEST_ACCOUNT) {
      const jar = new Map<string, string>();
      const send = async (url: string, init: RequestInit = {}): Promise<Response> => {
        const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
        const response = await fetch(url, {
          ...init,
          redirect: 'manual',
          headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
        });
        for (const line of response.headers.getSetCookie()) {
          const [pair] = line.split(';');
          const at = (pair ?? '').indexOf('=');
          if (at > 0) jar.set((pair as string).slice(0, at), (pair as string).slice(at + 1));
        }
        return response;
      };
      let url = authorizationUrl;
      for (let hop = 0; hop < 10; hop++) {
        if (url.startsWith(options.redirectUri)) return new URL(url);
        const response = await send(url);
        const location = response.headers.get('location');
        if (location) {
          url = new URL(location, url).href;
          continue;
        }
        const html = await response.text();
        const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
        if (!action || !html.includes('name="login"')) throw new Error(`unexpected page at ${url}: ${response.status}`);
        const posted = await send(new URL(action, url).href, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ prompt: 'login', login, password: 'any' }).toString(),
        });
        url = new URL(posted.headers.get('location') as string, url).href;
      }
      throw new Error('the provider did not send the browser back');
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
