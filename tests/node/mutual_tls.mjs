// The Node.js client over mutual TLS: one call with a client certificate succeeds (the server's policy
// allows only this certificate's SPIFFE ID, so the call also proves the identity the server saw), and
// a client without a certificate is refused at the handshake. Not named *.test.mjs, which run in
// plaintext (also by `node --test tests/node/`): tests/integration/test_node_client.py starts a server
// with TLS_CLIENT_CA_FILE and passes the client's PEM files in MEMORY_RECORDS_TLS_{CA,CERT,KEY}_FILE.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { call, connect, grpc } from './client.mjs';

const ADDRESS = process.env.MEMORY_RECORDS_ADDRESS;
const [ca, cert, key] = ['CA', 'CERT', 'KEY'].map((part) => {
  const file = process.env[`MEMORY_RECORDS_TLS_${part}_FILE`];
  assert.ok(ADDRESS && file, `set MEMORY_RECORDS_ADDRESS and MEMORY_RECORDS_TLS_${part}_FILE`);
  return readFileSync(file);
});
// The name the server's certificate carries (tests/certs.py), whatever address is dialled.
const OPTIONS = { 'grpc.ssl_target_name_override': process.env.MEMORY_RECORDS_TLS_SERVER_NAME ?? 'localhost' };
const MEMORY_ID = process.env.MEMORY_ID ?? 'demo_memory-0123456789';
const LIST = { memory_id: MEMORY_ID, namespace: `node/mtls-${process.pid}` };

test('a client with a certificate from the CA is served, as its SPIFFE ID', async () => {
  const client = connect(ADDRESS, grpc.credentials.createSsl(ca, key, cert), OPTIONS);
  try {
    const reply = await call(client, 'List', LIST, { deadlineSeconds: 10 });
    assert.deepEqual(reply.memory_record_summaries, []);
  } finally {
    client.close();
  }
});

test('a client without a certificate is refused', async () => {
  const client = connect(ADDRESS, grpc.credentials.createSsl(ca), OPTIONS);
  try {
    const error = await call(client, 'List', LIST, { deadlineSeconds: 10 }).then(
      () => assert.fail('served without a client certificate'),
      (rejected) => rejected,
    );
    assert.equal(error.code, grpc.status.UNAVAILABLE, `${error.code}: ${error.details}`);
  } finally {
    client.close();
  }
});
