// A relying party built on panva's openid-client (an OpenID-certified RP library), for FreshID's
// black-box conformance suite (tests/conformance/).
//
// Two ways to call it:
//   node rp.mjs '<json command>'      one command, one JSON answer on stdout, then exit
//   node rp.mjs                       one JSON command per stdin line, one JSON answer per line
//
// Every command names the client it acts for:
//   "client": {"issuer": "...", "client_id": "...", "client_secret": "..." | null,
//              "auth": "basic" | "post" (confidential clients; default basic)}
// Discovery runs once per client per process (openid-client checks that the document's `issuer`
// is the URL it was fetched for). Commands:
//   discover                                          -> {metadata}
//   authorize {redirect_uri, scope?, pkce?, nonce?, state?, params?}
//                                                     -> {url, code_verifier?, nonce?, state?}
//   callback  {url, code_verifier?, state?, nonce?, max_age?, redirect_uri?}
//                                                     -> {tokens, claims}  (ID token validated)
//   refresh   {refresh_token, params?}                -> {tokens, claims}
//   userinfo  {access_token, sub?, method?: "GET"|"POST"} -> {status, body}
//   introspect {token}                                -> {body}
//   revoke    {token}                                 -> {}
//   end_session {params}                              -> {url}
// Answers are {"ok": true, ...} or {"ok": false, "name", "code", "error", "error_description",
// "status", "message"}: openid-client's own refusal (a check it made) or the provider's error.
import readline from 'node:readline';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';

const configs = new Map();

async function configFor(c) {
  const key = JSON.stringify([c.issuer, c.client_id, c.client_secret ?? null, c.auth ?? null]);
  let config = configs.get(key);
  if (config === undefined) {
    let auth;
    if (!c.client_secret) auth = client.None();
    else if (c.auth === 'post') auth = client.ClientSecretPost(c.client_secret);
    else auth = client.ClientSecretBasic(c.client_secret);
    // Loopback http: the tests run the provider without TLS.
    // Non-repudiation checks: the ID token's signature is verified against the JWKS too (by
    // default openid-client trusts the TLS channel for code-flow ID tokens).
    config = await client.discovery(new URL(c.issuer), c.client_id, undefined, auth, {
      execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    });
    configs.set(key, config);
  }
  return config;
}

const TOKEN_FIELDS = ['access_token', 'refresh_token', 'id_token', 'token_type', 'expires_in', 'scope'];

function tokenView(tokens) {
  const view = {};
  for (const name of TOKEN_FIELDS) {
    if (tokens[name] !== undefined) view[name] = tokens[name];
  }
  return { tokens: view, claims: tokens.claims() ?? null };
}

// openid-client takes the redirect URI to send to the token endpoint from the callback URL with
// its whole query removed, so a registered redirect URI that has a query of its own cannot be
// redeemed through it. For that case the same steps run on oauth4webapi, the library openid-client
// is built on, with the registered URI given explicitly, and the ID token's signature checked with
// jose against the JWKS.
async function callbackWithRedirectUri(cmd, config, checks) {
  const as = config.serverMetadata();
  const c = { client_id: config.clientMetadata().client_id };
  const secret = cmd.client.client_secret;
  const auth = !secret ? oauth.None() : cmd.client.auth === 'post' ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
  const insecure = { [oauth.allowInsecureRequests]: true };
  const params = oauth.validateAuthResponse(as, c, new URL(cmd.url), checks.expectedState ?? oauth.skipStateCheck);
  const response = await oauth.authorizationCodeGrantRequest(
    as, c, auth, params, cmd.redirect_uri, checks.pkceCodeVerifier ?? oauth.nopkce, insecure,
  );
  const result = await oauth.processAuthorizationCodeResponse(as, c, response, {
    expectedNonce: checks.expectedNonce ?? oauth.expectNoNonce,
    maxAge: checks.maxAge ?? oauth.skipAuthTimeCheck,
    requireIdToken: true,
  });
  const jwks = createRemoteJWKSet(new URL(as.jwks_uri));
  await jwtVerify(result.id_token, jwks, { issuer: as.issuer, audience: c.client_id, algorithms: ['ES256'] });
  const view = {};
  for (const name of TOKEN_FIELDS) if (result[name] !== undefined) view[name] = result[name];
  return { tokens: view, claims: oauth.getValidatedIdTokenClaims(result) ?? null };
}

