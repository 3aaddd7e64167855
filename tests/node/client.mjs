// A Node.js client of agentcore.memory.v1.MemoryRecordsService, as a caller in TypeScript or
// JavaScript would write it: @grpc/grpc-js with the contract loaded at run time by
// @grpc/proto-loader, and the AIP-193 details of an error decoded from `grpc-status-details-bin`
// with google.rpc.Status from google-proto-files. Credentials are a parameter, so the same client
// connects in plaintext or over (m)TLS.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const googleProtoFiles = require('google-proto-files');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// The receive limit a client should set: the largest List or Retrieve page (7.1 MiB, README "Field
// mapping") is larger than gRPC's default of 4 MiB.
export const RECEIVE_LIMIT_BYTES = 8 * 1024 * 1024;

// snake_case field names as in the proto; enums by name; 64-bit integers as strings; unset fields
// left out, so that presence is what the server sent (but a list or map always present, empty or
// not); the member of a oneof named in a virtual field.
const LOADER_OPTIONS = {
  keepCase: true, enums: String, longs: String, defaults: false, arrays: true, objects: true, oneofs: true,
};

const definition = protoLoader.loadSync('agentcore/memory/v1/memory_records.proto', {
  ...LOADER_OPTIONS,
  includeDirs: [path.join(ROOT, 'protos')],
});
const { MemoryRecordsService } = grpc.loadPackageDefinition(definition).agentcore.memory.v1;

// The RPCs of the contract, as the proto declares them.
export const METHODS = Object.keys(MemoryRecordsService.service);

const rpcTypes = googleProtoFiles.loadSync([
  googleProtoFiles.getProtoPath('rpc', 'status.proto'),
  googleProtoFiles.getProtoPath('rpc', 'error_details.proto'),
], { keepCase: true });
const Status = rpcTypes.lookupType('google.rpc.Status');

/** A client of `address` ("host:port"); plaintext unless `credentials` say otherwise. */
export function connect(address, credentials = grpc.credentials.createInsecure(), options = {}) {
  return new MemoryRecordsService(address, credentials, {
    'grpc.max_receive_message_length': RECEIVE_LIMIT_BYTES,
    ...options,
  });
}

// The RPCs this process has called, for the check that the tests leave none out.
export const called = new Set();

/** Calls `method` with `request`; resolves to the reply, rejects with grpc-js's ServiceError. */
export function call(client, method, request, { deadlineSeconds = 30 } = {}) {
  called.add(method);
  const deadline = new Date(Date.now() + deadlineSeconds * 1000);
  return new Promise((resolve, reject) => {
    client[method](request, { deadline }, (error, reply) => (error ? reject(error) : resolve(reply)));
  });
}

/**
 * The google.rpc.Status an error carried in its `grpc-status-details-bin` trailer, with each detail
 * unpacked by its type: { code, message, details: { ErrorInfo: {...}, BadRequest: {...}, ... } }.
 * Undefined when the error has no such trailer.
 */
export function richStatus(error) {
  const [encoded] = error.metadata?.get('grpc-status-details-bin') ?? [];
  if (encoded === undefined) return undefined;
  const status = Status.decode(encoded);
  const details = {};
  for (const packed of status.details) {
    const typeName = packed.type_url.slice(packed.type_url.lastIndexOf('/') + 1);
    const type = rpcTypes.lookupType(typeName);
    details[type.name] = type.toObject(type.decode(packed.value), { enums: String, longs: String });
  }
  return { code: status.code, message: status.message, details };
}

export { grpc };
