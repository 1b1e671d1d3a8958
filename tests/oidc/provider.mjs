// A real OpenID provider on loopback for auth's OAuth tests: the npm package `oidc-provider` (pinned in
// tests/oidc/package.json, installed by `scripts/setup.sh oidc-provider` into $OIDC_PROVIDER_DIR).
//
// One confidential client (CLIENT_ID / CLIENT_SECRET, its redirect URI REDIRECT_URI, PKCE required) and
// one user (USER_SUB, USER_EMAIL, and USER_EMAIL_VERIFIED=false for an address it does not vouch for). The login interaction signs that user in at once and consent is granted by the provider's
// own rule for first-party clients (`loadExistingGrant`), so a client that follows redirects with a
// cookie jar completes a sign-in. ID tokens carry the user's claims (email, name). Listens on
// 127.0.0.1, a free port, and prints `issuer <url>` on stdout once it serves.
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// stdout carries the issuer line only (the test may stop reading it): the package's notices go to stderr.
console.log = console.info = console.warn = console.error;

const dir = process.env.OIDC_PROVIDER_DIR;
const load = async (name) => {
  const path = createRequire(join(dir, 'package.json')).resolve(name);
  return import(pathToFileURL(path).href);
};
const { default: Provider } = await load('oidc-provider');
const jose = await load('jose');

const USER = {
  sub: process.env.USER_SUB || 'oidc-user-1',
  email: process.env.USER_EMAIL || 'oidc.user@example.com',
  email_verified: process.env.USER_EMAIL_VERIFIED !== 'false',
  name: 'Oidc User',
  preferred_username: 'oidc-user',
};

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await jose.exportJWK(privateKey)), kid: 'test-rs256', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [jwk] },
  pkce: { required: () => true },
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  cookies: { keys: ['test-cookie-key-0123456789'] },
  ttl: { AccessToken: 600, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, sub) =>
    sub === USER.sub ? { accountId: sub, claims: async () => USER } : undefined,
  async loadExistingGrant(ctx) {
    const { client, session } = ctx.oidc;
    const existing = session.grantIdFor(client.clientId);
    if (existing) return ctx.oidc.provider.Grant.find(existing);
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    session.grantIdFor(client.clientId, grant.jti);
    return grant;
  },
});
provider.on('server_error', (ctx, err) => console.error('oidc-provider error', err));

const callback = provider.callback();
server.on('request', async (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    try {
      await provider.interactionDetails(req, res);
      await provider.interactionFinished(req, res, { login: { accountId: USER.sub } }, {
        mergeWithLastSubmission: false,
      });
    } catch (err) {
      console.error('interaction failed', err);
      res.statusCode = 500;
      res.end(String(err));
    }
    return;
  }
  callback(req, res);
});
process.stdout.write(`issuer ${issuer}\n`);
