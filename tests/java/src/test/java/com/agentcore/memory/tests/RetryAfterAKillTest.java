package com.agentcore.memory.tests;

import static com.agentcore.memory.tests.Env.MEMORY_ID;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.agentcore.memory.v1.ListRequest;
import com.agentcore.memory.v1.ListResponse;
import com.agentcore.memory.v1.MemoryRecordSummary;
import com.agentcore.memory.v1.MemoryRecordsServiceGrpc;
import com.agentcore.memory.v1.MemoryRecordsServiceGrpc.MemoryRecordsServiceBlockingStub;
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
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * The published config's retry policy itself (in RetryAcrossReplicasTest health checking moves the
 * calls away first, and nothing is retried), as the Go test publishedConfigRetriesAKill proves it. A
 * second pair on one store (MEMORY_RECORDS_CRASH_PAIR_ADDRESSES): the first facade (local mode) owns the
 * emulator, whose every answer waits MEMORY_RECORDS_CRASH_PAIR_LATENCY_SECONDS; the second (aws mode, on
 * the first's emulator, as replicas share AWS) is killed, so that the store outlives it.
 *
 * <p>A loop of the five retried RPCs (Get, List, Retrieve and BatchUpdate on a seed record, BatchCreate
 * each in a namespace of its own with a client_token) runs on both; the second is sent SIGKILL at a
 * moment with 4 to 10 calls in flight on it, one of them a BatchCreate it has passed on to the emulator.
 * Each call's attempts are counted by a ClientStreamTracer (grpc-java makes one per attempt): the calls
 * cut off fail with UNAVAILABLE and are retried on the survivor, so every call succeeds and the policy
 * retried some. Then each BatchCreate's record is in the store exactly once, under its id, including one
 * the emulator applied for the killed facade after it died (its createdAt is earlier than its retry
 * could have been applied): retrying with the same client_token is safe. pytest reaps the killed process
 * and checks that SIGKILL ended it.
 */
class RetryAfterAKillTest {
  /** This many callers, each call waiting out the emulator's latency: about half in flight on each facade. */
  private static final int CALLERS = 12;
  private static final int MAX_CALLS = 2_000;
  private static final long MAX_NANOS = TimeUnit.SECONDS.toNanos(20);
  /**
   * SIGKILL waits for a moment with this many calls in flight on the facade it kills. The published
   * retryThrottling (maxTokens 100, tokenRatio 0.1) retries up to 49 calls cut off at once.
   */
  private static final int MIN_IN_FLIGHT = 4;
  private static final int MAX_IN_FLIGHT = 10;
  /** The loop goes on this long after the kill, on the surviving facade alone. */
  private static final long AFTERWARDS_MILLIS = 1_500;

  /** The attempts of each call whose CallOptions carry a TrackedCall, by a stream tracer on each. */
  private static final CallOptions.Key<TrackedCall> TRACKED = CallOptions.Key.create("tracked call");

  /** One attempt of a call. */
  private static final class Attempt {
    final boolean transparent;
    final int previousAttempts;
    final Instant begun = Instant.now();
    volatile long sentNanos; // when it was put on a transport (streamCreated); 0 until then
    volatile SocketAddress peer;
    volatile Status status; // null until it ended

    Attempt(ClientStreamTracer.StreamInfo info) {
      transparent = info.isTransparentRetry();
      previousAttempts = info.getPreviousAttempts();
    }

    boolean isPolicyRetry() {
      return !transparent && previousAttempts > 0;
    }
  }

  /** One call's attempts, in order: a tracer factory for its CallOptions. */
  private static final class TrackedCall extends ClientStreamTracer.Factory {
    final String method;
    final List<Attempt> attempts = new CopyOnWriteArrayList<>();

    TrackedCall(String method) {
      this.method = method;
    }

    @Override
    public ClientStreamTracer newClientStreamTracer(ClientStreamTracer.StreamInfo info, Metadata headers) {
      Attempt attempt = new Attempt(info);
      attempts.add(attempt);
      return new ClientStreamTracer() {
        @Override
        public void streamCreated(Attributes transportAttributes, Metadata headers) {
          attempt.sentNanos = System.nanoTime();
          attempt.peer = transportAttributes.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
        }

        @Override
        public void streamClosed(Status status) {
          attempt.status = status;
        }
      };
    }
  }

  /** Adds the tracer of the call's TrackedCall, if it has one (the health Watch streams have none). */
  private static final ClientInterceptor TRACKING = new ClientInterceptor() {
    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      TrackedCall tracked = options.getOption(TRACKED);
      return next.newCall(method, tracked == null ? options : options.withStreamTracerFactory(tracked));
    }
  };

  /** One call of the loop. */
  private record Call(String method, long startedNanos, long tookNanos, Throwable error, TrackedCall tracked,
      String namespace, String recordId) {
    SocketAddress answeredBy() {
      List<Attempt> attempts = tracked.attempts;
      return attempts.isEmpty() ? null : attempts.get(attempts.size() - 1).peer;
    }
  }

  /** CALLERS threads calling the five retried RPCs in turn, each starting with a different one. */
  private static final class Loop {
    final List<TrackedCall> tracked = new CopyOnWriteArrayList<>();
    final List<Call> calls = new CopyOnWriteArrayList<>();
    final AtomicBoolean stopping = new AtomicBoolean();
    final long begun = System.nanoTime();
    final List<Thread> threads = new ArrayList<>();

    Loop(ManagedChannel channel, RetriedCalls.Seed seed, String createdUnder, String run) {
      for (int caller = 0; caller < CALLERS; caller++) {
        int first = caller;
        Thread thread = new Thread(() -> {
          for (int turn = first; !stopping.get() && System.nanoTime() - begun < MAX_NANOS && calls.size() < MAX_CALLS;
              turn++) {
            String method = RetriedCalls.METHODS.get(turn % RetriedCalls.METHODS.size());
            String identifier = "c" + first + "-" + turn;
            String namespace = method.equals("BatchCreate") ? createdUnder + "/" + identifier : null;
            TrackedCall call = new TrackedCall(method);
            tracked.add(call);
            long started = System.nanoTime();
            String recordId = null;
            Throwable error = null;
            try {
              MemoryRecordsServiceBlockingStub stub = MemoryRecordsServiceGrpc.newBlockingStub(channel)
                  .withOption(TRACKED, call).withDeadlineAfter(10, TimeUnit.SECONDS);
              recordId = RetriedCalls.call(stub, method, seed, namespace, run + "-" + identifier);
            } catch (StatusRuntimeException | AssertionError e) {
              error = e;
            }
            calls.add(new Call(method, started, System.nanoTime() - started, error, call, namespace, recordId));
          }
        }, "kill-loop-" + caller);
        thread.setDaemon(true);
        thread.start();
        threads.add(thread);
      }
    }

    long servedBy(SocketAddress address) {
      return calls.stream().filter(c -> c.error() == null && address.equals(c.answeredBy())).count();
    }

    long elapsedNanos() {
      return System.nanoTime() - begun;
    }

    /** Ends the loop once the calls under way are answered; every call it made. */
    List<Call> stop() throws InterruptedException {
      stopping.set(true);
      for (Thread thread : threads) {
        thread.join(TimeUnit.SECONDS.toMillis(30));
        assertTrue(!thread.isAlive(), thread.getName() + " still calling");
      }
      return List.copyOf(calls);
    }
  }

  @Test
  void everyCallInFlightOnAKilledReplicaIsRetriedAndEachBatchCreateAppliedOnce() throws Exception {
    String pair = Env.require("MEMORY_RECORDS_CRASH_PAIR_ADDRESSES");
    List<String> addresses = List.of(pair.split(","));
    assertEquals(2, addresses.size(), addresses.toString());
    SocketAddress survivor = StaticAddresses.parse(addresses.get(0));
    InetSocketAddress victim = StaticAddresses.parse(addresses.get(1));
    long pid = Long.parseLong(Env.require("MEMORY_RECORDS_CRASH_PAIR_KILL_PID"));
    ProcessHandle victimProcess = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("no process " + pid));
    double latencySeconds = Double.parseDouble(Env.require("MEMORY_RECORDS_CRASH_PAIR_LATENCY_SECONDS"));
    assertTrue(latencySeconds >= 0.1 && latencySeconds <= 1, "a latency of 0.1 to 1 s, for calls in flight");
    long latencyNanos = Math.round(latencySeconds * 1e9);
    // A BatchCreate sent this long before the kill has reached the emulator and is not answered yet.
    long sentFrom = latencyNanos * 3 / 10;
    long sentTo = latencyNanos * 7 / 10;

    ManagedChannel channel = RetriedCalls.publishedConfigChannel(pair, TRACKING);
    ManagedChannel direct = Channels.plaintext(addresses.get(0)); // to the survivor alone, for the checks
    Loop loop = null;
    try {
      String run = "java-kill-" + ProcessHandle.current().pid() + "-" + System.currentTimeMillis();
      String createdUnder = Records.namespace("kill");
      RetriedCalls.Seed seed = RetriedCalls.seed(stub(channel), Records.namespace("kill-seed"), run + "-seed");

      loop = new Loop(channel, seed, createdUnder, run);
      while (loop.servedBy(survivor) < 5 || loop.servedBy(victim) < 5) {
        if (loop.elapsedNanos() > TimeUnit.SECONDS.toNanos(5)) {
          fail("before the kill, calls served: survivor " + loop.servedBy(survivor) + ", victim " + loop.servedBy(victim));
        }
        Thread.sleep(10);
      }
      List<Attempt> cutOff = null; // in flight on the victim when it was killed
      long killed = 0;
      while (cutOff == null) {
        long now = System.nanoTime();
        List<Attempt> inFlight = new ArrayList<>();
        boolean sentBatchCreate = false;
        for (TrackedCall call : loop.tracked) {
          for (Attempt attempt : call.attempts) {
            if (victim.equals(attempt.peer) && attempt.status == null) {
              inFlight.add(attempt);
              long age = now - attempt.sentNanos;
              sentBatchCreate |= call.method.equals("BatchCreate") && age >= sentFrom && age <= sentTo;
            }
          }
        }
        if (sentBatchCreate && inFlight.size() >= MIN_IN_FLIGHT && inFlight.size() <= MAX_IN_FLIGHT) {
          assertTrue(victimProcess.destroyForcibly(), "SIGKILL to " + pid);
          killed = System.nanoTime();
          cutOff = inFlight;
        } else if (loop.elapsedNanos() > TimeUnit.SECONDS.toNanos(10)) {
          fail("no moment with " + MIN_IN_FLIGHT + " to " + MAX_IN_FLIGHT + " calls in flight on " + victim
              + ", one a BatchCreate sent " + sentFrom / 1_000_000 + " to " + sentTo / 1_000_000 + " ms before");
        } else {
          Thread.sleep(1);
        }
      }
      long refused = waitUntilRefused(victim, TimeUnit.SECONDS.toNanos(5));
      assertTrue(refused != 0, victim + " still accepts connections after SIGKILL");
      Thread.sleep(AFTERWARDS_MILLIS);
      List<Call> calls = loop.stop();
      long ran = loop.elapsedNanos();

      // Every call succeeded; the attempts of each, as the tracers saw them.
      List<String> failures = new ArrayList<>();
      int attempts = 0;
      int policyRetries = 0;
      int transparent = 0;
      int afterKill = 0;
      long slowestRetried = 0;
      Map<Status.Code, Integer> failedOnVictim = new TreeMap<>();
      Map<String, Instant> retriedCreates = new HashMap<>(); // a BatchCreate cut off: its namespace, its retry's start
      for (Call call : calls) {
        if (call.error() != null) {
          failures.add(call.method() + " at " + (call.startedNanos() - killed) / 1_000_000 + " ms: " + call.error());
        } else if (call.startedNanos() - killed > 0) {
          afterKill++;
        }
        List<Attempt> tried = List.copyOf(call.tracked().attempts);
        attempts += tried.size();
        for (int index = 0; index < tried.size(); index++) {
          Attempt attempt = tried.get(index);
          transparent += attempt.transparent ? 1 : 0;
          policyRetries += attempt.isPolicyRetry() ? 1 : 0;
          if (!victim.equals(attempt.peer) || attempt.status == null || attempt.status.isOk()) {
            continue;
          }
          failedOnVictim.merge(attempt.status.getCode(), 1, Integer::sum);
          if (call.error() == null && index + 1 < tried.size() && call.method().equals("BatchCreate")) {
            retriedCreates.putIfAbsent(call.namespace(), tried.get(index + 1).begun);
          }
        }
        if (tried.size() > 1) {
          slowestRetried = Math.max(slowestRetried, call.tookNanos());
        }
      }
      long cutOffFailed = cutOff.stream().filter(a -> a.status != null && !a.status.isOk()).count();
      System.out.printf("kill loop: %d calls in %d ms, %d after the kill; %d attempts: %d retries of the retry "
              + "policy, %d transparent; %d in flight on the killed facade at SIGKILL (%d of them cut off); attempts "
              + "failed on it by code: %s; the slowest retried call took %d ms%n",
          calls.size(), ran / 1_000_000, afterKill, attempts, policyRetries, transparent, cutOff.size(), cutOffFailed,
          failedOnVictim, slowestRetried / 1_000_000);
      assertEquals(List.of(), failures, failures.size() + " of " + calls.size() + " calls failed");
      assertEquals(calls.size() + policyRetries + transparent, attempts, "attempts: first ones and retries");
      assertTrue(policyRetries > 0, "nothing was retried by the retry policy");
      assertTrue(cutOffFailed > 0, "none of the " + cutOff.size() + " calls in flight on the killed facade failed");
      assertEquals(List.of(Status.Code.UNAVAILABLE), List.copyOf(failedOnVictim.keySet()),
          "attempts on the killed facade failed only with UNAVAILABLE (retryable)");
      assertTrue(afterKill >= 10, afterKill + " calls after the kill, want 10 or more");
      assertTrue(calls.size() < MAX_CALLS && ran < MAX_NANOS, "the loop hit its bound");

      // Each BatchCreate's record is in the store exactly once (read on the survivor alone), and nothing else.
      Map<String, List<MemoryRecordSummary>> byNamespace = new HashMap<>();
      List<MemoryRecordSummary> stored = listUnder(stub(direct), createdUnder);
      for (MemoryRecordSummary record : stored) {
        for (String namespace : record.getNamespacesList()) {
          byNamespace.computeIfAbsent(namespace, n -> new ArrayList<>()).add(record);
        }
      }
      int creates = 0;
      for (Call call : calls) {
        if (call.method().equals("BatchCreate")) {
          creates++;
          assertEquals(List.of(call.recordId()), RetriedCalls.ids(byNamespace.getOrDefault(call.namespace(), List.of())),
              "the records of the BatchCreate in " + call.namespace());
        }
      }
      assertEquals(creates, stored.size(), "records under " + createdUnder + ", one per BatchCreate");
      // A retried BatchCreate whose record was created before its retry could have been (the retry waits out
      // the emulator's latency too) was applied for the killed facade, and not again for the retry.
      int appliedForKilled = 0;
      for (Map.Entry<String, Instant> retried : retriedCreates.entrySet()) {
        List<MemoryRecordSummary> found = stub(direct).list(ListRequest.newBuilder().setMemoryId(MEMORY_ID)
            .setNamespace(retried.getKey()).build()).getMemoryRecordSummariesList();
        assertEquals(1, found.size(), "records of the retried BatchCreate in " + retried.getKey());
        var createdAt = found.get(0).getCreatedAt();
        Instant created = Instant.ofEpochSecond(createdAt.getSeconds(), createdAt.getNanos());
        if (created.isBefore(retried.getValue().plusNanos(latencyNanos))) {
          appliedForKilled++;
        }
      }
      System.out.printf("kill loop: %d BatchCreates, %d records; %d BatchCreates retried after failing on the killed "
          + "facade, %d of them applied for it before their retry%n", creates, stored.size(), retriedCreates.size(),
          appliedForKilled);
      assertTrue(retriedCreates.size() >= 1 && appliedForKilled >= 1, retriedCreates.size()
          + " BatchCreates retried, " + appliedForKilled + " applied for the killed facade: want one or more of each");
    } finally {
      if (loop != null) {
        loop.stop();
      }
      Channels.close(channel);
      Channels.close(direct);
    }
  }

  /** When (System.nanoTime) a TCP connection to `address` was first refused; 0 if not within `limitNanos`. */
  private static long waitUntilRefused(InetSocketAddress address, long limitNanos) throws InterruptedException {
    long started = System.nanoTime();
    while (System.nanoTime() - started < limitNanos) {
      try (Socket socket = new Socket()) {
        socket.connect(address, 1_000);
      } catch (ConnectException e) {
        return System.nanoTime();
      } catch (IOException e) {
        // a timeout: try again
      }
      Thread.sleep(50);
    }
    return 0;
  }

  /** Every record summary under namespace path `path`, page by page. */
  private static List<MemoryRecordSummary> listUnder(MemoryRecordsServiceBlockingStub stub, String path) {
    List<MemoryRecordSummary> all = new ArrayList<>();
    String token = "";
    for (int page = 0; page < 50; page++) {
      ListResponse reply = stub.list(ListRequest.newBuilder().setMemoryId(MEMORY_ID).setNamespacePath(path)
          .setPageSize(100).setPageToken(token).build());
      all.addAll(reply.getMemoryRecordSummariesList());
      token = reply.getNextPageToken();
      if (token.isEmpty()) {
        return all;
      }
    }
    return fail("List under " + path + ": more than 50 pages");
  }

  private static MemoryRecordsServiceBlockingStub stub(ManagedChannel channel) {
    return MemoryRecordsServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
  }
}
