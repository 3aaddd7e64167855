package com.agentcore.memory.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.List;
import org.junit.jupiter.api.function.Executable;

/** The AIP-193 details of an error, read back as a Java caller does: StatusProto.fromThrowable. */
final class RichErrors {
  static final String FACADE_DOMAIN = "agentcore-memory-grpc";
  static final String AWS_DOMAIN = "bedrock-agentcore.amazonaws.com";

  private RichErrors() {}

  /**
   * The google.rpc.Status of the error `call` throws, whose code must be `code`; every error of the
   * facade carries one (grpc-status-details-bin) with exactly one ErrorInfo.
   */
  static com.google.rpc.Status failure(Status.Code code, Executable call) {
    StatusRuntimeException error = assertThrows(StatusRuntimeException.class, call, "the call succeeded");
    assertEquals(code, error.getStatus().getCode(), error.getStatus().toString());
    com.google.rpc.Status status = StatusProto.fromThrowable(error);
    assertNotNull(status, "no grpc-status-details-bin trailer: " + error.getStatus());
    assertEquals(code.value(), status.getCode());
    assertEquals(1, status.getDetailsList().stream().filter(d -> d.is(ErrorInfo.class)).count(),
        "one ErrorInfo: " + status);
    return status;
  }

  /** The one detail of `type` in `status`. */
  static <T extends Message> T detail(com.google.rpc.Status status, Class<T> type) {
    for (Any packed : status.getDetailsList()) {
      if (packed.is(type)) {
        try {
          return packed.unpack(type);
        } catch (InvalidProtocolBufferException e) {
          throw new AssertionError("a " + type.getSimpleName() + " that does not parse", e);
        }
      }
    }
    return fail("no " + type.getSimpleName() + " in " + status);
  }

  static ErrorInfo errorInfo(com.google.rpc.Status status) {
    return detail(status, ErrorInfo.class);
  }

  /** The fields a BadRequest names, in its order. */
  static List<String> fieldPaths(com.google.rpc.Status status) {
    return detail(status, BadRequest.class).getFieldViolationsList().stream()
        .map(BadRequest.FieldViolation::getField)
        .toList();
  }
}
