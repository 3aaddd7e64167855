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
      call(client, 'BatchCreate', {
        memory_id: MEMORY_ID,
        records: [newRecord('fine', 'r1'), { ...record, request_identifier: 'r2' }],
      }),
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

const recordOf = (namespace) => (text, index) => ({
  ...newRecord(text, `r${index}`, namespace),
  metadata: { topic: { string_value: index % 2 === 0 ? 'even' : 'odd' } },
});

/** Every summary of a List or Retrieve, page after page (AIP-158), and the number of pages. */
async function allPages(method, request) {
  const summaries = [];
  let pages = 0;
  let pageToken = '';
  do {
    const reply = await call(client, method, { ...request, page_token: pageToken });
    summaries.push(...reply.memory_record_summaries);
    pages += 1;
    pageToken = reply.next_page_token ?? ''; // unset on the last page (proto3: empty is unset)
  } while (pageToken !== '' && pages < 100);
  return { summaries, pages };
}

describe('Delete, BatchDelete', () => {
  test('a deleted record is gone', async () => {
    const [recordId] = await create([newRecord('to forget')]);
    const reply = await call(client, 'Delete', { memory_id: MEMORY_ID, memory_record_id: recordId });
    assert.deepEqual(reply, { memory_record_id: recordId });
    const status = await failure(
      call(client, 'Get', { memory_id: MEMORY_ID, memory_record_id: recordId }),
      grpc.status.NOT_FOUND,
    );
    assert.equal(status.details.ErrorInfo.reason, 'AWS_RESOURCE_NOT_FOUND');
  });

  test('deleting an unknown record is NOT_FOUND from DeleteMemoryRecord', async () => {
    const status = await failure(
      call(client, 'Delete', { memory_id: MEMORY_ID, memory_record_id: UNKNOWN_RECORD_ID }),
      grpc.status.NOT_FOUND,
    );
    assert.equal(status.details.ErrorInfo.reason, 'AWS_RESOURCE_NOT_FOUND');
    assert.equal(status.details.ErrorInfo.metadata.operation, 'DeleteMemoryRecord');
  });

  test('a batch delete deletes the records it names; an unknown one fails alone', async () => {
    const recordIds = await create([newRecord('one', 'r1'), newRecord('two', 'r2')]);
    const reply = await call(client, 'BatchDelete', {
      memory_id: MEMORY_ID,
      records: [...recordIds, UNKNOWN_RECORD_ID].map((id) => ({ memory_record_id: id })),
    });
    assert.deepEqual(
      reply.successful_records.map((r) => [r.memory_record_id, r.status]),
      recordIds.map((id) => [id, 'MEMORY_RECORD_STATUS_SUCCEEDED']),
    );
    assert.deepEqual(
      reply.failed_records.map((r) => [r.memory_record_id, r.status, r.error_code]),
      [[UNKNOWN_RECORD_ID, 'MEMORY_RECORD_STATUS_FAILED', 404]],
    );
    for (const id of recordIds) {
      await failure(call(client, 'Get', { memory_id: MEMORY_ID, memory_record_id: id }), grpc.status.NOT_FOUND);
    }
  });

  test('a record id twice in one batch delete is INVALID_ARGUMENT naming the second', async () => {
    const status = await failure(
      call(client, 'BatchDelete', {
        memory_id: MEMORY_ID,
        records: [{ memory_record_id: UNKNOWN_RECORD_ID }, { memory_record_id: UNKNOWN_RECORD_ID }],
      }),
      grpc.status.INVALID_ARGUMENT,
    );
    assert.deepEqual(fieldPaths(status), ['records[1].memory_record_id']);
  });
});

