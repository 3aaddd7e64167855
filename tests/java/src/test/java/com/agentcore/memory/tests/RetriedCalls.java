package com.agentcore.memory.tests;

import static com.agentcore.memory.tests.Env.MEMORY_ID;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.agentcore.memory.v1.BatchCreateRequest;
import com.agentcore.memory.v1.BatchCreateResponse;
import com.agentcore.memory.v1.BatchUpdateRequest;
import com.agentcore.memory.v1.BatchUpdateResponse;
import com.agentcore.memory.v1.GetRequest;
import com.agentcore.memory.v1.ListRequest;
import com.agentcore.memory.v1.MemoryContent;
import com.agentcore.memory.v1.MemoryRecordResult;
import com.agentcore.memory.v1.MemoryRecordSummary;
import com.agentcore.memory.v1.MemoryRecordUpdate;
import com.agentcore.memory.v1.MemoryRecordsServiceGrpc.MemoryRecordsServiceBlockingStub;
import com.agentcore.memory.v1.RetrieveRequest;
import com.agentcore.memory.v1.SearchCriteria;
import com.google.gson.Gson;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The published service config (deploy/clients/service-config.json, MEMORY_RECORDS_SERVICE_CONFIG) on a
 * channel to two replicas, and the five RPCs its retry policy names (Get, List, Retrieve, BatchUpdate,
 * BatchCreate), each called and its answer checked: the reads and the BatchUpdate on a seed record,
 * each BatchCreate with a client_token.
 */
final class RetriedCalls {
  static final List<String> METHODS = List.of("Get", "List", "Retrieve", "BatchUpdate", "BatchCreate");
  private static final String SEED_TEXT = "the seed: green tea";

  private RetriedCalls() {}

  /** The record the reads and the BatchUpdate are about, alone in its namespace. */
  record Seed(String recordId, String namespace) {}

  /**
   * A channel to `addresses` ("host:port,host:port", StaticAddresses) with the published config as
   * a Java client uses it: defaultServiceConfig(...).enableRetry(). (Retries are grpc-java's default
   * already, so enableRetry() only says so; disableRetry() fails RetryAfterAKillTest.)
   */
  @SuppressWarnings("unchecked")
  static ManagedChannel publishedConfigChannel(String addresses, ClientInterceptor... interceptors)
      throws IOException {
    Map<String, ?> config = new Gson().fromJson(
        Files.readString(Path.of(Env.require("MEMORY_RECORDS_SERVICE_CONFIG"))), Map.class);
    return Grpc.newChannelBuilder(StaticAddresses.target(addresses), InsecureChannelCredentials.create())
        .defaultServiceConfig(config)
        .enableRetry()
        .intercept(interceptors)
        .build();
  }

  static Seed seed(MemoryRecordsServiceBlockingStub stub, String namespace, String clientToken) {
    return new Seed(call(stub, "BatchCreate", null, namespace, clientToken), namespace);
  }

  /**
   * Calls `method` and checks its answer; a BatchCreate creates one record ("r" in `createIn`, with
   * `clientToken`) and returns its id; the others return null. A failed call throws
   * StatusRuntimeException, a wrong answer AssertionError.
   */
  static String call(
      MemoryRecordsServiceBlockingStub stub, String method, Seed seed, String createIn, String clientToken) {
    switch (method) {
      case "Get" -> assertEquals(seed.recordId(), stub.get(GetRequest.newBuilder()
          .setMemoryId(MEMORY_ID).setMemoryRecordId(seed.recordId()).build()).getMemoryRecord().getMemoryRecordId());
      case "List" -> assertEquals(List.of(seed.recordId()), ids(stub.list(ListRequest.newBuilder()
          .setMemoryId(MEMORY_ID).setNamespace(seed.namespace()).build()).getMemoryRecordSummariesList()));
      case "Retrieve" -> assertEquals(List.of(seed.recordId()), ids(stub.retrieve(RetrieveRequest.newBuilder()
          .setMemoryId(MEMORY_ID).setNamespace(seed.namespace())
          .setSearchCriteria(SearchCriteria.newBuilder().setSearchQuery("green tea")).build())
          .getMemoryRecordSummariesList()));
      case "BatchUpdate" -> {
        BatchUpdateResponse updated = stub.batchUpdate(BatchUpdateRequest.newBuilder().setMemoryId(MEMORY_ID)
            .addRecords(MemoryRecordUpdate.newBuilder().setMemoryRecordId(seed.recordId())
                .setTimestamp(Records.WHEN).setContent(MemoryContent.newBuilder().setText(SEED_TEXT)))
            .build());
        assertEquals(List.of(seed.recordId()),
            updated.getSuccessfulRecordsList().stream().map(MemoryRecordResult::getMemoryRecordId).toList(),
            updated.toString());
      }
      case "BatchCreate" -> {
        BatchCreateResponse created = stub.batchCreate(BatchCreateRequest.newBuilder().setMemoryId(MEMORY_ID)
            .setClientToken(clientToken)
            .addRecords(Records.record("r", createIn, seed == null ? SEED_TEXT : "created by " + clientToken))
            .build());
        assertEquals(1, created.getSuccessfulRecordsCount(), created.toString());
        return created.getSuccessfulRecords(0).getMemoryRecordId();
      }
      default -> throw new IllegalArgumentException(method);
    }
    return null;
  }

  static List<String> ids(List<MemoryRecordSummary> summaries) {
    return summaries.stream().map(MemoryRecordSummary::getMemoryRecordId).toList();
  }
}
