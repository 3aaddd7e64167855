package com.agentcore.memory.tests;

import static com.agentcore.memory.tests.Env.MEMORY_ID;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.agentcore.memory.v1.ListRequest;
import com.agentcore.memory.v1.MemoryRecordsServiceGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A deadline set with withDeadlineAfter holds against a slow AWS, and is the facade's too: the facade
 * at MEMORY_RECORDS_SLOW_ADDRESS has the emulator wait MEMORY_RECORDS_SLOW_LATENCY_SECONDS before each
 * answer (LOCAL_FAULTS=latency=...), and its /metrics (MEMORY_RECORDS_SLOW_METRICS_ADDRESS) count the
 * AWS call (ListMemoryRecords) as ended `cancelled` within a second of the deadline, long before the
 * latency would have ended it.
 */
class DeadlineTest {
  private static final Duration SHORT_DEADLINE = Duration.ofMillis(300);
  /** How soon after the deadline the facade must have ended its AWS call and counted it. */
  private static final Duration ATTEMPT_END_SLACK = Duration.ofSeconds(1);
  private static final String CALLS = "agentcore_upstream_request_duration_seconds_count";
  private static final String DURATIONS = "agentcore_upstream_request_duration_seconds_sum";
  private static final Map<String, String> CANCELLED = Map.of("operation", "ListMemoryRecords", "outcome", "cancelled");
  private static final Map<String, String> DEADLINE_ERRORS =
      Map.of("operation", "ListMemoryRecords", "aws_error_code", "DeadlineExceeded");

  @Test
  void aShortDeadlineAgainstInjectedLatencyIsDeadlineExceededOnTimeAndEndsTheAwsCall() throws Exception {
    Duration latency = Duration.ofMillis(
        Math.round(Double.parseDouble(Env.require("MEMORY_RECORDS_SLOW_LATENCY_SECONDS")) * 1000));
    assertTrue(latency.compareTo(SHORT_DEADLINE.plus(ATTEMPT_END_SLACK).multipliedBy(2)) > 0,
        "the latency must dwarf the deadline and its slack");
    String metricsAddress = Env.require("MEMORY_RECORDS_SLOW_METRICS_ADDRESS");
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
      FacadeMetrics before = FacadeMetrics.scrape(metricsAddress);
      started = System.nanoTime();
      long deadline = started + SHORT_DEADLINE.toNanos();
      StatusRuntimeException error = assertThrows(StatusRuntimeException.class,
          () -> stub.withDeadlineAfter(SHORT_DEADLINE.toMillis(), TimeUnit.MILLISECONDS).list(request));
      Duration failed = Duration.ofNanos(System.nanoTime() - started);
      assertEquals(Status.Code.DEADLINE_EXCEEDED, error.getStatus().getCode(), error.getStatus().toString());
      assertTrue(failed.compareTo(SHORT_DEADLINE) >= 0 && failed.compareTo(latency) < 0,
          "failed after " + failed);

      // The facade counts its AWS call when it ends: poll /metrics until it has, as cancelled.
      FacadeMetrics after;
      while (true) {
        after = FacadeMetrics.scrape(metricsAddress);
        if (after.sum(CALLS, CANCELLED) > before.sum(CALLS, CANCELLED)) {
          break;
        }
        if (System.nanoTime() - deadline > ATTEMPT_END_SLACK.toNanos()) {
          fail("the facade's AWS call had not ended " + ATTEMPT_END_SLACK + " after the deadline (it would after "
              + latency + ")");
        }
        Thread.sleep(10);
      }
      Duration countedAfter = Duration.ofNanos(System.nanoTime() - deadline);
      double lasted = after.sum(DURATIONS, CANCELLED) - before.sum(DURATIONS, CANCELLED);
      System.out.printf("deadline: DEADLINE_EXCEEDED after %d ms; the AWS call was counted cancelled %d ms after "
              + "the deadline, having lasted %.3f s (latency %s)%n",
          failed.toMillis(), countedAfter.toMillis(), lasted, latency);
      assertEquals(1.0, after.sum(CALLS, CANCELLED) - before.sum(CALLS, CANCELLED), "AWS calls ended cancelled");
      assertEquals(1.0, after.sum("agentcore_upstream_errors_total", DEADLINE_ERRORS)
          - before.sum("agentcore_upstream_errors_total", DEADLINE_ERRORS), "DeadlineExceeded errors counted");
      assertTrue(lasted <= SHORT_DEADLINE.plus(ATTEMPT_END_SLACK).toMillis() / 1000.0,
          "the AWS call lasted " + lasted + " s, for a deadline of " + SHORT_DEADLINE);
    } finally {
      Channels.close(channel);
    }
  }
}
