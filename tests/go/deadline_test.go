package memoryrecords

// The caller's deadline, set on a Go context, reaching the facade and ending its AWS call.

import (
	"context"
	"strconv"
	"testing"
	"time"

	memoryv1 "github.com/agentcore-memory-grpc/gen/go/agentcore/memory/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// The deadline of the call; the facade's emulator answers each request only after
	// MEMORY_RECORDS_SLOW_LATENCY_SECONDS (LOCAL_FAULTS latency), several times longer.
	shortDeadline = 500 * time.Millisecond
	// How soon after the deadline the client must have its DEADLINE_EXCEEDED, and the facade must have
	// ended its AWS call and counted it (and how much longer than the deadline that call may have
	// lasted). Generous for a loaded 2-core machine (the Java suite's JVM starts alongside): the proof
	// needs only far below the latency (seconds), which a facade that ignored the deadline would wait out.
	attemptEndSlack = time.Second
)

// TestDeadlineReachesTheFacade proves that a Go context's deadline is the facade's too: against an
// AWS that answers after seconds, a call with a 500 ms deadline fails DEADLINE_EXCEEDED at 500 ms, and
// the facade's /metrics count its AWS call (GetMemoryRecord) as ended `cancelled`, with aws_error_code
// DeadlineExceeded, within 1 s of the deadline and after a duration of about the deadline, not of
// the latency; no retry follows. (A facade that did not take the caller's deadline would wait out the
// latency, or its own DEFAULT_DEADLINE_SECONDS.)
func TestDeadlineReachesTheFacade(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	metricsAddress := requireEnv(t, "MEMORY_RECORDS_SLOW_METRICS_ADDRESS")
	latency, err := strconv.ParseFloat(requireEnv(t, "MEMORY_RECORDS_SLOW_LATENCY_SECONDS"), 64)
	// Several times the deadline, and at least twice the bound the checks below allow (deadline + slack).
	if slow := time.Duration(latency * float64(time.Second)); err != nil || slow < 4*shortDeadline ||
		slow < 2*(shortDeadline+attemptEndSlack) {
		t.Fatalf("MEMORY_RECORDS_SLOW_LATENCY_SECONDS %v: want several times %s, and at least twice %s",
			latency, shortDeadline, shortDeadline+attemptEndSlack)
	}
	client := memoryv1.NewMemoryRecordsServiceClient(dial(t, requireEnv(t, "MEMORY_RECORDS_SLOW_ADDRESS")))
	cancelled := map[string]string{"operation": "GetMemoryRecord", "outcome": "cancelled"}
	deadlineErrors := map[string]string{"operation": "GetMemoryRecord", "aws_error_code": "DeadlineExceeded"}
	retries := map[string]string{"operation": "GetMemoryRecord"}
	before := scrape(t, ctx, metricsAddress)

	call, cancel := context.WithTimeout(ctx, shortDeadline)
	defer cancel()
	deadline, _ := call.Deadline()
	started := time.Now()
	_, err = client.Get(call, &memoryv1.GetRequest{MemoryId: memoryID(), MemoryRecordId: unknownRecordID})
	elapsed := time.Since(started)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Get: %v, want DEADLINE_EXCEEDED", err)
	}
	if elapsed > shortDeadline+attemptEndSlack {
		t.Errorf("DEADLINE_EXCEEDED after %s, for a deadline of %s", elapsed, shortDeadline)
	}

	// The facade counts the AWS call when it ends: poll /metrics until it has.
	const (
		calls     = "agentcore_upstream_request_duration_seconds_count"
		durations = "agentcore_upstream_request_duration_seconds_sum"
	)
	var after metrics
	for {
		after = scrape(t, ctx, metricsAddress)
		if after.sum(calls, cancelled) > before.sum(calls, cancelled) {
			break
		}
		if time.Now().After(deadline.Add(attemptEndSlack)) {
			t.Fatalf("the facade's AWS call had not ended %s after the deadline (it would after %gs)", attemptEndSlack, latency)
		}
		time.Sleep(10 * time.Millisecond)
	}
	countedWithin := time.Since(deadline)
	duration := after.sum(durations, cancelled) - before.sum(durations, cancelled)
	t.Logf("DEADLINE_EXCEEDED after %s; the AWS call was counted %s after the deadline, having lasted "+
		"%.3fs (latency %gs, slack %s)", elapsed, countedWithin, duration, latency, attemptEndSlack)
	if count := after.sum(calls, cancelled) - before.sum(calls, cancelled); count != 1 {
		t.Errorf("%g AWS calls ended cancelled, want 1", count)
	}
	if duration > (shortDeadline + attemptEndSlack).Seconds() {
		t.Errorf("the AWS call lasted %.3fs, for a deadline of %s", duration, shortDeadline)
	}
	if errorsCounted := after.sum("agentcore_upstream_errors_total", deadlineErrors) -
		before.sum("agentcore_upstream_errors_total", deadlineErrors); errorsCounted != 1 {
		t.Errorf("%g DeadlineExceeded errors counted, want 1", errorsCounted)
	}

	// Nothing more: botocore would retry a read timeout, not an attempt the deadline ended.
	time.Sleep(300 * time.Millisecond)
	last := scrape(t, ctx, metricsAddress)
	const retriesTotal = "agentcore_upstream_retries_total"
	if retried := last.sum(retriesTotal, retries) - before.sum(retriesTotal, retries); retried != 0 {
		t.Errorf("%g retries after the deadline", retried)
	}
	if last.sum(calls, retries) != after.sum(calls, retries) {
		t.Error("another AWS call ended after the deadline")
	}
}