describe('List, Retrieve', () => {
  const namespace = `${NAMESPACE}/search`;
  const texts = ['Alice likes green tea', 'Bob drinks black coffee', 'green tea keeps Carol awake', 'Dan naps'];
  let recordIds;

  test('setup: records to list and search', async () => {
    recordIds = await create(texts.map(recordOf(namespace)));
    assert.equal(recordIds.length, texts.length);
  });

  test('List pages through a namespace, every record once', async () => {
    const { summaries, pages } = await allPages('List', { memory_id: MEMORY_ID, namespace, page_size: 3 });
    assert.equal(pages, 2);
    assert.deepEqual(summaries.map((s) => s.memory_record_id).sort(), [...recordIds].sort());
    const byId = new Map(summaries.map((s) => [s.memory_record_id, s]));
    const first = byId.get(recordIds[0]);
    assert.equal(first.content.text, texts[0]);
    assert.deepEqual(first.namespaces, [namespace]);
    assert.equal(first.memory_strategy_id, 'manual');
    assert.equal(first.metadata.topic.string_value, 'even');
    assert.ok(first.created_at.seconds > 0);
    assert.equal(first.score, undefined, 'a listed record has no score');
  });

  test('List filters by metadata and by namespace path', async () => {
    const { summaries } = await allPages('List', {
      memory_id: MEMORY_ID,
      namespace_path: NAMESPACE,
      metadata_filters: [
        {
          left: { metadata_key: 'topic' },
          operator: 'METADATA_FILTER_OPERATOR_EQUALS_TO',
          right: { metadata_value: { string_value: 'odd' } },
        },
      ],
    });
    assert.deepEqual(summaries.map((s) => s.memory_record_id).sort(), [recordIds[1], recordIds[3]].sort());
  });

  test('Retrieve ranks what matches the query, best first, with scores', async () => {
    const reply = await call(client, 'Retrieve', {
      memory_id: MEMORY_ID,
      namespace,
      search_criteria: { search_query: 'green tea' },
    });
    const found = reply.memory_record_summaries;
    assert.deepEqual(found.map((s) => s.memory_record_id).sort(), [recordIds[0], recordIds[2]].sort());
    assert.ok(found.every((s) => typeof s.score === 'number' && s.score > 0));
    assert.ok(found[0].score >= found[1].score, 'best first');
    assert.equal(reply.next_page_token, undefined, 'one page');

    const top = await call(client, 'Retrieve', {
      memory_id: MEMORY_ID,
      namespace,
      search_criteria: { search_query: 'green tea', top_k: 1 },
    });
    assert.deepEqual(top.memory_record_summaries.map((s) => s.memory_record_id), [found[0].memory_record_id]);
  });

  test('Retrieve without a query and List with a page too large are INVALID_ARGUMENT', async () => {
    const retrieve = await failure(
      call(client, 'Retrieve', { memory_id: MEMORY_ID, search_criteria: { search_query: '' } }),
      grpc.status.INVALID_ARGUMENT,
    );
    assert.deepEqual(fieldPaths(retrieve), ['search_criteria.search_query']);
    const list = await failure(
      call(client, 'List', { memory_id: MEMORY_ID, page_size: 101 }),
      grpc.status.INVALID_ARGUMENT,
    );
    assert.deepEqual(fieldPaths(list), ['page_size']);
  });

  test('the largest page fits the receive limit clients set, and not the default', async () => {
    // Every member at AWS's limits: 16,000 characters of 4 bytes each in UTF-8, a namespace of 1,024
    // characters, a strategy id of 100, 20 metadata keys of 128 with 5 values of 64 each.
    const largest = `${NAMESPACE}/largest/`.padEnd(1024, 'x');
    const text = '\u{1F375}'.repeat(16_000);
    const metadata = Object.fromEntries(
      Array.from({ length: 20 }, (_, index) => [
        `key${index}`.padEnd(128, 'k'),
        { string_list_value: { values: Array.from({ length: 5 }, () => 'v'.repeat(64)) } },
      ]),
    );
    const record = (index) => ({
      ...newRecord(text, `r${index}`, largest),
      memory_strategy_id: 's'.repeat(100),
      metadata,
    });
    // In batches of 25: boto3 escapes each such character as 12 bytes of JSON, and 100 of these records
    // would be over the emulator's 16 MiB request body.
    for (let batch = 0; batch < 4; batch += 1) {
      await create(Array.from({ length: 25 }, (_, index) => record(index)));
    }
    const request = { memory_id: MEMORY_ID, namespace: largest, page_size: 100 };
    const page = await call(client, 'List', request);
    assert.equal(page.memory_record_summaries.length, 100);
    assert.ok(page.memory_record_summaries.every((s) => s.content.text === text && s.namespaces[0] === largest));
    assert.ok(Object.keys(page.memory_record_summaries[0].metadata).length === 20);

    const withDefaultLimit = connect(ADDRESS, undefined, { 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
    // gRPC's default; the message names the page's size.
    try {
      await assert.rejects(call(withDefaultLimit, 'List', request), (error) => {
        assert.equal(error.code, grpc.status.RESOURCE_EXHAUSTED);
        const size = Number(/larger than max \((\d+) vs/.exec(error.details)[1]);
        assert.ok(size > 7 * 1024 * 1024 && size < 8 * 1024 * 1024, `page of ${size} bytes`);
        return true;
      });
    } finally {
      withDefaultLimit.close();
    }
    const reply = await call(client, 'BatchDelete', {
      memory_id: MEMORY_ID,
      records: page.memory_record_summaries.map((s) => ({ memory_record_id: s.memory_record_id })),
    });
    assert.equal(reply.successful_records.length, 100);
  });
});

// Last: a new RPC in the contract fails this file until a test above calls it.
test('every RPC of the contract was called', () => {
  assert.deepEqual(METHODS.filter((method) => !called.has(method)), []);
});
