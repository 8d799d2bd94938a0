// A real upstream OpenID Provider for FreshID's federation tests: panva's oidc-provider.
//
// Started by tests/federation/peers.py as `node oidc_provider.mjs`, with its configuration as JSON
// in the PEER_CONFIG environment variable. It listens on a free 127.0.0.1 port and prints
// `READY <issuer>` once it serves. Test-only: open dynamic client registration, accounts from the
// configuration, and a scripted login form instead of devInteractions, so a test can choose the
// account, the amr/acr the upstream reports and how long ago the user "signed in" (auth_age).
//
// PEER_CONFIG = {
//   "accounts": {"<sub>": {"email": "...", "email_verified": true}},
//   "ignore_prompt_login": false  // true: an upstream that ignores prompt=login and max_age=0
//                                 // (the interaction policy's login_prompt and max_age checks
//                                 // removed), so a step-up gets the old session's auth_time.
// }
import http from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider, { interactionPolicy } from 'oidc-provider';

const config = JSON.parse(process.env.PEER_CONFIG || '{}');
const accounts = config.accounts || {};

const server = http.createServer();
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'peer-rs256', alg: 'RS256', use: 'sig' };

const policy = interactionPolicy.base();
if (config.ignore_prompt_login) {
  const login = policy.get('login');
  login.checks.remove('login_prompt');
  login.checks.remove('max_age');
}

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  cookies: { keys: ['freshid-peer-cookie-key'] },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
  },
  acrValues: ['urn:peer:pwd', 'urn:peer:mfa'],
  // acr and amr ride on the openid scope, so every ID token says how the user signed in
  // (by default oidc-provider adds them only when a client asks through `claims`).
  claims: { openid: ['sub', 'acr', 'amr'], email: ['email', 'email_verified'] },
  interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  // Consent is not what these tests are about: every client gets the scopes it asks for.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
  async findAccount(ctx, sub) {
    const account = accounts[sub];
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...account }) };
  },
});

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(body))));
    req.on('error', reject);
  });
}

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

const callback = provider.callback();
server.on('request', async (req, res) => {
  const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(req.url.split('?')[0]);
  if (!match) { callback(req, res); return; }
  try {
    const details = await provider.interactionDetails(req, res);
    if (!match[2]) {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><title>Upstream sign-in</title>
<h1>Sign in at the upstream</h1><p>prompt: ${escape(details.prompt.name)}</p>
<form method="post" action="/interaction/${escape(details.uid)}/login">
<input name="account" value=""><input name="amr" value="pwd"><input name="acr" value="urn:peer:pwd">
<input name="auth_age" value="0"><button type="submit">Sign in</button></form>`);
      return;
    }
    const form = await readForm(req);
    if (!accounts[form.account]) {
      res.statusCode = 400;
      res.end('unknown account');
      return;
    }
    const ts = Math.floor(Date.now() / 1000) - Number(form.auth_age || 0);
    await provider.interactionFinished(req, res, {
      login: {
        accountId: form.account,
        amr: (form.amr || 'pwd').split(',').filter(Boolean),
        acr: form.acr || 'urn:peer:pwd',
        ts,
      },
    }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.statusCode = 400;
    res.end(`interaction error: ${err.name}`);
  }
});

process.stdout.write(`READY ${issuer}\n`);
process.on('SIGTERM', () => { server.close(); process.exit(0); });
