// The peer FreshID is benchmarked against: panva's oidc-provider (an OpenID-certified OP), started
// by bench/peers.py as `node oidc_provider.mjs` with PEER_CONFIG (JSON) in the environment:
//   {"port": 0, "client_id": "...", "client_secret": "...", "redirect_uri": "...",
//    "account": {"sub": "...", "email": "..."}}
// It listens on 127.0.0.1 only and prints `READY <issuer>` once it serves.
//
// Configured as close to FreshID's benchmark setup as oidc-provider allows: one confidential client
// (client_secret_basic, authorization_code + refresh_token, PKCE S256 required), ES256 ID tokens,
// refresh tokens issued for `openid email` and rotated on every use (reuse revokes the grant, as in
// FreshID), 600 s access and ID tokens. Its storage is its default in-process memory adapter; the
// account signs in without a password (the interaction finishes at once): sign-in is not what is
// measured.
import http from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(process.env.PEER_CONFIG || '{}');
const account = config.account;

const server = http.createServer();
await new Promise((resolve) => { server.listen(config.port ?? 0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'peer-es256', alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
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
process.on('SIGTERM', () => { server.close(); process.exit(0); });