const commands = {
  async discover(cmd, config) {
    return { metadata: config.serverMetadata() };
  },

  async authorize(cmd, config) {
    const params = { redirect_uri: cmd.redirect_uri, scope: cmd.scope ?? 'openid', ...(cmd.params ?? {}) };
    const out = {};
    if (cmd.pkce !== false) {
      out.code_verifier = client.randomPKCECodeVerifier();
      params.code_challenge = await client.calculatePKCECodeChallenge(out.code_verifier);
      params.code_challenge_method = 'S256';
    }
    if (cmd.nonce !== false) params.nonce = out.nonce = client.randomNonce();
    if (cmd.state !== false) params.state = out.state = client.randomState();
    out.url = client.buildAuthorizationUrl(config, params).href;
    return out;
  },

  async callback(cmd, config) {
    const checks = {
      pkceCodeVerifier: cmd.code_verifier ?? undefined,
      expectedState: cmd.state ?? undefined,
      expectedNonce: cmd.nonce ?? undefined,
      maxAge: cmd.max_age ?? undefined,
      idTokenExpected: true,
    };
    if (cmd.redirect_uri) return callbackWithRedirectUri(cmd, config, checks);
    return tokenView(await client.authorizationCodeGrant(config, new URL(cmd.url), checks));
  },

  async refresh(cmd, config) {
    return tokenView(await client.refreshTokenGrant(config, cmd.refresh_token, cmd.params ?? undefined));
  },

  async userinfo(cmd, config) {
    if ((cmd.method ?? 'GET') === 'GET') {
      const body = await client.fetchUserInfo(config, cmd.access_token, cmd.sub ?? client.skipSubjectCheck);
      return { status: 200, body };
    }
    const endpoint = new URL(config.serverMetadata().userinfo_endpoint);
    const response = await client.fetchProtectedResource(config, cmd.access_token, endpoint, cmd.method);
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  },

  async introspect(cmd, config) {
    return { body: await client.tokenIntrospection(config, cmd.token) };
  },

  async revoke(cmd, config) {
    await client.tokenRevocation(config, cmd.token);
    return {};
  },

  async end_session(cmd, config) {
    return { url: client.buildEndSessionUrl(config, cmd.params ?? {}).href };
  },
};

function causeOf(err) {
  const cause = err?.cause;
  if (cause === undefined || cause === null) return null;
  if (cause instanceof Response) return { status: cause.status };
  if (cause instanceof Error) {
    return { name: cause.name, code: cause.code ?? null, message: cause.message, cause: causeOf(cause) };
  }
  try {
    return JSON.parse(JSON.stringify(cause));
  } catch {
    return String(cause);
  }
}

async function run(cmd) {
  try {
    const handler = commands[cmd.command];
    if (handler === undefined) throw new TypeError(`unknown command ${cmd.command}`);
    return { ok: true, ...(await handler(cmd, await configFor(cmd.client))) };
  } catch (err) {
    return {
      ok: false,
      name: err?.name ?? 'Error',
      code: err?.code ?? null,
      error: err?.error ?? null,
      error_description: err?.error_description ?? null,
      status: err?.status ?? null,
      message: String(err?.message ?? err),
      cause: causeOf(err),
    };
  }
}

if (process.argv.length > 2) {
  process.stdout.write(`${JSON.stringify(await run(JSON.parse(process.argv[2])))}\n`);
} else {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer;
    try {
      answer = await run(JSON.parse(line));
    } catch (err) {
      answer = { ok: false, name: 'SyntaxError', message: String(err) };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  }
}
