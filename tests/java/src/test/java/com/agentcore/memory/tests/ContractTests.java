package com.agentcore.memory.tests;

import static com.agentcore.memory.tests.Env.MEMORY_ID;
import static com.agentcore.memory.tests.Records.UNKNOWN_MEMORY_ID;
import static com.agentcore.memory.tests.Records.UNKNOWN_RECORD_ID;
import static com.agentcore.memory.tests.Records.record;
import static com.agentcore.memory.tests.Records.timestamp;
import static com.agentcore.memory.tests.RichErrors.AWS_DOMAIN;
import static com.agentcore.memory.tests.RichErrors.FACADE_DOMAIN;
import static com.agentcore.memory.tests.RichErrors.errorInfo;
import static com.agentcore.memory.tests.RichErrors.failure;
import static com.agentcore.memory.tests.RichErrors.fieldPaths;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.agentcore.memory.v1.BatchCreateRequest;
import com.agentcore.memory.v1.BatchCreateResponse;
import com.agentcore.memory.v1.BatchDeleteRequest;
import com.agentcore.memory.v1.BatchDeleteResponse;
import com.agentcore.memory.v1.BatchUpdateRequest;
import com.agentcore.memory.v1.BatchUpdateResponse;
import com.agentcore.memory.v1.DeleteRequest;
import com.agentcore.memory.v1.GetRequest;
import com.agentcore.memory.v1.ListRequest;
import com.agentcore.memory.v1.ListResponse;
import com.agentcore.memory.v1.MemoryContent;
import com.agentcore.memory.v1.MemoryRecord;
import com.agentcore.memory.v1.MemoryRecordCreate;
import com.agentcore.memory.v1.MemoryRecordDelete;
import com.agentcore.memory.v1.MemoryRecordResult;
import com.agentcore.memory.v1.MemoryRecordStatus;
import com.agentcore.memory.v1.MemoryRecordSummary;
import com.agentcore.memory.v1.MemoryRecordUpdate;
import com.agentcore.memory.v1.MemoryRecordsServiceGrpc;
import com.agentcore.memory.v1.MetadataValue;
import com.agentcore.memory.v1.RecordOutcome;
import com.agentcore.memory.v1.RetrieveRequest;
import com.agentcore.memory.v1.RetrieveResponse;
import com.agentcore.memory.v1.SearchCriteria;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RequestInfo;
import com.google.rpc.ResourceInfo;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Every RPC of MemoryRecordsService called from Java through the generated blocking stub: replies
 * field for field, per-record results, and errors' codes and AIP-193 details. Run once per transport
 * (PlaintextContractTest, MutualTlsContractTest); the last test fails when the contract has an RPC that
 * none of these tests called.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
abstract class ContractTests {
  private final Channels.CallRecorder recorder = new Channels.CallRecorder();
  private ManagedChannel channel;

  /** A channel of this transport to its facade, through `recorder`. */
  protected abstract ManagedChannel connect(Channels.CallRecorder recorder) throws Exception;

  /** The transport's name, in namespaces and client tokens. */
  protected abstract String transport();

  @BeforeAll
  void open() throws Exception {
    channel = connect(recorder);
  }

  @AfterAll
  void close() throws InterruptedException {
    Channels.close(channel);
  }

