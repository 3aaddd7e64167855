package com.agentcore.memory.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * MemoryRecordsService reads and writes the long-term memory records of an AgentCore memory.
 * Errors follow AIP-193: the gRPC status code says what the caller should do (INVALID_ARGUMENT: fix
 * the request; NOT_FOUND: the memory or record does not exist; RESOURCE_EXHAUSTED and UNAVAILABLE:
 * retry with back-off), and a google.rpc.ErrorInfo in the status details names the AWS error.
 * A failure of one record inside a batch is not an error: the RPC succeeds and lists the record in
 * `failed_records`.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class MemoryRecordsServiceGrpc {

  private MemoryRecordsServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "agentcore.memory.v1.MemoryRecordsService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<com.agentcore.memory.v1.BatchCreateRequest,
      com.agentcore.memory.v1.BatchCreateResponse> getBatchCreateMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "BatchCreate",
      requestType = com.agentcore.memory.v1.BatchCreateRequest.class,
      responseType = com.agentcore.memory.v1.BatchCreateResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.agentcore.memory.v1.BatchCreateRequest,
      com.agentcore.memory.v1.BatchCreateResponse> getBatchCreateMethod() {
    io.grpc.MethodDescriptor<com.agentcore.memory.v1.BatchCreateRequest, com.agentcore.memory.v1.BatchCreateResponse> getBatchCreateMethod;
    if ((getBatchCreateMethod = MemoryRecordsServiceGrpc.getBatchCreateMethod) == null) {
      synchronized (MemoryRecordsServiceGrpc.class) {
        if ((getBatchCreateMethod = MemoryRecordsServiceGrpc.getBatchCreateMethod) == null) {
          MemoryRecordsServiceGrpc.getBatchCreateMethod = getBatchCreateMethod =
              io.grpc.MethodDescriptor.<com.agentcore.memory.v1.BatchCreateRequest, com.agentcore.memory.v1.BatchCreateResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "BatchCreate"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.BatchCreateRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.BatchCreateResponse.getDefaultInstance()))
              .setSchemaDescriptor(new MemoryRecordsServiceMethodDescriptorSupplier("BatchCreate"))
              .build();
        }
      }
    }
    return getBatchCreateMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.agentcore.memory.v1.BatchUpdateRequest,
      com.agentcore.memory.v1.BatchUpdateResponse> getBatchUpdateMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "BatchUpdate",
      requestType = com.agentcore.memory.v1.BatchUpdateRequest.class,
      responseType = com.agentcore.memory.v1.BatchUpdateResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.agentcore.memory.v1.BatchUpdateRequest,
      com.agentcore.memory.v1.BatchUpdateResponse> getBatchUpdateMethod() {
    io.grpc.MethodDescriptor<com.agentcore.memory.v1.BatchUpdateRequest, com.agentcore.memory.v1.BatchUpdateResponse> getBatchUpdateMethod;
    if ((getBatchUpdateMethod = MemoryRecordsServiceGrpc.getBatchUpdateMethod) == null) {
      synchronized (MemoryRecordsServiceGrpc.class) {
        if ((getBatchUpdateMethod = MemoryRecordsServiceGrpc.getBatchUpdateMethod) == null) {
          MemoryRecordsServiceGrpc.getBatchUpdateMethod = getBatchUpdateMethod =
              io.grpc.MethodDescriptor.<com.agentcore.memory.v1.BatchUpdateRequest, com.agentcore.memory.v1.BatchUpdateResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "BatchUpdate"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.BatchUpdateRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.BatchUpdateResponse.getDefaultInstance()))
              .setSchemaDescriptor(new MemoryRecordsServiceMethodDescriptorSupplier("BatchUpdate"))
              .build();
        }
      }
    }
    return getBatchUpdateMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.agentcore.memory.v1.GetRequest,
      com.agentcore.memory.v1.GetResponse> getGetMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Get",
      requestType = com.agentcore.memory.v1.GetRequest.class,
      responseType = com.agentcore.memory.v1.GetResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.agentcore.memory.v1.GetRequest,
      com.agentcore.memory.v1.GetResponse> getGetMethod() {
    io.grpc.MethodDescriptor<com.agentcore.memory.v1.GetRequest, com.agentcore.memory.v1.GetResponse> getGetMethod;
    if ((getGetMethod = MemoryRecordsServiceGrpc.getGetMethod) == null) {
      synchronized (MemoryRecordsServiceGrpc.class) {
        if ((getGetMethod = MemoryRecordsServiceGrpc.getGetMethod) == null) {
          MemoryRecordsServiceGrpc.getGetMethod = getGetMethod =
              io.grpc.MethodDescriptor.<com.agentcore.memory.v1.GetRequest, com.agentcore.memory.v1.GetResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Get"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.GetRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.GetResponse.getDefaultInstance()))
              .setSchemaDescriptor(new MemoryRecordsServiceMethodDescriptorSupplier("Get"))
              .build();
        }
      }
    }
    return getGetMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.agentcore.memory.v1.DeleteRequest,
      com.agentcore.memory.v1.DeleteResponse> getDeleteMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Delete",
      requestType = com.agentcore.memory.v1.DeleteRequest.class,
      responseType = com.agentcore.memory.v1.DeleteResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.agentcore.memory.v1.DeleteRequest,
      com.agentcore.memory.v1.DeleteResponse> getDeleteMethod() {
    io.grpc.MethodDescriptor<com.agentcore.memory.v1.DeleteRequest, com.agentcore.memory.v1.DeleteResponse> getDeleteMethod;
    if ((getDeleteMethod = MemoryRecordsServiceGrpc.getDeleteMethod) == null) {
      synchronized (MemoryRecordsServiceGrpc.class) {
        if ((getDeleteMethod = MemoryRecordsServiceGrpc.getDeleteMethod) == null) {
          MemoryRecordsServiceGrpc.getDeleteMethod = getDeleteMethod =
              io.grpc.MethodDescriptor.<com.agentcore.memory.v1.DeleteRequest, com.agentcore.memory.v1.DeleteResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Delete"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.DeleteRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.DeleteResponse.getDefaultInstance()))
              .setSchemaDescriptor(new MemoryRecordsServiceMethodDescriptorSupplier("Delete"))
              .build();
        }
      }
    }
    return getDeleteMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.agentcore.memory.v1.BatchDeleteRequest,
      com.agentcore.memory.v1.BatchDeleteResponse> getBatchDeleteMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "BatchDelete",
      requestType = com.agentcore.memory.v1.BatchDeleteRequest.class,
      responseType = com.agentcore.memory.v1.BatchDeleteResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.agentcore.memory.v1.BatchDeleteRequest,
      com.agentcore.memory.v1.BatchDeleteResponse> getBatchDeleteMethod() {
    io.grpc.MethodDescriptor<com.agentcore.memory.v1.BatchDeleteRequest, com.agentcore.memory.v1.BatchDeleteResponse> getBatchDeleteMethod;
    if ((getBatchDeleteMethod = MemoryRecordsServiceGrpc.getBatchDeleteMethod) == null) {
      synchronized (MemoryRecordsServiceGrpc.class) {
        if ((getBatchDeleteMethod = MemoryRecordsServiceGrpc.getBatchDeleteMethod) == null) {
          MemoryRecordsServiceGrpc.getBatchDeleteMethod = getBatchDeleteMethod =
              io.grpc.MethodDescriptor.<com.agentcore.memory.v1.BatchDeleteRequest, com.agentcore.memory.v1.BatchDeleteResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "BatchDelete"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.BatchDeleteRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.BatchDeleteResponse.getDefaultInstance()))
              .setSchemaDescriptor(new MemoryRecordsServiceMethodDescriptorSupplier("BatchDelete"))
              .build();
        }
      }
    }
    return getBatchDeleteMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.agentcore.memory.v1.ListRequest,
      com.agentcore.memory.v1.ListResponse> getListMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "List",
      requestType = com.agentcore.memory.v1.ListRequest.class,
      responseType = com.agentcore.memory.v1.ListResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.agentcore.memory.v1.ListRequest,
      com.agentcore.memory.v1.ListResponse> getListMethod() {
    io.grpc.MethodDescriptor<com.agentcore.memory.v1.ListRequest, com.agentcore.memory.v1.ListResponse> getListMethod;
    if ((getListMethod = MemoryRecordsServiceGrpc.getListMethod) == null) {
      synchronized (MemoryRecordsServiceGrpc.class) {
        if ((getListMethod = MemoryRecordsServiceGrpc.getListMethod) == null) {
          MemoryRecordsServiceGrpc.getListMethod = getListMethod =
              io.grpc.MethodDescriptor.<com.agentcore.memory.v1.ListRequest, com.agentcore.memory.v1.ListResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "List"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.ListRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.ListResponse.getDefaultInstance()))
              .setSchemaDescriptor(new MemoryRecordsServiceMethodDescriptorSupplier("List"))
              .build();
        }
      }
    }
    return getListMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.agentcore.memory.v1.RetrieveRequest,
      com.agentcore.memory.v1.RetrieveResponse> getRetrieveMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Retrieve",
      requestType = com.agentcore.memory.v1.RetrieveRequest.class,
      responseType = com.agentcore.memory.v1.RetrieveResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.agentcore.memory.v1.RetrieveRequest,
      com.agentcore.memory.v1.RetrieveResponse> getRetrieveMethod() {
    io.grpc.MethodDescriptor<com.agentcore.memory.v1.RetrieveRequest, com.agentcore.memory.v1.RetrieveResponse> getRetrieveMethod;
    if ((getRetrieveMethod = MemoryRecordsServiceGrpc.getRetrieveMethod) == null) {
      synchronized (MemoryRecordsServiceGrpc.class) {
        if ((getRetrieveMethod = MemoryRecordsServiceGrpc.getRetrieveMethod) == null) {
          MemoryRecordsServiceGrpc.getRetrieveMethod = getRetrieveMethod =
              io.grpc.MethodDescriptor.<com.agentcore.memory.v1.RetrieveRequest, com.agentcore.memory.v1.RetrieveResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Retrieve"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.RetrieveRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.agentcore.memory.v1.RetrieveResponse.getDefaultInstance()))
              .setSchemaDescriptor(new MemoryRecordsServiceMethodDescriptorSupplier("Retrieve"))
              .build();
        }
      }
    }
    return getRetrieveMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static MemoryRecordsServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MemoryRecordsServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MemoryRecordsServiceStub>() {
        @java.lang.Override
        public MemoryRecordsServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MemoryRecordsServiceStub(channel, callOptions);
        }
      };
    return MemoryRecordsServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static MemoryRecordsServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MemoryRecordsServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MemoryRecordsServiceBlockingV2Stub>() {
        @java.lang.Override
        public MemoryRecordsServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MemoryRecordsServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return MemoryRecordsServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static MemoryRecordsServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MemoryRecordsServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MemoryRecordsServiceBlockingStub>() {
        @java.lang.Override
        public MemoryRecordsServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MemoryRecordsServiceBlockingStub(channel, callOptions);
        }
      };
    return MemoryRecordsServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static MemoryRecordsServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<MemoryRecordsServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<MemoryRecordsServiceFutureStub>() {
        @java.lang.Override
        public MemoryRecordsServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new MemoryRecordsServiceFutureStub(channel, callOptions);
        }
      };
    return MemoryRecordsServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * MemoryRecordsService reads and writes the long-term memory records of an AgentCore memory.
   * Errors follow AIP-193: the gRPC status code says what the caller should do (INVALID_ARGUMENT: fix
   * the request; NOT_FOUND: the memory or record does not exist; RESOURCE_EXHAUSTED and UNAVAILABLE:
   * retry with back-off), and a google.rpc.ErrorInfo in the status details names the AWS error.
   * A failure of one record inside a batch is not an error: the RPC succeeds and lists the record in
   * `failed_records`.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Creates memory records in one memory (AWS BatchCreateMemoryRecords), up to the server's
     * MAX_BATCH_RECORDS (1,000 by default) in one RPC: the facade sends them in calls of at most 100.
     * Each record is created or fails on its own; see BatchCreateResponse.
     * </pre>
     */
    default void batchCreate(com.agentcore.memory.v1.BatchCreateRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.BatchCreateResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getBatchCreateMethod(), responseObserver);
    }

    /**
     * <pre>
     * Updates existing memory records in one memory (AWS BatchUpdateMemoryRecords), up to
     * MAX_BATCH_RECORDS in one RPC, sent in calls of at most 100.
     * Only the fields set on a MemoryRecordUpdate change; the others keep their stored value.
     * </pre>
     */
    default void batchUpdate(com.agentcore.memory.v1.BatchUpdateRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.BatchUpdateResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getBatchUpdateMethod(), responseObserver);
    }

    /**
     * <pre>
     * Reads one memory record (AWS GetMemoryRecord).
     * </pre>
     */
    default void get(com.agentcore.memory.v1.GetRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.GetResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetMethod(), responseObserver);
    }

    /**
     * <pre>
     * Deletes one memory record (AWS DeleteMemoryRecord).
     * </pre>
     */
    default void delete(com.agentcore.memory.v1.DeleteRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.DeleteResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteMethod(), responseObserver);
    }

    /**
     * <pre>
     * Deletes memory records of one memory (AWS BatchDeleteMemoryRecords), up to MAX_BATCH_RECORDS
     * in one RPC, sent in calls of at most 100. Each record is deleted or fails on its own.
     * </pre>
     */
    default void batchDelete(com.agentcore.memory.v1.BatchDeleteRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.BatchDeleteResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getBatchDeleteMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists the memory records of one memory, a page at a time (AWS ListMemoryRecords).
     * </pre>
     */
    default void list(com.agentcore.memory.v1.ListRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.ListResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListMethod(), responseObserver);
    }

    /**
     * <pre>
     * Searches the memory records of one memory by relevance to a query (AWS RetrieveMemoryRecords).
     * </pre>
     */
    default void retrieve(com.agentcore.memory.v1.RetrieveRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.RetrieveResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRetrieveMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service MemoryRecordsService.
   * <pre>
   * MemoryRecordsService reads and writes the long-term memory records of an AgentCore memory.
   * Errors follow AIP-193: the gRPC status code says what the caller should do (INVALID_ARGUMENT: fix
   * the request; NOT_FOUND: the memory or record does not exist; RESOURCE_EXHAUSTED and UNAVAILABLE:
   * retry with back-off), and a google.rpc.ErrorInfo in the status details names the AWS error.
   * A failure of one record inside a batch is not an error: the RPC succeeds and lists the record in
   * `failed_records`.
   * </pre>
   */
  public static abstract class MemoryRecordsServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return MemoryRecordsServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service MemoryRecordsService.
   * <pre>
   * MemoryRecordsService reads and writes the long-term memory records of an AgentCore memory.
   * Errors follow AIP-193: the gRPC status code says what the caller should do (INVALID_ARGUMENT: fix
   * the request; NOT_FOUND: the memory or record does not exist; RESOURCE_EXHAUSTED and UNAVAILABLE:
   * retry with back-off), and a google.rpc.ErrorInfo in the status details names the AWS error.
   * A failure of one record inside a batch is not an error: the RPC succeeds and lists the record in
   * `failed_records`.
   * </pre>
   */
  public static final class MemoryRecordsServiceStub
      extends io.grpc.stub.AbstractAsyncStub<MemoryRecordsServiceStub> {
    private MemoryRecordsServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MemoryRecordsServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MemoryRecordsServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Creates memory records in one memory (AWS BatchCreateMemoryRecords), up to the server's
     * MAX_BATCH_RECORDS (1,000 by default) in one RPC: the facade sends them in calls of at most 100.
     * Each record is created or fails on its own; see BatchCreateResponse.
     * </pre>
     */
    public void batchCreate(com.agentcore.memory.v1.BatchCreateRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.BatchCreateResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getBatchCreateMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Updates existing memory records in one memory (AWS BatchUpdateMemoryRecords), up to
     * MAX_BATCH_RECORDS in one RPC, sent in calls of at most 100.
     * Only the fields set on a MemoryRecordUpdate change; the others keep their stored value.
     * </pre>
     */
    public void batchUpdate(com.agentcore.memory.v1.BatchUpdateRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.BatchUpdateResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getBatchUpdateMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Reads one memory record (AWS GetMemoryRecord).
     * </pre>
     */
    public void get(com.agentcore.memory.v1.GetRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.GetResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Deletes one memory record (AWS DeleteMemoryRecord).
     * </pre>
     */
    public void delete(com.agentcore.memory.v1.DeleteRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.DeleteResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Deletes memory records of one memory (AWS BatchDeleteMemoryRecords), up to MAX_BATCH_RECORDS
     * in one RPC, sent in calls of at most 100. Each record is deleted or fails on its own.
     * </pre>
     */
    public void batchDelete(com.agentcore.memory.v1.BatchDeleteRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.BatchDeleteResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getBatchDeleteMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Lists the memory records of one memory, a page at a time (AWS ListMemoryRecords).
     * </pre>
     */
    public void list(com.agentcore.memory.v1.ListRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.ListResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Searches the memory records of one memory by relevance to a query (AWS RetrieveMemoryRecords).
     * </pre>
     */
    public void retrieve(com.agentcore.memory.v1.RetrieveRequest request,
        io.grpc.stub.StreamObserver<com.agentcore.memory.v1.RetrieveResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRetrieveMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service MemoryRecordsService.
   * <pre>
   * MemoryRecordsService reads and writes the long-term memory records of an AgentCore memory.
   * Errors follow AIP-193: the gRPC status code says what the caller should do (INVALID_ARGUMENT: fix
   * the request; NOT_FOUND: the memory or record does not exist; RESOURCE_EXHAUSTED and UNAVAILABLE:
   * retry with back-off), and a google.rpc.ErrorInfo in the status details names the AWS error.
   * A failure of one record inside a batch is not an error: the RPC succeeds and lists the record in
   * `failed_records`.
   * </pre>
   */
  public static final class MemoryRecordsServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<MemoryRecordsServiceBlockingV2Stub> {
    private MemoryRecordsServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MemoryRecordsServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MemoryRecordsServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Creates memory records in one memory (AWS BatchCreateMemoryRecords), up to the server's
     * MAX_BATCH_RECORDS (1,000 by default) in one RPC: the facade sends them in calls of at most 100.
     * Each record is created or fails on its own; see BatchCreateResponse.
     * </pre>
     */
    public com.agentcore.memory.v1.BatchCreateResponse batchCreate(com.agentcore.memory.v1.BatchCreateRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getBatchCreateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Updates existing memory records in one memory (AWS BatchUpdateMemoryRecords), up to
     * MAX_BATCH_RECORDS in one RPC, sent in calls of at most 100.
     * Only the fields set on a MemoryRecordUpdate change; the others keep their stored value.
     * </pre>
     */
    public com.agentcore.memory.v1.BatchUpdateResponse batchUpdate(com.agentcore.memory.v1.BatchUpdateRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getBatchUpdateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Reads one memory record (AWS GetMemoryRecord).
     * </pre>
     */
    public com.agentcore.memory.v1.GetResponse get(com.agentcore.memory.v1.GetRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes one memory record (AWS DeleteMemoryRecord).
     * </pre>
     */
    public com.agentcore.memory.v1.DeleteResponse delete(com.agentcore.memory.v1.DeleteRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDeleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes memory records of one memory (AWS BatchDeleteMemoryRecords), up to MAX_BATCH_RECORDS
     * in one RPC, sent in calls of at most 100. Each record is deleted or fails on its own.
     * </pre>
     */
    public com.agentcore.memory.v1.BatchDeleteResponse batchDelete(com.agentcore.memory.v1.BatchDeleteRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getBatchDeleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the memory records of one memory, a page at a time (AWS ListMemoryRecords).
     * </pre>
     */
    public com.agentcore.memory.v1.ListResponse list(com.agentcore.memory.v1.ListRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Searches the memory records of one memory by relevance to a query (AWS RetrieveMemoryRecords).
     * </pre>
     */
    public com.agentcore.memory.v1.RetrieveResponse retrieve(com.agentcore.memory.v1.RetrieveRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRetrieveMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service MemoryRecordsService.
   * <pre>
   * MemoryRecordsService reads and writes the long-term memory records of an AgentCore memory.
   * Errors follow AIP-193: the gRPC status code says what the caller should do (INVALID_ARGUMENT: fix
   * the request; NOT_FOUND: the memory or record does not exist; RESOURCE_EXHAUSTED and UNAVAILABLE:
   * retry with back-off), and a google.rpc.ErrorInfo in the status details names the AWS error.
   * A failure of one record inside a batch is not an error: the RPC succeeds and lists the record in
   * `failed_records`.
   * </pre>
   */
  public static final class MemoryRecordsServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<MemoryRecordsServiceBlockingStub> {
    private MemoryRecordsServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MemoryRecordsServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MemoryRecordsServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Creates memory records in one memory (AWS BatchCreateMemoryRecords), up to the server's
     * MAX_BATCH_RECORDS (1,000 by default) in one RPC: the facade sends them in calls of at most 100.
     * Each record is created or fails on its own; see BatchCreateResponse.
     * </pre>
     */
    public com.agentcore.memory.v1.BatchCreateResponse batchCreate(com.agentcore.memory.v1.BatchCreateRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getBatchCreateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Updates existing memory records in one memory (AWS BatchUpdateMemoryRecords), up to
     * MAX_BATCH_RECORDS in one RPC, sent in calls of at most 100.
     * Only the fields set on a MemoryRecordUpdate change; the others keep their stored value.
     * </pre>
     */
    public com.agentcore.memory.v1.BatchUpdateResponse batchUpdate(com.agentcore.memory.v1.BatchUpdateRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getBatchUpdateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Reads one memory record (AWS GetMemoryRecord).
     * </pre>
     */
    public com.agentcore.memory.v1.GetResponse get(com.agentcore.memory.v1.GetRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes one memory record (AWS DeleteMemoryRecord).
     * </pre>
     */
    public com.agentcore.memory.v1.DeleteResponse delete(com.agentcore.memory.v1.DeleteRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes memory records of one memory (AWS BatchDeleteMemoryRecords), up to MAX_BATCH_RECORDS
     * in one RPC, sent in calls of at most 100. Each record is deleted or fails on its own.
     * </pre>
     */
    public com.agentcore.memory.v1.BatchDeleteResponse batchDelete(com.agentcore.memory.v1.BatchDeleteRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getBatchDeleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the memory records of one memory, a page at a time (AWS ListMemoryRecords).
     * </pre>
     */
    public com.agentcore.memory.v1.ListResponse list(com.agentcore.memory.v1.ListRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Searches the memory records of one memory by relevance to a query (AWS RetrieveMemoryRecords).
     * </pre>
     */
    public com.agentcore.memory.v1.RetrieveResponse retrieve(com.agentcore.memory.v1.RetrieveRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRetrieveMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service MemoryRecordsService.
   * <pre>
   * MemoryRecordsService reads and writes the long-term memory records of an AgentCore memory.
   * Errors follow AIP-193: the gRPC status code says what the caller should do (INVALID_ARGUMENT: fix
   * the request; NOT_FOUND: the memory or record does not exist; RESOURCE_EXHAUSTED and UNAVAILABLE:
   * retry with back-off), and a google.rpc.ErrorInfo in the status details names the AWS error.
   * A failure of one record inside a batch is not an error: the RPC succeeds and lists the record in
   * `failed_records`.
   * </pre>
   */
  public static final class MemoryRecordsServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<MemoryRecordsServiceFutureStub> {
    private MemoryRecordsServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected MemoryRecordsServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new MemoryRecordsServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Creates memory records in one memory (AWS BatchCreateMemoryRecords), up to the server's
     * MAX_BATCH_RECORDS (1,000 by default) in one RPC: the facade sends them in calls of at most 100.
     * Each record is created or fails on its own; see BatchCreateResponse.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.agentcore.memory.v1.BatchCreateResponse> batchCreate(
        com.agentcore.memory.v1.BatchCreateRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getBatchCreateMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Updates existing memory records in one memory (AWS BatchUpdateMemoryRecords), up to
     * MAX_BATCH_RECORDS in one RPC, sent in calls of at most 100.
     * Only the fields set on a MemoryRecordUpdate change; the others keep their stored value.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.agentcore.memory.v1.BatchUpdateResponse> batchUpdate(
        com.agentcore.memory.v1.BatchUpdateRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getBatchUpdateMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Reads one memory record (AWS GetMemoryRecord).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.agentcore.memory.v1.GetResponse> get(
        com.agentcore.memory.v1.GetRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Deletes one memory record (AWS DeleteMemoryRecord).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.agentcore.memory.v1.DeleteResponse> delete(
        com.agentcore.memory.v1.DeleteRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Deletes memory records of one memory (AWS BatchDeleteMemoryRecords), up to MAX_BATCH_RECORDS
     * in one RPC, sent in calls of at most 100. Each record is deleted or fails on its own.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.agentcore.memory.v1.BatchDeleteResponse> batchDelete(
        com.agentcore.memory.v1.BatchDeleteRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getBatchDeleteMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists the memory records of one memory, a page at a time (AWS ListMemoryRecords).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.agentcore.memory.v1.ListResponse> list(
        com.agentcore.memory.v1.ListRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Searches the memory records of one memory by relevance to a query (AWS RetrieveMemoryRecords).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.agentcore.memory.v1.RetrieveResponse> retrieve(
        com.agentcore.memory.v1.RetrieveRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRetrieveMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_BATCH_CREATE = 0;
  private static final int METHODID_BATCH_UPDATE = 1;
  private static final int METHODID_GET = 2;
  private static final int METHODID_DELETE = 3;
  private static final int METHODID_BATCH_DELETE = 4;
  private static final int METHODID_LIST = 5;
  private static final int METHODID_RETRIEVE = 6;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_BATCH_CREATE:
          serviceImpl.batchCreate((com.agentcore.memory.v1.BatchCreateRequest) request,
              (io.grpc.stub.StreamObserver<com.agentcore.memory.v1.BatchCreateResponse>) responseObserver);
          break;
        case METHODID_BATCH_UPDATE:
          serviceImpl.batchUpdate((com.agentcore.memory.v1.BatchUpdateRequest) request,
              (io.grpc.stub.StreamObserver<com.agentcore.memory.v1.BatchUpdateResponse>) responseObserver);
          break;
        case METHODID_GET:
          serviceImpl.get((com.agentcore.memory.v1.GetRequest) request,
              (io.grpc.stub.StreamObserver<com.agentcore.memory.v1.GetResponse>) responseObserver);
          break;
        case METHODID_DELETE:
          serviceImpl.delete((com.agentcore.memory.v1.DeleteRequest) request,
              (io.grpc.stub.StreamObserver<com.agentcore.memory.v1.DeleteResponse>) responseObserver);
          break;
        case METHODID_BATCH_DELETE:
          serviceImpl.batchDelete((com.agentcore.memory.v1.BatchDeleteRequest) request,
              (io.grpc.stub.StreamObserver<com.agentcore.memory.v1.BatchDeleteResponse>) responseObserver);
          break;
        case METHODID_LIST:
          serviceImpl.list((com.agentcore.memory.v1.ListRequest) request,
              (io.grpc.stub.StreamObserver<com.agentcore.memory.v1.ListResponse>) responseObserver);
          break;
        case METHODID_RETRIEVE:
          serviceImpl.retrieve((com.agentcore.memory.v1.RetrieveRequest) request,
              (io.grpc.stub.StreamObserver<com.agentcore.memory.v1.RetrieveResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getBatchCreateMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.agentcore.memory.v1.BatchCreateRequest,
              com.agentcore.memory.v1.BatchCreateResponse>(
                service, METHODID_BATCH_CREATE)))
        .addMethod(
          getBatchUpdateMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.agentcore.memory.v1.BatchUpdateRequest,
              com.agentcore.memory.v1.BatchUpdateResponse>(
                service, METHODID_BATCH_UPDATE)))
        .addMethod(
          getGetMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.agentcore.memory.v1.GetRequest,
              com.agentcore.memory.v1.GetResponse>(
                service, METHODID_GET)))
        .addMethod(
          getDeleteMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.agentcore.memory.v1.DeleteRequest,
              com.agentcore.memory.v1.DeleteResponse>(
                service, METHODID_DELETE)))
        .addMethod(
          getBatchDeleteMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.agentcore.memory.v1.BatchDeleteRequest,
              com.agentcore.memory.v1.BatchDeleteResponse>(
                service, METHODID_BATCH_DELETE)))
        .addMethod(
          getListMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.agentcore.memory.v1.ListRequest,
              com.agentcore.memory.v1.ListResponse>(
                service, METHODID_LIST)))
        .addMethod(
          getRetrieveMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.agentcore.memory.v1.RetrieveRequest,
              com.agentcore.memory.v1.RetrieveResponse>(
                service, METHODID_RETRIEVE)))
        .build();
  }

  private static abstract class MemoryRecordsServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    MemoryRecordsServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return com.agentcore.memory.v1.MemoryRecordsProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("MemoryRecordsService");
    }
  }

  private static final class MemoryRecordsServiceFileDescriptorSupplier
      extends MemoryRecordsServiceBaseDescriptorSupplier {
    MemoryRecordsServiceFileDescriptorSupplier() {}
  }

  private static final class MemoryRecordsServiceMethodDescriptorSupplier
      extends MemoryRecordsServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    MemoryRecordsServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (MemoryRecordsServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new MemoryRecordsServiceFileDescriptorSupplier())
              .addMethod(getBatchCreateMethod())
              .addMethod(getBatchUpdateMethod())
              .addMethod(getGetMethod())
              .addMethod(getDeleteMethod())
              .addMethod(getBatchDeleteMethod())
              .addMethod(getListMethod())
              .addMethod(getRetrieveMethod())
              .build();
        }
      }
    }
    return result;
  }
}
