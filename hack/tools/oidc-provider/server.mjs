// An external OpenID Connect provider for the e2e tests: panva/oidc-provider (a certified
// implementation) on 127.0.0.1, with one confidential client and its development login and
// consent pages (any login name and password). Not for anything but tests.
//
//   NODE_MODULES_DIR=$(. hack/lib/log.sh; . hack/lib/tools.sh; oidc_provider_dir)/node_modules \
//   PORT=9000 CLIENT_ID=kube-bind CLIENT_SECRET=s REDIRECT_URIS=http://127.0.0.1:8080/api/callback \
//     node hack/tools/oidc-provider/server.mjs
//
// NODE_MODULES_DIR is where hack/lib/tools.sh installed the locked packages (kept out of the
// tree, keyed by the lock file); without it, ./node_modules next to this file.
// Prints `listening <issuer>` once it accepts connections; stops on SIGTERM or SIGINT.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// ES modules ignore NODE_PATH: import the package from the installed tree by its path.
const modules = process.env.NODE_MODULES_DIR || fileURLToPath(new URL('./node_modules', import.meta.url));
const packageDir = join(modules, 'oidc-provider');
const { main } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const { default: Provider } = await import(pathToFileURL(join(packageDir, main)).href);

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`server.mjs: ${name} must be set`);
    process.exit(2);
  }
  return value;
}

const port = Number(required('PORT'));
const issuer = `http://127.0.0.1:${port}`;
const redirectUris = required('REDIRECT_URIS').split(',').map((u) => u.trim()).filter(Boolean);

// A fresh RS256 key per run: tests fetch it from jwks_uri like any relying party.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: `test-${port}` };

const configuration = {
  clients: [
    {
      client_id: required('CLIENT_ID'),
      client_secret: required('CLIENT_SECRET'),
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      // client_secret_post is accepted as well: the provider treats the two as one mechanism.
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [signingKey] },
  pkce: { methods: ['S256'], required: () => true },
  scopes: ['openid', 'profile', 'email'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name', 'groups'],
    email: ['email', 'email_verified'],
  },
  // The scopes' claims go into the ID token too, not only to userinfo.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: sub,
          name: sub,
          email: `${sub}@example.test`,
          email_verified: true,
          groups: ['testers'],
        };
      },
    };
  },
  // Cookie signing keys of this run only.
  cookies: { keys: [signingKey.d.slice(0, 32)] },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});

function shutdown(signal) {
  console.log(`${signal}: stopping`);
  server.close(() => process.exit(0));
  // Keep-alive connections would hold close() open; tests want the port back promptly.
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
