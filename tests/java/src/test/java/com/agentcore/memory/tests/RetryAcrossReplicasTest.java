package com.agentcore.memory.tests;

import static com.agentcore.memory.tests.Env.MEMORY_ID;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.agentcore.memory.v1.ListRequest;
import com.agentcore.memory.v1.ListResponse;
import com.agentcore.memory.v1.MemoryRecordsServiceGrpc;
import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientStreamTracer;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.net.SocketAddress;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The published service config (RetriedCalls.publishedConfigChannel) riding out a drain: on a channel
 * to two replicas of the facade (MEMORY_RECORDS_REPLICA_ADDRESSES, over one AWS), one is stopped with
 * SIGTERM in the middle of a bounded loop of the five retried RPCs (Get, List, Retrieve, BatchUpdate
 * and BatchCreate with a client_token); it drains for SHUTDOWN_DRAIN_SECONDS, health NOT_SERVING, then
 * stops. Every call of the loop succeeds, and each BatchCreate created its record exactly once.
 *
 * <p>Along the way: round_robin sent calls to both replicas (loadBalancingConfig), and the client stopped
 * picking the stopping replica while it still served, once its health said NOT_SERVING
 * (healthCheckConfig, grpc-services' health-checking round_robin). That is what moves the calls here,
 * not the retry policy (the attempts it retried are printed, usually none): RetryAfterAKillTest proves
 * the policy.
 */
class RetryAcrossReplicasTest {
  /** Calls each replica serves before the stop, so that the stop matters. */
  private static final int SERVED_BEFORE_STOP = 5;
  /** Iterations (one call of each retried RPC) after the stopped replica has exited. */
  private static final int ITERATIONS_AFTER_EXIT = 20;
  private static final int MAX_ITERATIONS = 2_000;
  private static final long LOOP_LIMIT_NANOS = TimeUnit.SECONDS.toNanos(40);
  /** How soon after SIGTERM the client must have stopped picking the replica (its drain is longer). */
  private static final long UNPICKED_AFTER_NANOS = TimeUnit.MILLISECONDS.toNanos(1_000);

  /** Where each attempt of each call went: a stream tracer on every attempt. */
  private static final class Attempts implements ClientInterceptor {
    /** Successful attempts: by replica, when (System.nanoTime) they ended. */
    final Map<SocketAddress, ConcurrentLinkedQueue<Long>> served = new ConcurrentHashMap<>();
    /** Attempts after a first one: the retry policy's, and grpc's transparent retries. */
    final AtomicInteger retries = new AtomicInteger();
    final AtomicInteger transparentRetries = new AtomicInteger();

    private final ClientStreamTracer.Factory tracers = new ClientStreamTracer.Factory() {
      @Override
      public ClientStreamTracer newClientStreamTracer(ClientStreamTracer.StreamInfo info, Metadata headers) {
        if (info.isTransparentRetry()) {
          transparentRetries.incrementAndGet();
        } else if (info.getPreviousAttempts() > 0) {
          retries.incrementAndGet();
        }
        return new ClientStreamTracer() {
          private volatile SocketAddress replica;

          @Override
          public void streamCreated(Attributes transportAttributes, Metadata headers) {
            replica = transportAttributes.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
          }

          @Override
          public void streamClosed(Status status) {
            if (status.isOk() && replica != null) {
              served.computeIfAbsent(replica, r -> new ConcurrentLinkedQueue<>()).add(System.nanoTime());
            }
          }
        };
      }
    };

    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      return next.newCall(method, options.withStreamTracerFactory(tracers));
    }

    long servedBy(SocketAddress replica) {
      return served.getOrDefault(replica, new ConcurrentLinkedQueue<>()).size();
    }

    long servedBy(SocketAddress replica, long fromNanos) {
      return served.getOrDefault(replica, new ConcurrentLinkedQueue<>()).stream().filter(t -> t - fromNanos > 0).count();
    }
  }

  @Test
  void everyRetriedCallSucceedsWhileOneOfTwoReplicasStops() throws Exception {
    String replicas = Env.require("MEMORY_RECORDS_REPLICA_ADDRESSES");
    List<String> addresses = List.of(replicas.split(","));
    assertEquals(2, addresses.size(), addresses.toString());
    SocketAddress stopping = StaticAddresses.parse(Env.require("MEMORY_RECORDS_STOPPING_REPLICA_ADDRESS"));
    SocketAddress staying = addresses.stream().map(StaticAddresses::parse).filter(a -> !a.equals(stopping))
        .findFirst().orElseThrow(() -> new AssertionError("the stopping replica is not among " + addresses));
    long pid = Long.parseLong(Env.require("MEMORY_RECORDS_STOPPING_REPLICA_PID"));
    ProcessHandle replica = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("no process " + pid));

    Attempts attempts = new Attempts();
    ManagedChannel channel = RetriedCalls.publishedConfigChannel(replicas, attempts);
    try {
      String run = "java-drain-" + ProcessHandle.current().pid() + "-" + System.currentTimeMillis();
      String writeNamespace = Records.namespace("drain-write");
      RetriedCalls.Seed seed = RetriedCalls.seed(stub(channel), Records.namespace("drain-seed"), run + "-seed");

      int iterations = 0;
      long started = System.nanoTime();
      long stoppedAt = 0;
      CompletableFuture<ProcessHandle> exit = null;
      long exitedAt = 0;
      int afterExit = 0;
      while (afterExit < ITERATIONS_AFTER_EXIT) {
        String phase = exit == null ? "before the stop" : exitedAt == 0 ? "while the replica stops" : "after its exit";
        if (iterations >= MAX_ITERATIONS || System.nanoTime() - started > LOOP_LIMIT_NANOS) {
          fail("the loop ran out " + phase + " after " + iterations + " iterations; served " + attempts.served.keySet()
              + " stopping " + attempts.servedBy(stopping) + ", staying " + attempts.servedBy(staying));
        }
        for (String method : RetriedCalls.METHODS) {
          try {
            RetriedCalls.call(stub(channel), method, seed, writeNamespace, run + "-" + iterations);
          } catch (StatusRuntimeException e) {
            fail(method + " of iteration " + iterations + " failed " + phase + ": " + e.getStatus(), e);
          }
        }
        iterations++;
        if (exit == null && attempts.servedBy(stopping) >= SERVED_BEFORE_STOP
            && attempts.servedBy(staying) >= SERVED_BEFORE_STOP) {
          stoppedAt = System.nanoTime();
          assertTrue(replica.destroy(), "SIGTERM to " + pid);
          exit = replica.onExit();
        } else if (exit != null && exitedAt == 0 && exit.isDone()) {
          exitedAt = System.nanoTime();
        } else if (exitedAt != 0) {
          afterExit++;
        }
        Thread.sleep(5);
      }
      System.out.printf("drain loop: %d iterations of %d calls; served: stopping replica %d (%d after SIGTERM), "
              + "staying %d; attempts retried by the policy %d, transparently %d; the stop took %d ms%n",
          iterations, RetriedCalls.METHODS.size(), attempts.servedBy(stopping), attempts.servedBy(stopping, stoppedAt),
          attempts.servedBy(staying), attempts.retries.get(), attempts.transparentRetries.get(),
          TimeUnit.NANOSECONDS.toMillis(exitedAt - stoppedAt));

      // Once its health said NOT_SERVING the client stopped picking the stopping replica, though it
      // still served for its drain; after its exit every call went to the other.
      assertEquals(0, attempts.servedBy(stopping, stoppedAt + UNPICKED_AFTER_NANOS),
          "calls served by the stopping replica more than 1 s after SIGTERM");
      assertTrue(attempts.servedBy(staying, exitedAt) >= (long) RetriedCalls.METHODS.size() * ITERATIONS_AFTER_EXIT);

      // Each BatchCreate created its one record once, however often it was attempted.
      List<String> written = new ArrayList<>();
      String token = "";
      int pages = 0;
      do {
        ListResponse page = stub(channel).list(ListRequest.newBuilder().setMemoryId(MEMORY_ID)
            .setNamespace(writeNamespace).setPageSize(100).setPageToken(token).build());
        page.getMemoryRecordSummariesList().forEach(s -> written.add(s.getContent().getText()));
        token = page.getNextPageToken();
      } while (!token.isEmpty() && ++pages < 100);
      assertEquals(iterations, written.size(), "records written by " + iterations + " BatchCreate calls");
      assertEquals(iterations, new HashSet<>(written).size(), "each iteration's record once");
    } finally {
      Channels.close(channel);
    }
  }

  private static MemoryRecordsServiceGrpc.MemoryRecordsServiceBlockingStub stub(ManagedChannel channel) {
    return MemoryRecordsServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
  }
}