  /** A stub whose next call has 30 s (a stub's deadline is fixed when the stub is made). */
  protected MemoryRecordsServiceGrpc.MemoryRecordsServiceBlockingStub stub() {
    return MemoryRecordsServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private List<String> create(MemoryRecordCreate... records) {
    BatchCreateResponse reply = stub().batchCreate(
        BatchCreateRequest.newBuilder().setMemoryId(MEMORY_ID).addAllRecords(List.of(records)).build());
    assertEquals(List.of(), reply.getFailedRecordsList());
    return reply.getSuccessfulRecordsList().stream().map(MemoryRecordResult::getMemoryRecordId).toList();
  }

  /** Every summary of a List, page after page (AIP-158), and the number of pages. */
  private record Pages(List<MemoryRecordSummary> summaries, int pages) {}

  private Pages listAll(ListRequest first) {
    List<MemoryRecordSummary> summaries = new ArrayList<>();
    int pages = 0;
    String token = "";
    do {
      ListResponse page = stub().list(first.toBuilder().setPageToken(token).build());
      summaries.addAll(page.getMemoryRecordSummariesList());
      pages++;
      token = page.getNextPageToken();
    } while (!token.isEmpty() && pages < 100);
    return new Pages(summaries, pages);
  }

  @Test
  @Order(1)
  void aCreatedRecordReadsBackFieldForField() {
    String namespace = Records.namespace(transport());
    BatchCreateResponse reply = stub().batchCreate(BatchCreateRequest.newBuilder()
        .setMemoryId(MEMORY_ID)
        .addRecords(record("r1", namespace, "Alice likes green tea"))
        .setClientToken("java-" + transport() + "-" + ProcessHandle.current().pid() + "-" + System.nanoTime())
        .build());
    assertEquals(0, reply.getFailedRecordsCount());
    MemoryRecordResult created = reply.getSuccessfulRecords(0);
    assertEquals("r1", created.getRequestIdentifier());
    assertEquals(MemoryRecordStatus.MEMORY_RECORD_STATUS_SUCCEEDED, created.getStatus());
    assertEquals(RecordOutcome.RECORD_OUTCOME_UNSPECIFIED, created.getOutcome());
    assertTrue(created.getMemoryRecordId().startsWith("mem-"), created.getMemoryRecordId());

    MemoryRecord stored = stub().get(GetRequest.newBuilder()
        .setMemoryId(MEMORY_ID).setMemoryRecordId(created.getMemoryRecordId()).build()).getMemoryRecord();
    assertEquals(created.getMemoryRecordId(), stored.getMemoryRecordId());
    assertEquals("Alice likes green tea", stored.getContent().getText());
    assertEquals(List.of(namespace), stored.getNamespacesList());
    assertEquals("manual", stored.getMemoryStrategyId());
    assertEquals(Records.WHEN, stored.getTimestamp(), "kept to the microsecond");
    assertTrue(stored.getCreatedAt().getSeconds() > 0);
    assertFalse(stored.hasExpiresAt());
    assertEquals("drinks", stored.getMetadataOrThrow("topic").getStringValue());
    assertEquals(List.of("tea", "green"), stored.getMetadataOrThrow("tags").getStringListValue().getValuesList());
    assertEquals(0.75, stored.getMetadataOrThrow("weight").getNumberValue());
    assertEquals(timestamp(1_700_000_000, 5_000), stored.getMetadataOrThrow("seen").getDateTimeValue());
  }

  @Test
  @Order(2)
  void anUpdateChangesWhatIsSetAndAnUnknownRecordFailsAlone() {
    String namespace = Records.namespace(transport());
    String recordId = create(record("r1", namespace, "Alice likes green tea")).get(0);
    BatchUpdateResponse reply = stub().batchUpdate(BatchUpdateRequest.newBuilder()
        .setMemoryId(MEMORY_ID)
        .addRecords(MemoryRecordUpdate.newBuilder()
            .setMemoryRecordId(recordId)
            .setTimestamp(timestamp(1_732_600_000, 0))
            .setContent(MemoryContent.newBuilder().setText("Alice prefers oolong"))
            .putMetadata("topic", MetadataValue.newBuilder().setStringValue("oolong").build()))
        .addRecords(MemoryRecordUpdate.newBuilder()
            .setMemoryRecordId(UNKNOWN_RECORD_ID).setTimestamp(timestamp(1_732_600_000, 0)))
        .build());
    assertEquals(List.of(recordId), ids(reply.getSuccessfulRecordsList()));
    assertEquals(MemoryRecordStatus.MEMORY_RECORD_STATUS_SUCCEEDED, reply.getSuccessfulRecords(0).getStatus());
    MemoryRecordResult failed = reply.getFailedRecords(0);
    assertEquals(1, reply.getFailedRecordsCount());
    assertEquals(UNKNOWN_RECORD_ID, failed.getMemoryRecordId());
    assertEquals(MemoryRecordStatus.MEMORY_RECORD_STATUS_FAILED, failed.getStatus());
    assertEquals(404, failed.getErrorCode());
    assertEquals(RecordOutcome.RECORD_OUTCOME_NOT_APPLIED, failed.getOutcome());

    MemoryRecord stored = stub().get(
        GetRequest.newBuilder().setMemoryId(MEMORY_ID).setMemoryRecordId(recordId).build()).getMemoryRecord();
    assertEquals("Alice prefers oolong", stored.getContent().getText());
    assertEquals(List.of(namespace), stored.getNamespacesList(), "namespaces left unset stay unchanged");
    assertEquals("oolong", stored.getMetadataOrThrow("topic").getStringValue());
  }

  @Test
  @Order(3)
  void aDeletedRecordIsGone() {
    String recordId = create(record("r1", Records.namespace(transport()), "to forget")).get(0);
    assertEquals(recordId, stub().delete(
        DeleteRequest.newBuilder().setMemoryId(MEMORY_ID).setMemoryRecordId(recordId).build()).getMemoryRecordId());
    com.google.rpc.Status status = failure(Status.Code.NOT_FOUND, () -> stub().get(
        GetRequest.newBuilder().setMemoryId(MEMORY_ID).setMemoryRecordId(recordId).build()));
    assertEquals("AWS_RESOURCE_NOT_FOUND", errorInfo(status).getReason());

    // Deleting it again: NOT_FOUND from DeleteMemoryRecord.
    status = failure(Status.Code.NOT_FOUND, () -> stub().delete(
        DeleteRequest.newBuilder().setMemoryId(MEMORY_ID).setMemoryRecordId(recordId).build()));
    assertEquals("DeleteMemoryRecord", errorInfo(status).getMetadataOrThrow("operation"));
  }

  @Test
  @Order(4)
  void aBatchDeleteDeletesTheRecordsItNamesAndAnUnknownOneFailsAlone() {
    String namespace = Records.namespace(transport());
    List<String> recordIds = create(record("r1", namespace, "one"), record("r2", namespace, "two"));
    BatchDeleteRequest.Builder request = BatchDeleteRequest.newBuilder().setMemoryId(MEMORY_ID);
    for (String id : List.of(recordIds.get(0), recordIds.get(1), UNKNOWN_RECORD_ID)) {
      request.addRecords(MemoryRecordDelete.newBuilder().setMemoryRecordId(id));
    }
    BatchDeleteResponse reply = stub().batchDelete(request.build());
    assertEquals(recordIds, ids(reply.getSuccessfulRecordsList()));
    assertEquals(List.of(UNKNOWN_RECORD_ID), ids(reply.getFailedRecordsList()));
    assertEquals(404, reply.getFailedRecords(0).getErrorCode());
    assertEquals(MemoryRecordStatus.MEMORY_RECORD_STATUS_FAILED, reply.getFailedRecords(0).getStatus());
    for (String id : recordIds) {
      failure(Status.Code.NOT_FOUND,
          () -> stub().get(GetRequest.newBuilder().setMemoryId(MEMORY_ID).setMemoryRecordId(id).build()));
    }
  }

  @Test
  @Order(5)
  void listPagesThroughANamespaceEveryRecordOnce() {
    String namespace = Records.namespace(transport());
    List<String> texts = List.of("Alice likes green tea", "Bob drinks black coffee", "Carol naps", "Dan reads");
    List<String> recordIds = create(IntStream.range(0, texts.size())
        .mapToObj(i -> record("r" + i, namespace, texts.get(i))).toArray(MemoryRecordCreate[]::new));

    Pages pages = listAll(ListRequest.newBuilder().setMemoryId(MEMORY_ID).setNamespace(namespace).setPageSize(3).build());
    assertEquals(2, pages.pages());
    assertEquals(new TreeSet<>(recordIds), pages.summaries().stream()
        .map(MemoryRecordSummary::getMemoryRecordId).collect(Collectors.toCollection(TreeSet::new)));
    assertEquals(recordIds.size(), pages.summaries().size(), "each record once");
    MemoryRecordSummary first = pages.summaries().stream()
        .filter(s -> s.getMemoryRecordId().equals(recordIds.get(0))).findFirst().orElseThrow();
    assertEquals(texts.get(0), first.getContent().getText());
    assertEquals(List.of(namespace), first.getNamespacesList());
    assertEquals("manual", first.getMemoryStrategyId());
    assertFalse(first.hasScore(), "a listed record has no score");
  }

  @Test
  @Order(6)
  void retrieveRanksWhatMatchesTheQueryBestFirst() {
    String namespace = Records.namespace(transport());
    List<String> recordIds = create(
        record("r0", namespace, "Alice likes green tea"),
        record("r1", namespace, "Bob drinks black coffee"),
        record("r2", namespace, "green tea keeps Carol awake"));
    RetrieveRequest request = RetrieveRequest.newBuilder()
        .setMemoryId(MEMORY_ID)
        .setNamespace(namespace)
        .setSearchCriteria(SearchCriteria.newBuilder().setSearchQuery("green tea"))
        .build();
    RetrieveResponse reply = stub().retrieve(request);
    List<MemoryRecordSummary> found = reply.getMemoryRecordSummariesList();
    assertEquals(Set.of(recordIds.get(0), recordIds.get(2)),
        found.stream().map(MemoryRecordSummary::getMemoryRecordId).collect(Collectors.toSet()));
    assertTrue(found.stream().allMatch(s -> s.hasScore() && s.getScore() > 0), found.toString());
    assertTrue(found.get(0).getScore() >= found.get(1).getScore(), "best first");
    assertEquals("", reply.getNextPageToken(), "one page");

    RetrieveResponse top = stub().retrieve(request.toBuilder()
        .setSearchCriteria(request.getSearchCriteria().toBuilder().setTopK(1)).build());
    assertEquals(List.of(found.get(0).getMemoryRecordId()),
        top.getMemoryRecordSummariesList().stream().map(MemoryRecordSummary::getMemoryRecordId).toList());
  }

  @Test
  @Order(7)
  void aBatchOf250RecordsAnswersEveryRecordInRequestOrder() {
    // 250 records: three AWS calls of at most 100, sent concurrently by the facade; the results come
    // back in the order of the request all the same.
    String namespace = Records.namespace(transport());
    List<String> identifiers = IntStream.range(0, 250).mapToObj(i -> String.format("r%03d", i)).toList();
    BatchCreateRequest.Builder request = BatchCreateRequest.newBuilder().setMemoryId(MEMORY_ID);
    identifiers.forEach(id -> request.addRecords(record(id, namespace, "record " + id)));
    BatchCreateResponse reply = stub().batchCreate(request.build());

    assertEquals(0, reply.getFailedRecordsCount());
    assertEquals(identifiers,
        reply.getSuccessfulRecordsList().stream().map(MemoryRecordResult::getRequestIdentifier).toList());
    assertTrue(reply.getSuccessfulRecordsList().stream()
        .allMatch(r -> r.getStatus() == MemoryRecordStatus.MEMORY_RECORD_STATUS_SUCCEEDED));
    Set<String> recordIds = new HashSet<>(ids(reply.getSuccessfulRecordsList()));
    assertEquals(250, recordIds.size(), "a distinct id for each record");

    // All 250 are stored, each once.
    Pages pages = listAll(ListRequest.newBuilder().setMemoryId(MEMORY_ID).setNamespace(namespace).setPageSize(100).build());
    assertEquals(3, pages.pages());
    assertEquals(recordIds, pages.summaries().stream().map(MemoryRecordSummary::getMemoryRecordId).collect(Collectors.toSet()));
  }

  @Test
  @Order(8)
  void invalidFieldsAreInvalidArgumentWithABadRequestNamingEachByItsProtoPath() {
    String namespace = Records.namespace(transport());
    MemoryRecordCreate bad = record("r2", namespace, "").toBuilder().setNamespaces(0, "bad namespace!").build();
    com.google.rpc.Status status = failure(Status.Code.INVALID_ARGUMENT, () -> stub().batchCreate(
        BatchCreateRequest.newBuilder().setMemoryId(MEMORY_ID)
            .addRecords(record("r1", namespace, "fine")).addRecords(bad).build()));
    ErrorInfo info = errorInfo(status);
    assertEquals("INVALID_ARGUMENT", info.getReason());
    assertEquals(FACADE_DOMAIN, info.getDomain());
    assertEquals(List.of("records[1].content.text", "records[1].namespaces[0]"),
        fieldPaths(status).stream().sorted().toList());

    // One more RPC's validation: a page too large for List.
    status = failure(Status.Code.INVALID_ARGUMENT,
        () -> stub().list(ListRequest.newBuilder().setMemoryId(MEMORY_ID).setPageSize(101).build()));
    assertEquals(List.of("page_size"), fieldPaths(status));
  }

  @Test
  @Order(9)
  void awsResourceNotFoundIsNotFoundWithErrorInfoRequestInfoAndResourceInfo() {
    com.google.rpc.Status status = failure(Status.Code.NOT_FOUND, () -> stub().get(
        GetRequest.newBuilder().setMemoryId(MEMORY_ID).setMemoryRecordId(UNKNOWN_RECORD_ID).build()));
    ErrorInfo info = errorInfo(status);
    assertEquals("AWS_RESOURCE_NOT_FOUND", info.getReason());
    assertEquals(AWS_DOMAIN, info.getDomain());
    assertEquals("ResourceNotFoundException", info.getMetadataOrThrow("awsErrorCode"));
    assertEquals("GetMemoryRecord", info.getMetadataOrThrow("operation"));
    assertEquals("404", info.getMetadataOrThrow("httpStatus"));
    assertEquals(info.getMetadataOrThrow("awsRequestId"), RichErrors.detail(status, RequestInfo.class).getRequestId());
    assertEquals("memories/" + MEMORY_ID + "/memoryRecords/" + UNKNOWN_RECORD_ID,
        RichErrors.detail(status, ResourceInfo.class).getResourceName());

    // A batch into a memory that does not exist names the memory.
    status = failure(Status.Code.NOT_FOUND, () -> stub().batchUpdate(BatchUpdateRequest.newBuilder()
        .setMemoryId(UNKNOWN_MEMORY_ID)
        .addRecords(MemoryRecordUpdate.newBuilder().setMemoryRecordId(UNKNOWN_RECORD_ID).setTimestamp(Records.WHEN))
        .build()));
    assertEquals("AWS_RESOURCE_NOT_FOUND", errorInfo(status).getReason());
    assertEquals("memories/" + UNKNOWN_MEMORY_ID, RichErrors.detail(status, ResourceInfo.class).getResourceName());
  }

  /** Last: the contract as the generated client has it, against what the tests above called. */
  @Test
  @Order(Integer.MAX_VALUE)
  void everyRpcOfTheContractWasCalled() {
    Set<String> contract = MemoryRecordsServiceGrpc.getServiceDescriptor().getMethods().stream()
        .map(MethodDescriptor::getBareMethodName)
        .collect(Collectors.toCollection(TreeSet::new));
    assertFalse(contract.isEmpty());
    Set<String> notCalled = new TreeSet<>(contract);
    notCalled.removeAll(recorder.methods);
    assertEquals(Set.of(), notCalled, "RPCs of the contract no test called over " + transport());
  }

  private static List<String> ids(List<MemoryRecordResult> results) {
    return results.stream().map(MemoryRecordResult::getMemoryRecordId).toList();
  }
}
