// Signs one RFC 7523 client assertion with the official MCP TypeScript SDK's
// createPrivateKeyJwtAuth (which uses panva's jose), so the proxy's verifier
// is tested against a client library it did not write. Input (argv[2], JSON):
// {sdk, issuer, privateJwk, alg}; the audience is left to the SDK, which
// takes the authorization server's issuer from its metadata. Prints the
// form parameters the SDK set, as JSON.
import { pathToFileURL } from 'node:url';

const input = JSON.parse(process.argv[2]);
const { createPrivateKeyJwtAuth } = await import(pathToFileURL(input.sdk + '/dist/esm/client/auth-extensions.js'));
const addClientAuth = createPrivateKeyJwtAuth({
  issuer: input.clientId, subject: input.clientId, privateKey: input.privateJwk, alg: input.alg,
});
const params = new URLSearchParams();
await addClientAuth(new Headers(), params, new URL(input.issuer + '/token'), { issuer: input.issuer });
process.stdout.write(JSON.stringify(Object.fromEntries(params)));
