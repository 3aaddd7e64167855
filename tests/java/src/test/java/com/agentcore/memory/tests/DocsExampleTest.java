package com.agentcore.memory.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.agentcore.memory.v1.GetRequest;
import com.agentcore.memory.v1.MemoryRecordsServiceGrpc;
import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The Java snippet of docs/calling.md, run as written: a channel with the receive limit a List page
 * needs, and a caller's mistake read back from its google.rpc details.
 */
class DocsExampleTest {
  // --- begin docs/calling.md: java ---
  /** A channel to the facade; a List or Retrieve page can be larger than grpc-java's 4 MiB default. */
  static ManagedChannel connect(String address) {
    return Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()) // or TlsChannelCredentials
        .maxInboundMessageSize(8 * 1024 * 1024)
        .build();
  }

  /** What went wrong: the code, ErrorInfo's reason and the fields BadRequest names. */
  static String explain(StatusRuntimeException error) throws InvalidProtocolBufferException {
    StringBuilder text = new StringBuilder(error.getStatus().getCode().name());
    com.google.rpc.Status status = StatusProto.fromThrowable(error);
    if (status == null) {
      return text.toString(); // no details trailer (grpc-status-details-bin): the code alone
    }
    for (Any detail : status.getDetailsList()) {
      if (detail.is(ErrorInfo.class)) {
        text.append(' ').append(detail.unpack(ErrorInfo.class).getReason());
      } else if (detail.is(BadRequest.class)) {
        for (BadRequest.FieldViolation violation : detail.unpack(BadRequest.class).getFieldViolationsList()) {
          text.append(' ').append(violation.getField());
        }
      }
    }
    return text.toString();
  }
  // --- end docs/calling.md: java ---

  @Test
  void theDocsSnippetExplainsACallersMistake() throws Exception {
    ManagedChannel channel = connect(Env.require("MEMORY_RECORDS_ADDRESS"));
    try {
      StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () ->
          MemoryRecordsServiceGrpc.newBlockingStub(channel)
              .withDeadlineAfter(10, TimeUnit.SECONDS)
              .get(GetRequest.newBuilder().setMemoryId(Env.MEMORY_ID).setMemoryRecordId("").build()));
      assertEquals("INVALID_ARGUMENT INVALID_ARGUMENT memory_record_id", explain(error));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
