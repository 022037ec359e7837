// A throwaway OpenID Provider for gatehouse's tests: panva's oidc-provider
// configured from a JSON file (argv[2]) that the Go harness writes.
//
// It listens on two plain-http loopback ports chosen by the system: the
// provider itself, behind the harness's TLS front (which sets
// X-Forwarded-Proto and X-Forwarded-Host), and an admin port that only the
// harness calls, to rotate the signing keys and to send back-channel
// logout tokens. Once both listen it prints one JSON line on stdout:
// {"http": port, "admin": port}.
//
// Logins need no form: the interaction handler logs in the account that
// the authorization request's login_hint names (else the configured
// default_account, if any), and grants the requested scopes and claims.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider, { interactionPolicy } from 'oidc-provider';

const DEFAULT_ACR = 'urn:gatehouse:test:pwd';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = new Map(config.accounts.map((a) => [a.sub, a]));
const acrValues = [...new Set([DEFAULT_ACR, ...config.accounts.flatMap((a) => a.acrs || [])])];

// Cookie keys outlive a key rotation, so that the sessions and
// interactions of the previous Provider instance stay readable.
const cookieKeys = [randomBytes(32).toString('base64url')];

// signingKeys lists the private JWKs, newest first: oidc-provider signs
// with the first key that fits the algorithm.
let signingKeys = newKeys();

function newKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: `rs-${randomBytes(6).toString('base64url')}`, alg: 'RS256', use: 'sig' },
    { ...ec, kid: `es-${randomBytes(6).toString('base64url')}`, alg: 'ES256', use: 'sig' },
  ];
}

function claimsOf(account) {
  return async () => ({ ...account.claims, sub: account.sub });
}

// logoutSource renders the RP-initiated logout confirmation as a form
// that submits itself; without script a person presses the button.
async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign out</title></head>
<body>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>
<script>
var f = document.getElementById('op.logoutForm');
var i = document.createElement('input');
i.type = 'hidden'; i.name = 'logout'; i.value = 'yes';
f.appendChild(i); f.submit();
</script>
</body></html>`;
}

// policy is oidc-provider's default, plus a login whenever login_hint
// names another account than the session's, so that one browser can
// switch test users.
function policy() {
  const { Check, base } = interactionPolicy;
  const p = base();
  p.get('login').checks.add(new Check('login_hint_other_account', 'login_hint names another account', 'login_required', (ctx) => {
    const { oidc } = ctx;
    if (oidc.params.login_hint && oidc.session.accountId && oidc.session.accountId !== oidc.params.login_hint) {
      return Check.REQUEST_PROMPT;
    }
    return Check.NO_NEED_TO_PROMPT;
  }));
  return p;
}

function build() {
  const provider = new Provider(config.issuer, {
    clients: config.clients,
    jwks: { keys: signingKeys },
    cookies: { keys: cookieKeys },
    acrValues,
    claims: {
      acr: null,
      amr: null,
      sid: null,
      auth_time: null,
      iss: null,
      // acr, amr and auth_time in every ID token, as many OPs do; the
      // claims parameter (off here) would be the only other way.
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'updated_at'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    conformIdTokenClaims: false,
    pkce: { methods: ['S256'], required: () => true },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'ES256'],
      userinfoSigningAlgValues: ['RS256', 'ES256'],
    },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource },
      backchannelLogout: { enabled: true },
    },
    interactions: {
      policy: policy(),
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    findAccount: (ctx, id) => {
      const account = accounts.get(id);
      return account && { accountId: id, claims: claimsOf(account) };
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      ...config.ttl,
    },
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.proxy = true;
  provider.on('server_error', (ctx, err) => console.error('oidcop: server error:', err));
  provider.on('backchannel.error', (ctx, err, client) => console.error(`oidcop: back-channel logout to ${client.clientId}:`, err.message));
  return provider;
}

let provider = build();
let handler = provider.callback();

// login answers the login prompt with the account that login_hint names,
// or without a hint the default account.
function login(details) {
  const account = accounts.get(details.params.login_hint || config.default_account);
  if (!account) {
    return { error: 'access_denied', error_description: 'login_hint names no test account' };
  }
  const allowed = account.acrs && account.acrs.length ? account.acrs : [DEFAULT_ACR];
  const requested = (details.params.acr_values || '').split(' ').filter(Boolean);
  const acr = requested.find((a) => allowed.includes(a)) || allowed[0];
  const result = { login: { accountId: account.sub, acr, remember: true } };
  if (account.amr && account.amr.length) {
    result.login.amr = account.amr;
  }
  return result;
}

// consent grants what the request asked for and the grant lacks.
async function consent(p, details) {
  const { prompt: { details: missing }, params, session } = details;
  let grant;
  if (details.grantId) {
    grant = await p.Grant.find(details.grantId);
  } else {
    grant = new p.Grant({ accountId: session.accountId, clientId: params.client_id });
  }
  if (missing.missingOIDCScope) {
    grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  }
  if (missing.missingOIDCClaims) {
    grant.addOIDCClaims(missing.missingOIDCClaims);
  }
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  return { consent: { grantId: await grant.save() } };
}

async function interaction(req, res) {
  const p = provider;
  try {
    const details = await p.interactionDetails(req, res);
    let result;
    switch (details.prompt.name) {
      case 'login':
        result = login(details);
        break;
      case 'consent':
        result = await consent(p, details);
        break;
      default:
        result = { error: 'access_denied', error_description: `unexpected prompt ${details.prompt.name}` };
    }
    await p.interactionFinished(req, res, result, { mergeWithLastSubmission: !result.error });
  } catch (err) {
    res.statusCode = 400;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(`interaction failed: ${err.message}\n`);
  }
}

const main = createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res);
    return;
  }
  handler(req, res);
});

function readJSON(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {});
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
  });
}

function reply(res, status, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(body));
}

// rotate puts new signing keys first and rebuilds the Provider around
// them. Its storage (the in-memory adapter's, kept by the module) and its
// cookie keys carry over, so sessions, grants and codes survive.
function rotate(dropOld) {
  const fresh = newKeys();
  signingKeys = dropOld ? fresh : [...fresh, ...signingKeys];
  provider = build();
  handler = provider.callback();
  return { kids: Object.fromEntries(fresh.map((k) => [k.alg, k.kid])), jwks: signingKeys.map((k) => k.kid) };
}

async function backchannelLogout(body) {
  const client = await provider.Client.find(body.client_id);
  if (!client) {
    throw new Error(`no client ${body.client_id}`);
  }
  if (!client.backchannelLogoutUri) {
    throw new Error(`client ${body.client_id} has no backchannel_logout_uri`);
  }
  await client.backchannelLogout(body.sub, body.sid);
}

const admin = createServer(async (req, res) => {
  try {
    if (req.method !== 'POST') {
      reply(res, 405, { error: 'POST only' });
      return;
    }
    const body = await readJSON(req);
    switch (req.url) {
      case '/rotate':
        reply(res, 200, rotate(Boolean(body.drop_old)));
        return;
      case '/backchannel-logout':
        await backchannelLogout(body);
        reply(res, 200, {});
        return;
      default:
        reply(res, 404, { error: `no admin endpoint ${req.url}` });
    }
  } catch (err) {
    reply(res, 502, { error: err.message });
  }
});

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

// The harness holds our standard input open while it runs; when it
// closes (Stop, or the test binary died), we go.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));

const ports = { http: await listen(main), admin: await listen(admin) };
process.stdout.write(`${JSON.stringify(ports)}\n`);
