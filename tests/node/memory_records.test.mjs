// Every RPC of MemoryRecordsService, called from Node.js against a running server: replies, and for
// errors the status code and the decoded google.rpc.Status details. The server's address comes from
// MEMORY_RECORDS_ADDRESS (tests/integration/test_node_client.py starts one on the embedded emulator;
// by hand: `make run`, then `MEMORY_RECORDS_ADDRESS=localhost:50051 node --test tests/node/`).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { METHODS, call, called, connect, grpc, richStatus } from './client.mjs';

const ADDRESS = process.env.MEMORY_RECORDS_ADDRESS;
assert.ok(ADDRESS, 'set MEMORY_RECORDS_ADDRESS to the server, host:port');
const MEMORY_ID = process.env.MEMORY_ID ?? 'demo_memory-0123456789';
const UNKNOWN_MEMORY_ID = 'unknown_memory-0123456789';
const UNKNOWN_RECORD_ID = 'mem-00000000-0000-0000-0000-000000000000';
const FACADE_DOMAIN = 'agentcore-memory-grpc';
const AWS_DOMAIN = 'bedrock-agentcore.amazonaws.com';
// A namespace of this run's own, so that listing and searching see only what this run wrote.
const NAMESPACE = `node/run-${process.pid}-${Date.now()}`;

const client = connect(ADDRESS);
after(() => client.close());

const timestamp = (seconds, nanos = 0) => ({ seconds: String(seconds), nanos });

function newRecord(text, requestIdentifier = 'r1', namespace = NAMESPACE) {
  return {
    request_identifier: requestIdentifier,
    namespaces: [namespace],
    content: { text },
    timestamp: timestamp(1_732_560_000, 123_456_000),
    memory_strategy_id: 'manual',
    metadata: {
      topic: { string_value: 'drinks' },
      tags: { string_list_value: { values: ['tea', 'green'] } },
      weight: { number_value: 0.75 },
      seen: { date_time_value: timestamp(1_700_000_000, 5_000) },
    },
  };
}

async function create(records) {
  const reply = await call(client, 'BatchCreate', { memory_id: MEMORY_ID, records });
  assert.deepEqual(reply.failed_records, []);
  return reply.successful_records.map((result) => result.memory_record_id);
}

/** The error `promise` rejects with, its code checked and its rich status decoded. */
async function failure(promise, code) {
  const error = await promise.then(
    () => assert.fail('the call succeeded'),
    (rejected) => rejected,
  );
  assert.equal(error.code, code, `${error.code}: ${error.details}`);
  const status = richStatus(error);
  assert.ok(status, 'no grpc-status-details-bin trailer');
  assert.equal(status.code, code);
  assert.ok(status.details.ErrorInfo, 'every error carries an ErrorInfo');
  return status;
}

const fieldPaths = (status) => status.details.BadRequest.field_violations.map((v) => v.field);

