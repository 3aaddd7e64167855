// The TypeScript client package (generated/ts: protoc-gen-es, built into dist/), installed as a service
// installs it (package.json: file:generated/ts) and called through @connectrpc/connect-node's gRPC
// transport, compiled with `tsc --strict`: a record created, read, listed, searched and deleted,
// and a caller's mistake decoded into google.rpc's ErrorInfo and BadRequest with
// ConnectError.findDetails. The server's address comes from MEMORY_RECORDS_ADDRESS
// (tests/integration/test_ts_client.py starts one on the embedded emulator).
import assert from "node:assert/strict";
import { test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  BatchCreateRequestSchema,
  MemoryRecordsService,
} from "@agentcore-memory/memory-records-client/agentcore/memory/v1/memory_records_pb";
import { BadRequestSchema, ErrorInfoSchema } from "@agentcore-memory/memory-records-client/google/rpc/error_details_pb";

const address = process.env.MEMORY_RECORDS_ADDRESS;
const MEMORY_ID = "demo_memory-0123456789";

// --- begin docs/calling.md: ts ---
function connect(address: string) {
  const transport = createGrpcTransport({
    baseUrl: `http://${address}`,
    // A List or Retrieve page can be larger than 4 MiB (docs/field-mapping.md).
    readMaxBytes: 8 * 1024 * 1024,
  });
  return createClient(MemoryRecordsService, transport);
}

// What went wrong: the code, ErrorInfo's reason and the fields BadRequest names.
function explain(error: unknown): [Code, string, string[]] {
  const connectError = ConnectError.from(error);
  const [info] = connectError.findDetails(ErrorInfoSchema);
  const fields = connectError.findDetails(BadRequestSchema).flatMap((bad) => bad.fieldViolations.map((v) => v.field));
  return [connectError.code, info?.reason ?? "", fields];
}
// --- end docs/calling.md: ts ---

async function reasonOf(call: Promise<unknown>): Promise<[Code, string, string[]]> {
  let failure: unknown;
  try {
    await call;
  } catch (error) {
    failure = error;
  }
  assert.ok(failure !== undefined, "the call succeeded");
  return explain(failure);
}

test("a TypeScript client creates, reads, lists, searches and deletes a record, and reads error details", async () => {
  assert.ok(address, "set MEMORY_RECORDS_ADDRESS to the server, host:port");
  const client = connect(address);
  const namespace = `ts/run-${process.pid}-${Date.now()}`;

  const created = await client.batchCreate(
    create(BatchCreateRequestSchema, {
      memoryId: MEMORY_ID,
      records: [
        {
          requestIdentifier: "r1",
          namespaces: [namespace],
          content: { content: { case: "text", value: "likes green tea" } },
          timestamp: timestampFromDate(new Date("2026-01-02T03:04:05Z")),
        },
      ],
    }),
    { timeoutMs: 10_000 },
  );
  assert.equal(created.failedRecords.length, 0);
  const [result] = created.successfulRecords;
  assert.ok(result);
  assert.equal(result.requestIdentifier, "r1");
  const id = result.memoryRecordId;

  const got = await client.get({ memoryId: MEMORY_ID, memoryRecordId: id }, { timeoutMs: 10_000 });
  assert.equal(got.memoryRecord?.content?.content.case, "text");
  assert.equal(got.memoryRecord?.content?.content.value, "likes green tea");
  assert.deepEqual(got.memoryRecord?.namespaces, [namespace]);

  const listed = await client.list({ memoryId: MEMORY_ID, namespace }, { timeoutMs: 10_000 });
  assert.deepEqual(
    listed.memoryRecordSummaries.map((summary) => summary.memoryRecordId),
    [id],
  );

  const found = await client.retrieve(
    { memoryId: MEMORY_ID, namespace, searchCriteria: { searchQuery: "green tea" } },
    { timeoutMs: 10_000 },
  );
  assert.ok(found.memoryRecordSummaries.some((summary) => summary.memoryRecordId === id));

  const deleted = await client.delete({ memoryId: MEMORY_ID, memoryRecordId: id }, { timeoutMs: 10_000 });
  assert.equal(deleted.memoryRecordId, id);

  // A caller's mistake: INVALID_ARGUMENT, its reason, and the field it names.
  const [code, reason, fields] = await reasonOf(
    client.get({ memoryId: MEMORY_ID, memoryRecordId: "" }, { timeoutMs: 10_000 }),
  );
  assert.equal(code, Code.InvalidArgument);
  assert.ok(reason.length > 0, "an ErrorInfo with a reason");
  assert.deepEqual(fields, ["memory_record_id"]);

  // What was deleted is gone: NOT_FOUND.
  const [missing] = await reasonOf(client.get({ memoryId: MEMORY_ID, memoryRecordId: id }, { timeoutMs: 10_000 }));
  assert.equal(missing, Code.NotFound);
});
