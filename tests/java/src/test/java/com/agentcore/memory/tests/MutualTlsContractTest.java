package com.agentcore.memory.tests;

import static com.agentcore.memory.tests.Env.MEMORY_ID;
import static com.agentcore.memory.tests.RichErrors.FACADE_DOMAIN;
import static com.agentcore.memory.tests.RichErrors.errorInfo;
import static com.agentcore.memory.tests.RichErrors.failure;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.agentcore.memory.v1.ListRequest;
import com.agentcore.memory.v1.MemoryRecordsServiceGrpc;
import com.google.rpc.ErrorInfo;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

/**
 * The contract over mutual TLS, against the facade at MEMORY_RECORDS_MTLS_ADDRESS, whose policy admits
 * one SPIFFE ID only: the client certificate's (MEMORY_RECORDS_TLS_CERT_FILE). Each served call thus
 * also proves that the facade read that identity from the certificate grpc-java presented. A second
 * certificate of the same CA with another SPIFFE ID (MEMORY_RECORDS_TLS_OTHER_CERT_FILE) is a caller the
 * policy does not admit.
 */
class MutualTlsContractTest extends ContractTests {
  private static String address() {
    return Env.require("MEMORY_RECORDS_MTLS_ADDRESS");
  }

  @Override
  protected ManagedChannel connect(Channels.CallRecorder recorder) throws Exception {
    return Channels.open(address(), Channels.mutualTls(Env.require("MEMORY_RECORDS_TLS_CA_FILE"),
        Env.require("MEMORY_RECORDS_TLS_CERT_FILE"), Env.require("MEMORY_RECORDS_TLS_KEY_FILE")), recorder);
  }

  @Override
  protected String transport() {
    return "mtls";
  }

  private static ListRequest list() {
    return ListRequest.newBuilder().setMemoryId(MEMORY_ID).setNamespace(Records.namespace("mtls")).build();
  }

  @Test
  @Order(100)
  void aCallerThePolicyDoesNotAdmitIsPermissionDeniedWithErrorInfo() throws Exception {
    ManagedChannel other = Channels.open(address(), Channels.mutualTls(Env.require("MEMORY_RECORDS_TLS_CA_FILE"),
        Env.require("MEMORY_RECORDS_TLS_OTHER_CERT_FILE"), Env.require("MEMORY_RECORDS_TLS_OTHER_KEY_FILE")));
    try {
      var stub = MemoryRecordsServiceGrpc.newBlockingStub(other).withDeadlineAfter(10, TimeUnit.SECONDS);
      com.google.rpc.Status status = failure(Status.Code.PERMISSION_DENIED, () -> stub.list(list()));
      ErrorInfo info = errorInfo(status);
      assertEquals("CALLER_NOT_ALLOWED", info.getReason());
      assertEquals(FACADE_DOMAIN, info.getDomain());
      assertEquals("List", info.getMetadataOrThrow("method"));
      assertTrue(info.getMetadataOrThrow("ruleSetVersion").matches("[0-9a-f]{12}"), info.toString());
    } finally {
      Channels.close(other);
    }
  }

  @Test
  @Order(101)
  void aClientWithoutACertificateIsRefusedAtTheHandshake() throws Exception {
    ManagedChannel anonymous = Channels.open(address(), Channels.tlsOnly(Env.require("MEMORY_RECORDS_TLS_CA_FILE")));
    try {
      var stub = MemoryRecordsServiceGrpc.newBlockingStub(anonymous).withDeadlineAfter(10, TimeUnit.SECONDS);
      StatusRuntimeException error = assertThrows(StatusRuntimeException.class, () -> stub.list(list()));
      assertEquals(Status.Code.UNAVAILABLE, error.getStatus().getCode(), error.getStatus().toString());
    } finally {
      Channels.close(anonymous);
    }
  }
}