describe('BatchCreate, BatchUpdate, Get', () => {
  test('a created record reads back field for field', async () => {
    const reply = await call(client, 'BatchCreate', {
      memory_id: MEMORY_ID,
      records: [newRecord('Alice likes green tea')],
      client_token: `node-${process.pid}-${Date.now()}`,
    });
    assert.equal(reply.failed_records.length, 0);
    const [created] = reply.successful_records;
    assert.equal(created.request_identifier, 'r1');
    assert.equal(created.status, 'MEMORY_RECORD_STATUS_SUCCEEDED');
    assert.match(created.memory_record_id, /^mem-/);

    const { memory_record: record } = await call(client, 'Get', {
      memory_id: MEMORY_ID,
      memory_record_id: created.memory_record_id,
    });
    assert.equal(record.memory_record_id, created.memory_record_id);
    assert.equal(record.content.text, 'Alice likes green tea');
    assert.deepEqual(record.namespaces, [NAMESPACE]);
    assert.equal(record.memory_strategy_id, 'manual');
    assert.deepEqual(record.timestamp, timestamp(1_732_560_000, 123_456_000));
    assert.ok(record.created_at.seconds > 0);
    assert.equal(record.metadata.topic.string_value, 'drinks');
    assert.deepEqual(record.metadata.tags.string_list_value.values, ['tea', 'green']);
    assert.equal(record.metadata.weight.number_value, 0.75);
    assert.deepEqual(record.metadata.seen.date_time_value, timestamp(1_700_000_000, 5_000));
  });

  test('an update changes what is set, and an unknown record fails alone', async () => {
    const [recordId] = await create([newRecord('Alice likes green tea')]);
    const reply = await call(client, 'BatchUpdate', {
      memory_id: MEMORY_ID,
      records: [
        { memory_record_id: recordId, timestamp: timestamp(1_732_600_000), content: { text: 'Alice prefers oolong' } },
        { memory_record_id: UNKNOWN_RECORD_ID, timestamp: timestamp(1_732_600_000) },
      ],
    });
    assert.deepEqual(
      reply.successful_records.map((r) => [r.memory_record_id, r.status]),
      [[recordId, 'MEMORY_RECORD_STATUS_SUCCEEDED']],
    );
    assert.equal(reply.failed_records.length, 1);
    const [failed] = reply.failed_records;
    assert.equal(failed.memory_record_id, UNKNOWN_RECORD_ID);
    assert.equal(failed.status, 'MEMORY_RECORD_STATUS_FAILED');
    assert.equal(failed.error_code, 404);

    const { memory_record: record } = await call(client, 'Get', { memory_id: MEMORY_ID, memory_record_id: recordId });
    assert.equal(record.content.text, 'Alice prefers oolong');
    assert.deepEqual(record.namespaces, [NAMESPACE], 'namespaces left unset stay unchanged');
  });

  test('invalid fields are INVALID_ARGUMENT with a BadRequest naming each by its proto path', async () => {
    const record = { ...newRecord(''), namespaces: ['bad namespace!'] };
    const status = await failure(
      call(client, 'BatchCreate', { memory_id: MEMORY_ID, records: [newRecord('fine'), record] }),
      grpc.status.INVALID_ARGUMENT,
    );
    assert.equal(status.details.ErrorInfo.reason, 'INVALID_ARGUMENT');
    assert.equal(status.details.ErrorInfo.domain, FACADE_DOMAIN);
    assert.deepEqual(fieldPaths(status).sort(), ['records[1].content.text', 'records[1].namespaces[0]']);
  });

  test('a record id too short is named in the BadRequest of Get', async () => {
    const status = await failure(
      call(client, 'Get', { memory_id: MEMORY_ID, memory_record_id: 'mem-1' }),
      grpc.status.INVALID_ARGUMENT,
    );
    assert.deepEqual(fieldPaths(status), ['memory_record_id']);
    assert.match(status.details.BadRequest.field_violations[0].description, /40 to 50 characters/);
  });

  test("AWS's ResourceNotFoundException is NOT_FOUND with ErrorInfo and ResourceInfo", async () => {
    const status = await failure(
      call(client, 'Get', { memory_id: MEMORY_ID, memory_record_id: UNKNOWN_RECORD_ID }),
      grpc.status.NOT_FOUND,
    );
    const info = status.details.ErrorInfo;
    assert.equal(info.reason, 'AWS_RESOURCE_NOT_FOUND');
    assert.equal(info.domain, AWS_DOMAIN);
    assert.equal(info.metadata.awsErrorCode, 'ResourceNotFoundException');
    assert.equal(info.metadata.operation, 'GetMemoryRecord');
    assert.equal(info.metadata.httpStatus, '404');
    assert.equal(status.details.RequestInfo.request_id, info.metadata.awsRequestId);
    assert.equal(
      status.details.ResourceInfo.resource_name,
      `memories/${MEMORY_ID}/memoryRecords/${UNKNOWN_RECORD_ID}`,
    );
  });

  test('a batch into an unknown memory is NOT_FOUND naming the memory', async () => {
    const status = await failure(
      call(client, 'BatchUpdate', {
        memory_id: UNKNOWN_MEMORY_ID,
        records: [{ memory_record_id: UNKNOWN_RECORD_ID, timestamp: timestamp(1_732_600_000) }],
      }),
      grpc.status.NOT_FOUND,
    );
    assert.equal(status.details.ErrorInfo.reason, 'AWS_RESOURCE_NOT_FOUND');
    assert.equal(status.details.ResourceInfo.resource_name, `memories/${UNKNOWN_MEMORY_ID}`);
  });
});

// Last: a new RPC in the contract fails this file until a test above calls it.
test('every RPC of the contract was called', () => {
  assert.deepEqual(METHODS.filter((method) => !called.has(method)), []);
});
