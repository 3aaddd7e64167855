package com.agentcore.memory.tests;

import static com.agentcore.memory.tests.Env.MEMORY_ID;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.agentcore.memory.v1.ListRequest;
import com.agentcore.memory.v1.MemoryRecordsServiceGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A deadline set with withDeadlineAfter holds against a slow AWS: the facade at
 * MEMORY_RECORDS_SLOW_ADDRESS has the emulator wait MEMORY_RECORDS_SLOW_LATENCY_SECONDS before each
 * answer (LOCAL_FAULTS=latency=...).
 */
class DeadlineTest {
  private static final Duration SHORT_DEADLINE = Duration.ofMillis(300);

  @Test
  void aShortDeadlineAgainstInjectedLatencyIsDeadlineExceededOnTime() throws Exception {
    Duration latency = Duration.ofMillis(
        Math.round(Double.parseDouble(Env.require("MEMORY_RECORDS_SLOW_LATENCY_SECONDS")) * 1000));
    assertTrue(latency.compareTo(SHORT_DEADLINE.multipliedBy(3)) > 0, "the latency must dwarf the deadline");
    ManagedChannel channel = Channels.plaintext(Env.require("MEMORY_RECORDS_SLOW_ADDRESS"));
    try {
      var stub = MemoryRecordsServiceGrpc.newBlockingStub(channel);
      ListRequest request = ListRequest.newBuilder()
          .setMemoryId(MEMORY_ID).setNamespace(Records.namespace("deadline")).build();

      // The control: with time enough the call is served, after the injected latency.
      long started = System.nanoTime();
      stub.withDeadlineAfter(30, TimeUnit.SECONDS).list(request);
      Duration served = Duration.ofNanos(System.nanoTime() - started);
      assertTrue(served.compareTo(latency) >= 0, "served in " + served + ": is the latency injected?");

      // The same call with 300 ms: DEADLINE_EXCEEDED at the deadline, not after the latency.
      started = System.nanoTime();
      StatusRuntimeException error = assertThrows(StatusRuntimeException.class,
          () -> stub.withDeadlineAfter(SHORT_DEADLINE.toMillis(), TimeUnit.MILLISECONDS).list(request));
      Duration failed = Duration.ofNanos(System.nanoTime() - started);
      assertEquals(Status.Code.DEADLINE_EXCEEDED, error.getStatus().getCode(), error.getStatus().toString());
      assertTrue(failed.compareTo(SHORT_DEADLINE) >= 0 && failed.compareTo(latency) < 0,
          "failed after " + failed);
    } finally {
      Channels.close(channel);
    }
  }
}
