// The peer FreshID is benchmarked against: panva's oidc-provider (an OpenID-certified OP), started
// by bench/peers.py as `node oidc_provider.mjs` with PEER_CONFIG (JSON) in the environment:
//   {"port": 0, "client_id": "...", "client_secret": "...", "redirect_uri": "...",
//    "account": {"sub": "...", "email": "..."},
//    "postgres_url": "postgresql://...", "postgres_pool_size": 10}   (the last two optional)
// It listens on 127.0.0.1 only and prints `READY <issuer>` once it serves.
//
// Configured as close to FreshID's benchmark setup as oidc-provider allows: one confidential client
// (client_secret_basic, authorization_code + refresh_token, PKCE S256 required), ES256 ID tokens,
// refresh tokens issued for `openid email` and rotated on every use (reuse revokes the grant, as in
// FreshID), 600 s access and ID tokens. The account signs in without a password (the interaction
// finishes at once): sign-in is not what is measured.
//
// Storage: without "postgres_url", oidc-provider's default in-process memory adapter (an LRU of
// 1,000 entries, nothing durable). With it, ./pg_adapter.mjs: every model in one table,
// oidc_payloads, of that database (created when missing, before READY), on a pg.Pool of
// "postgres_pool_size" connections (default 10), each write committed durably. With
// PEER_PG_STATEMENTS=1 in the environment as well, the adapter counts its SQL statements and
// GET /_bench/pg-statements answers {"total": n, "byCall": {"RefreshToken.find": n, ...}}.
import http from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

import { PgStore } from './pg_adapter.mjs';

const config = JSON.parse(process.env.PEER_CONFIG || '{}');
const account = config.account;

let store;
if (config.postgres_url) {
  store = new PgStore(config.postgres_url, {
    poolSize: config.postgres_pool_size ?? 10,
    countStatements: process.env.PEER_PG_STATEMENTS === '1',
  });
  await store.createSchema();
}

const server = http.createServer();
await new Promise((resolve) => { server.listen(config.port ?? 0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'peer-es256', alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
  ...(store ? { adapter: store.adapter() } : {}),
  jwks: { keys: [jwk] },
  cookies: { keys: ['freshid-bench-peer-cookie-key'] },
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: [config.redirect_uri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  }],
  features: { devInteractions: { enabled: false } },
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  scopes: ['openid', 'email', 'offline_access'],
  pkce: { required: () => true },
  ttl: { AccessToken: 600, IdToken: 600, RefreshToken: 30 * 24 * 3600 },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email offline_access');
    await grant.save();
    return grant;
  },
  async findAccount(ctx, sub) {
    if (sub !== account.sub) return undefined;
    return { accountId: sub, claims: async () => ({ sub, email: account.email, email_verified: false }) };
  },
});

const callback = provider.callback();
server.on('request', async (req, res) => {
  if (store?.counting && req.url === '/_bench/pg-statements') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(store.statements()));
    return;
  }
  if (!/^\/interaction\/[\w-]+$/.test(req.url.split('?')[0])) {
    callback(req, res);
    return;
  }
  try {
    await provider.interactionFinished(req, res, {
      login: { accountId: account.sub, amr: ['pwd'], ts: Math.floor(Date.now() / 1000) },
    }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.statusCode = 400;
    res.end(`interaction error: ${err.name}`);
  }
});

process.stdout.write(`READY ${issuer}\n`);
process.on('SIGTERM', () => {
  server.close();
  setTimeout(() => process.exit(0), 2000).unref();
  Promise.resolve(store?.end()).finally(() => process.exit(0));
});
