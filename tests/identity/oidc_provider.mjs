// A real OpenID provider for the identity tests: oauth2-mock-server (npm),
// serving discovery, JWKS and a token endpoint on loopback, with RS256 keys
// it makes itself. What the tests need on top, and nothing that verifies
// tokens (that is Lakegate's job):
//  - each OAuth client signs in as one user with its groups (CLIENTS, JSON
//    from the command line: {"client_id": {"sub": "...", "groups": [...]}});
//    an unknown client gets invalid_client;
//  - every access token names the audience `lakegate`;
//  - commands on standard input, one per line, each answered with one line
//    of JSON on standard output:
//      rotate        a new signing key; the old one stays published
//      private-key   the current signing key with its private part (for the
//                    tests that sign refused tokens with the provider's key)
// The first line printed is {"issuer": URL}.
import { createInterface } from 'node:readline';
import { OAuth2Server, Events } from 'oauth2-mock-server';

const clients = JSON.parse(process.argv[2] ?? '{}');
const server = new OAuth2Server();
let current = await server.issuer.keys.generate('RS256');

// Sign with the current key only (the store would otherwise take turns).
const keys = server.issuer.keys;
const get = keys.get.bind(keys);
keys.get = (kid) => get(kid ?? current.kid);

function clientOf(req) {
  const basic = (req.headers.authorization ?? '').match(/^Basic (.+)$/i);
  if (basic) {
    return decodeURIComponent(Buffer.from(basic[1], 'base64').toString().split(':')[0]);
  }
  return req.body?.client_id;
}

server.service.on(Events.BeforeResponse, (response, req) => {
  if (req.body?.grant_type === 'client_credentials' && !(clientOf(req) in clients)) {
    response.statusCode = 401;
    response.body = { error: 'invalid_client' };
  }
});
server.service.on(Events.BeforeTokenSigning, (token, req) => {
  const client = clients[clientOf(req)];
  if (client) {
    token.payload.sub = client.sub;
    token.payload.groups = client.groups ?? [];
  }
  token.payload.aud = 'lakegate';
});

await server.start(0, '127.0.0.1');
const issuer = `http://127.0.0.1:${server.address().port}`;
server.issuer.url = issuer;
console.log(JSON.stringify({ issuer }));

for await (const line of createInterface({ input: process.stdin })) {
  const command = line.trim();
  if (command === 'rotate') {
    current = await keys.generate('RS256');
    console.log(JSON.stringify({ kid: current.kid }));
  } else if (command === 'private-key') {
    const jwk = keys.toJSON(true).find((k) => k.kid === current.kid);
    console.log(JSON.stringify(jwk));
  } else if (command) {
    console.log(JSON.stringify({ error: `unknown command '${command}'` }));
  }
}
await server.stop();
