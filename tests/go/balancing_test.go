package memoryrecords

// Client-side load balancing across two facades (one store behind both, as replicas share AWS), and
// the published service config (deploy/clients/service-config.json) riding out one being stopped
// (SIGTERM: health checking moves the calls away first) and another being killed mid-call (SIGKILL:
// the retry policy moves the calls that were in flight on it).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	memoryv1 "github.com/agentcore-memory-grpc/gen/go/agentcore/memory/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/health" // the client side of healthCheckConfig
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	publishedServiceConfig = "../../deploy/clients/service-config.json"
	roundRobinOnly         = `{"loadBalancingConfig": [{"round_robin": {}}]}`
	// The steady loop: this many callers, each pausing between calls, bounded in calls and time.
	loopCallers     = 2
	loopPause       = 10 * time.Millisecond
	loopMaxCalls    = 3000
	loopMaxDuration = 25 * time.Second
	// The kill: this many callers, each call waiting out the emulator's latency, so that about half of
	// them are in flight on each facade at any time; bounded in calls and time.
	killCallers     = 12
	killMaxCalls    = 2000
	killMaxDuration = 20 * time.Second
	// SIGKILL waits for a moment with 4 to 10 calls in flight on the facade it kills. The published
	// retryThrottling (maxTokens 100, tokenRatio 0.1) takes a token for each retryable failure and
	// retries none once half are gone, so a channel retries up to 49 calls of a burst; with maxTokens 10
	// it retried 4 (8 cut off at once: 4 calls failed), which is why the config has 100.
	killMinInFlight = 4
	killMaxInFlight = 10
	// The loop goes on this long after the kill, on the surviving facade alone.
	killAfterwards = 1500 * time.Millisecond
)

// retriedMethods are the RPCs the published config retries (its methodConfig with a retryPolicy), in
// the order the loops below call them: every one of them must ride out a drain and a kill (a name
// misspelt in the config would leave that RPC unretried, and its calls cut off would fail).
var retriedMethods = []string{"Get", "List", "Retrieve", "BatchUpdate", "BatchCreate"}

// publishedConfig is deploy/clients/service-config.json, whose health checking must be of this
// service and whose retried RPCs must be retriedMethods (the loops call exactly those).
func publishedConfig(t *testing.T) string {
	t.Helper()
	config, err := os.ReadFile(publishedServiceConfig)
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		HealthCheckConfig struct{ ServiceName string }
		MethodConfig      []struct {
			Name []struct {
				Service string
				Method  string
			}
			RetryPolicy *json.RawMessage
		}
	}
	if err := json.Unmarshal(config, &parsed); err != nil || parsed.HealthCheckConfig.ServiceName != serviceName {
		t.Fatalf("%s: health checking of %q (%v), want %s",
			publishedServiceConfig, parsed.HealthCheckConfig.ServiceName, err, serviceName)
	}
	var retried []string
	for _, method := range parsed.MethodConfig {
		for _, name := range method.Name {
			if method.RetryPolicy != nil && name.Service == serviceName {
				retried = append(retried, name.Method)
			}
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(retried)), slices.Sorted(slices.Values(retriedMethods))) {
		t.Fatalf("%s retries %v; the loops call %v: make them the same", publishedServiceConfig, retried, retriedMethods)
	}
	return string(config)
}

// seedUpdate is a BatchUpdate of the record `seedID` alone, to `text`.
func seedUpdate(seedID, text string) *memoryv1.BatchUpdateRequest {
	return &memoryv1.BatchUpdateRequest{
		MemoryId: memoryID(),
		Records: []*memoryv1.MemoryRecordUpdate{{
			MemoryRecordId: seedID,
			Timestamp:      timestamppb.Now(),
			Content:        &memoryv1.MemoryContent{Content: &memoryv1.MemoryContent_Text{Text: text}},
		}},
	}
}

// updatedOnly is an error unless `reply` updated `seedID` alone.
func updatedOnly(reply *memoryv1.BatchUpdateResponse, seedID string) error {
	if updated := reply.GetSuccessfulRecords(); len(updated) != 1 || updated[0].GetMemoryRecordId() != seedID ||
		len(reply.GetFailedRecords()) != 0 {
		return fmt.Errorf("updated %v, failed %v", updated, reply.GetFailedRecords())
	}
	return nil
}

// pairConn is a channel to both facades of the pair, resolved by a manual resolver (as a headless
// Kubernetes Service's DNS would list the pods), with `serviceConfig`.
func pairConn(t *testing.T, addresses []string, serviceConfig string, options ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	builder := manual.NewBuilderWithScheme("pair")
	var endpoints []resolver.Endpoint
	for _, address := range addresses {
		endpoints = append(endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: address}}})
	}
	builder.InitialState(resolver.State{Endpoints: endpoints})
	options = append(options, grpc.WithResolvers(builder), grpc.WithDefaultServiceConfig(serviceConfig))
	return dial(t, "pair:///facades", options...)
}

// handledOK is how many RPCs of `method` a facade's /metrics count as answered OK.
func handledOK(m metrics, method string) float64 {
	return m.sum("grpc_server_handled_total", map[string]string{
		"grpc_service": serviceName, "grpc_method": method, "grpc_code": "OK",
	})
}

// TestTwoFacades proves client-side load balancing from Go across two facade processes on different
// ports: round_robin spreads calls over both (told apart by the peer of each call, and confirmed by
// each facade's own count of what it served); then, with the published service config (round_robin,
// health checking, retries), one facade is sent SIGTERM mid-run and drains, and every call of a
// steady loop of each RPC the config retries (Get and BatchUpdate of a seed record, List and Retrieve
// of the namespace the loop writes, BatchCreate with a client_token) still succeeds: health
// checking takes the draining facade out of rotation while it still serves, and the loop goes on on
// the other after it has stopped. Last, on a second pair, a facade is killed (SIGKILL) with calls in
// flight on it: see publishedConfigRetriesAKill.
func TestTwoFacades(t *testing.T) {
	t.Parallel()
	addresses := requireEnvList(t, "MEMORY_RECORDS_PAIR_ADDRESSES", 2)
	metricsAddresses := requireEnvList(t, "MEMORY_RECORDS_PAIR_METRICS_ADDRESSES", 2)
	stopPID, err := strconv.Atoi(requireEnv(t, "MEMORY_RECORDS_PAIR_STOP_PID"))
	if err != nil {
		t.Fatalf("MEMORY_RECORDS_PAIR_STOP_PID: %v", err)
	}
	drainSeconds, err := strconv.ParseFloat(requireEnv(t, "MEMORY_RECORDS_PAIR_DRAIN_SECONDS"), 64)
	if err != nil || drainSeconds < 2 {
		t.Fatalf("MEMORY_RECORDS_PAIR_DRAIN_SECONDS %v: want at least 2 s, to tell a drain from a stop", drainSeconds)
	}
	drain := time.Duration(drainSeconds * float64(time.Second))

	t.Run("round_robin_reaches_both", func(t *testing.T) {
		ctx := testContext(t, 20*time.Second)
		client := memoryv1.NewMemoryRecordsServiceClient(pairConn(t, addresses, roundRobinOnly))
		before := []metrics{scrape(t, ctx, metricsAddresses[0]), scrape(t, ctx, metricsAddresses[1])}
		const calls = 40
		served := map[string]int{}
		request := &memoryv1.ListRequest{MemoryId: memoryID(), Namespace: proto.String(newNamespace("round-robin"))}
		for range calls {
			var from peer.Peer
			call, cancel := callContext(ctx)
			_, err := client.List(call, request, grpc.Peer(&from))
			cancel()
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			served[from.Addr.String()]++
		}
		t.Logf("%d calls served: %v", calls, served)
		for index, address := range addresses {
			if served[address] < calls/4 {
				t.Errorf("%s served %d of %d calls: not round robin", address, served[address], calls)
			}
			after := scrape(t, ctx, metricsAddresses[index])
			if counted := handledOK(after, "List") - handledOK(before[index], "List"); counted != float64(served[address]) {
				t.Errorf("%s counts %g Lists served, the client saw %d", address, counted, served[address])
			}
		}
	})

	t.Run("published_config_rides_out_a_drain", func(t *testing.T) {
		ctx := testContext(t, 40*time.Second)
		client := memoryv1.NewMemoryRecordsServiceClient(pairConn(t, addresses, publishedConfig(t)))
		namespace := newNamespace("drain")
		seed, err := createOne(ctx, client, namespace, "seed")
		if err != nil {
			t.Fatalf("BatchCreate: %v", err)
		}

		loop := startLoop(ctx, client, seed, namespace)
		defer loop.stop()
		// Both serve first, in turn.
		for loop.servedBy(addresses[0]) < 20 || loop.servedBy(addresses[1]) < 20 {
			if loop.elapsed() > 5*time.Second {
				t.Fatalf("before the stop, calls served by each: %v", loop.countsByPeer())
			}
			time.Sleep(20 * time.Millisecond)
		}
		terminated := time.Now()
		if err := syscall.Kill(stopPID, syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM to %d: %v", stopPID, err)
		}
		// It drains (still serving), then stops: its port refuses connections.
		stopped := waitUntilRefused(ctx, addresses[1], drain+10*time.Second)
		if stopped.IsZero() {
			t.Fatalf("%s still accepts connections %s after SIGTERM", addresses[1], time.Since(terminated))
		}
		// The loop goes on after the stop, on the other facade alone.
		time.Sleep(time.Second)
		results := loop.stop()
		ran := loop.elapsed()

		var failures []error
		lastOnStopped, afterStop, total := time.Time{}, 0, len(results)
		// Calls served by each facade before SIGTERM, during the drain and after the stop.
		phases := map[string][3]int{}
		// The calls of each RPC that succeeded during the drain and after the stop.
		drainingByMethod, afterStopByMethod := map[string]int{}, map[string]int{}
		for _, result := range results {
			if result.err != nil {
				failures = append(failures,
					fmt.Errorf("%s at %s: %w", result.method, result.started.Sub(terminated), result.err))
			}
			if result.peer == addresses[1] && result.started.After(lastOnStopped) {
				lastOnStopped = result.started
			}
			if result.started.After(stopped) && result.err == nil {
				afterStop++
				afterStopByMethod[result.method]++
			} else if result.started.After(terminated) && result.err == nil {
				drainingByMethod[result.method]++
			}
			phase := phases[result.peer]
			switch {
			case result.started.Before(terminated):
				phase[0]++
			case result.started.Before(stopped):
				phase[1]++
			default:
				phase[2]++
			}
			phases[result.peer] = phase
		}
		t.Logf("%d calls in %s; served [before SIGTERM, draining, stopped]: %v; after SIGTERM the last "+
			"call on the draining facade started %s later, its port closed %s later; succeeded by RPC "+
			"during the drain %v, after the stop %v",
			total, ran, phases, lastOnStopped.Sub(terminated), stopped.Sub(terminated),
			drainingByMethod, afterStopByMethod)
		if err := errors.Join(failures...); err != nil {
			t.Errorf("%d of %d calls failed:\n%v", len(failures), total, err)
		}
		for _, method := range retriedMethods {
			if drainingByMethod[method] < 1 || afterStopByMethod[method] < 1 {
				t.Errorf("%s succeeded %d times during the drain and %d after the stop, want 1 or more each",
					method, drainingByMethod[method], afterStopByMethod[method])
			}
		}
		if stopped.Sub(terminated) < drain-drain/4 {
			t.Errorf("the port closed %s after SIGTERM, before the %s drain", stopped.Sub(terminated), drain)
		}
		if lastOnStopped.Sub(terminated) > drain/2 {
			t.Errorf("a call started %s after SIGTERM was served by the draining facade: "+
				"health checking did not take it out", lastOnStopped.Sub(terminated))
		}
		if afterStop < 10 {
			t.Errorf("%d calls after the stop, want 10 or more", afterStop)
		}
		if total >= loopMaxCalls || ran >= loopMaxDuration {
			t.Errorf("the loop hit its bound (%d calls in %s)", total, ran)
		}
	})

	t.Run("published_config_retries_a_kill", publishedConfigRetriesAKill)
}

// createOne creates one record in `namespace` with a client_token; its id.
func createOne(
	ctx context.Context, client memoryv1.MemoryRecordsServiceClient, namespace, requestIdentifier string,
) (string, error) {
	call, cancel := callContext(ctx)
	defer cancel()
	reply, err := client.BatchCreate(call, &memoryv1.BatchCreateRequest{
		MemoryId:    memoryID(),
		Records:     []*memoryv1.MemoryRecordCreate{newRecord(requestIdentifier, namespace, "steady loop")},
		ClientToken: proto.String(fmt.Sprintf("go-%s-%d", requestIdentifier, time.Now().UnixNano())),
	})
	if err != nil {
		return "", err
	}
	if len(reply.GetSuccessfulRecords()) != 1 {
		return "", fmt.Errorf("created %v, failed %v", reply.GetSuccessfulRecords(), reply.GetFailedRecords())
	}
	return reply.GetSuccessfulRecords()[0].GetMemoryRecordId(), nil
}

// callResult is one call of the steady loop.
type callResult struct {
	method  string
	started time.Time
	peer    string
	err     error
}

// steadyLoop is loopCallers goroutines calling each of retriedMethods in turn until stopped (or
// loopMaxCalls, or loopMaxDuration): Get and BatchUpdate of the record `recordID`, List and Retrieve
// of `namespace`, and BatchCreate of a record in it.
type steadyLoop struct {
	mu      sync.Mutex
	results []callResult
	begun   time.Time
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

func startLoop(
	ctx context.Context, client memoryv1.MemoryRecordsServiceClient, recordID, namespace string,
) *steadyLoop {
	ctx, cancel := context.WithTimeout(ctx, loopMaxDuration)
	loop := &steadyLoop{begun: time.Now(), cancel: cancel}
	for caller := range loopCallers {
		loop.done.Add(1)
		go func() {
			defer loop.done.Done()
			for turn := 0; ctx.Err() == nil && loop.count() < loopMaxCalls; turn++ {
				var from peer.Peer
				started := time.Now()
				call, cancelCall := callContext(ctx)
				method := retriedMethods[turn%len(retriedMethods)]
				var err error
				switch method {
				case "Get":
					_, err = client.Get(call, &memoryv1.GetRequest{
						MemoryId: memoryID(), MemoryRecordId: recordID,
					}, grpc.Peer(&from))
				case "List":
					_, err = client.List(call, &memoryv1.ListRequest{
						MemoryId: memoryID(), Namespace: proto.String(namespace), PageSize: 5,
					}, grpc.Peer(&from))
				case "Retrieve":
					_, err = client.Retrieve(call, &memoryv1.RetrieveRequest{
						MemoryId: memoryID(), Namespace: proto.String(namespace), PageSize: 5,
						SearchCriteria: &memoryv1.SearchCriteria{SearchQuery: "steady loop"},
					}, grpc.Peer(&from))
				case "BatchUpdate":
					var reply *memoryv1.BatchUpdateResponse
					reply, err = client.BatchUpdate(call,
						seedUpdate(recordID, fmt.Sprintf("steady loop c%d-%d", caller, turn)), grpc.Peer(&from))
					if err == nil {
						err = updatedOnly(reply, recordID)
					}
				case "BatchCreate":
					_, err = client.BatchCreate(call, &memoryv1.BatchCreateRequest{
						MemoryId: memoryID(),
						Records: []*memoryv1.MemoryRecordCreate{
							newRecord(fmt.Sprintf("c%d-%d", caller, turn), namespace, "steady loop"),
						},
						ClientToken: proto.String(fmt.Sprintf("go-loop-%d-%d-%d", caller, turn, started.UnixNano())),
					}, grpc.Peer(&from))
				default:
					err = fmt.Errorf("no call of %s in the loop", method)
				}
				cancelCall()
				if ctx.Err() != nil && err != nil {
					return // stopped mid-call: not a failure of the facade
				}
				address := ""
				if from.Addr != nil {
					address = from.Addr.String()
				}
				loop.mu.Lock()
				loop.results = append(loop.results, callResult{method, started, address, err})
				loop.mu.Unlock()
				time.Sleep(loopPause)
			}
		}()
	}
	return loop
}

func (l *steadyLoop) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.results)
}

func (l *steadyLoop) elapsed() time.Duration { return time.Since(l.begun) }

// countsByPeer is how many calls each facade served so far.
func (l *steadyLoop) countsByPeer() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[string]int{}
	for _, result := range l.results {
		counts[result.peer]++
	}
	return counts
}

func (l *steadyLoop) servedBy(address string) int { return l.countsByPeer()[address] }

// stop ends the loop and returns every call it made.
func (l *steadyLoop) stop() []callResult {
	l.cancel()
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]callResult(nil), l.results...)
}

// waitUntilRefused polls `address` until a TCP connection to it is refused; when that was (zero if it
// never was within `limit`).
func waitUntilRefused(ctx context.Context, address string, limit time.Duration) time.Time {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		conn, err := net.DialTimeout("tcp", address, time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return time.Now()
		}
		if err == nil {
			_ = conn.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}
}

// publishedConfigRetriesAKill proves the published config's retry policy itself (in the drain above,
// health checking moves the calls away first and nothing is retried). It runs against a second pair
// on one store: the first facade (local mode) owns the emulator, whose every answer waits
// MEMORY_RECORDS_CRASH_PAIR_LATENCY_SECONDS; the second (aws mode, on the first's emulator, as replicas
// share AWS) is the one killed, so that the store outlives it. A steady loop of each RPC the config
// retries (Get and BatchUpdate of a seed record, List of its namespace, BatchCreate of a record in a
// namespace of its own with a client_token, and Retrieve under those namespaces) runs on both; the
// facade is sent SIGKILL at a moment with calls of two or more RPCs in flight on it that it has passed
// on to the emulator, one of them a BatchCreate. Each call's attempts are counted by a stats.Handler
// (stats.Begin is reported per attempt): the calls cut off fail with UNAVAILABLE and are retried on
// the survivor, so every call succeeds, there are more attempts than calls, and calls of more than
// one RPC were retried; every RPC is called after the kill too. Then the seed holds a text a
// BatchUpdate that succeeded gave it, and each BatchCreate's record is in the store exactly once,
// under its id, including one the emulator applied for the killed facade after it died (its createdAt
// is earlier than its retry could have been applied): retrying with the same client_token is safe.
func publishedConfigRetriesAKill(t *testing.T) {
	addresses := requireEnvList(t, "MEMORY_RECORDS_CRASH_PAIR_ADDRESSES", 2)
	survivor, victim := addresses[0], addresses[1]
	killPID, err := strconv.Atoi(requireEnv(t, "MEMORY_RECORDS_CRASH_PAIR_KILL_PID"))
	if err != nil {
		t.Fatalf("MEMORY_RECORDS_CRASH_PAIR_KILL_PID: %v", err)
	}
	latencySeconds, err := strconv.ParseFloat(requireEnv(t, "MEMORY_RECORDS_CRASH_PAIR_LATENCY_SECONDS"), 64)
	if err != nil || latencySeconds < 0.1 || latencySeconds > 1 {
		t.Fatalf("MEMORY_RECORDS_CRASH_PAIR_LATENCY_SECONDS %v (%v): want 0.1 to 1 s, for calls in flight",
			latencySeconds, err)
	}
	latency := time.Duration(latencySeconds * float64(time.Second))
	// A BatchCreate sent this long before the kill has reached the emulator and is not answered yet.
	sentFrom, sentTo := latency*3/10, latency*7/10

	ctx := testContext(t, 40*time.Second)
	attempts := &attemptLog{}
	client := memoryv1.NewMemoryRecordsServiceClient(
		pairConn(t, addresses, publishedConfig(t), grpc.WithStatsHandler(attempts)))
	seedNamespace, createdUnder := newNamespace("kill-seed"), newNamespace("kill")
	seed, err := createOne(ctx, client, seedNamespace, "seed")
	if err != nil {
		t.Fatalf("BatchCreate: %v", err)
	}

	loop := startKillLoop(ctx, client, attempts, seed, seedNamespace, createdUnder)
	defer loop.stop()
	for loop.servedBy(survivor) < 5 || loop.servedBy(victim) < 5 {
		if loop.elapsed() > 5*time.Second {
			t.Fatalf("before the kill, calls served by each: %v", loop.countsByPeer())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var cutOff []*attempt          // in flight on the victim when it was killed
	var sentMethods map[string]int // the RPCs of those sent sentFrom to sentTo before
	var killed time.Time
	for killed.IsZero() {
		inFlight, sent := attempts.inFlightOn(victim, sentFrom, sentTo)
		if sent["BatchCreate"] > 0 && len(sent) >= 2 &&
			len(inFlight) >= killMinInFlight && len(inFlight) <= killMaxInFlight {
			if err := syscall.Kill(killPID, syscall.SIGKILL); err != nil {
				t.Fatalf("SIGKILL to %d: %v", killPID, err)
			}
			killed, cutOff, sentMethods = time.Now(), inFlight, sent
		} else if loop.elapsed() > 10*time.Second {
			t.Fatalf("no moment with %d to %d calls in flight on %s, of two or more RPCs sent %s to %s before, "+
				"one a BatchCreate", killMinInFlight, killMaxInFlight, victim, sentFrom, sentTo)
		}
		time.Sleep(time.Millisecond)
	}
	if waitUntilRefused(ctx, victim, 5*time.Second).IsZero() {
		t.Fatalf("%s still accepts connections %s after SIGKILL", victim, time.Since(killed))
	}
	time.Sleep(killAfterwards)
	calls := loop.stop()
	ran := loop.elapsed()

	// Every call succeeded; the attempts of each, as the stats.Handler saw them.
	var failures []error
	total, transparent, afterKill, slowest := 0, 0, 0, time.Duration(0)
	failedOnVictim := map[codes.Code]int{}
	afterKillByMethod := map[string]int{}    // the calls of each RPC begun after the kill that succeeded
	retriedByMethod := map[string]int{}      // the calls of each RPC that failed on the killed facade, then succeeded
	retriedCreates := map[string]time.Time{} // a BatchCreate cut off: its namespace, and when its retry began
	updatedTo := map[string]bool{}           // the texts the BatchUpdates that succeeded gave the seed
	for _, call := range calls {
		if call.err != nil {
			failures = append(failures, fmt.Errorf("%s at %s: %w", call.method, call.started.Sub(killed), call.err))
		} else if call.started.After(killed) {
			afterKill++
			afterKillByMethod[call.method]++
		}
		if call.err == nil && call.method == "BatchUpdate" {
			updatedTo[call.updatedTo] = true
		}
		tried := attempts.of(call.tracked)
		total += len(tried)
		retried := false
		for index, one := range tried {
			if one.transparent {
				transparent++
			}
			if one.peer != victim || one.err == nil {
				continue
			}
			failedOnVictim[status.Code(one.err)]++
			if call.err == nil && index+1 < len(tried) {
				retried = true
				if _, seen := retriedCreates[call.namespace]; !seen && call.method == "BatchCreate" {
					retriedCreates[call.namespace] = tried[index+1].begun
				}
			}
		}
		if retried {
			retriedByMethod[call.method]++
		}
		if len(tried) > 1 {
			slowest = max(slowest, call.took)
		}
	}
	retries := total - len(calls) - transparent
	cutOffFailed := 0
	for _, one := range attempts.snapshot(cutOff) {
		if one.err != nil {
			cutOffFailed++
		}
	}
	t.Logf("%d calls in %s, %d after the kill (by RPC: %v); %d attempts: %d retries of the retry policy, "+
		"%d transparent; SIGKILL %s after the loop began, with %d in flight on the killed facade (%d of them "+
		"cut off; by RPC, those sent %s to %s before: %v); attempts failed on it by code: %v; calls retried "+
		"after failing on it, by RPC: %v; the slowest retried call took %s",
		len(calls), ran, afterKill, afterKillByMethod, total, retries, transparent, killed.Sub(loop.begun),
		len(cutOff), cutOffFailed, sentFrom, sentTo, sentMethods, failedOnVictim, retriedByMethod, slowest)
	if err := errors.Join(failures...); err != nil {
		t.Errorf("%d of %d calls failed:\n%v", len(failures), len(calls), err)
	}
	if total <= len(calls) || retries < 1 {
		t.Errorf("%d attempts of %d calls (%d retries of the policy): nothing was retried", total, len(calls), retries)
	}
	if len(retriedByMethod) < 2 {
		t.Errorf("calls retried after failing on the killed facade, by RPC: %v; want two or more RPCs", retriedByMethod)
	}
	for _, method := range retriedMethods {
		if afterKillByMethod[method] < 1 {
			t.Errorf("no %s succeeded after the kill", method)
		}
	}
	if cutOffFailed < 1 {
		t.Errorf("none of the %d calls in flight on the killed facade failed there", len(cutOff))
	}
	for code := range failedOnVictim {
		if code != codes.Unavailable {
			t.Errorf("attempts on the killed facade failed with %s, want only UNAVAILABLE (retryable)", code)
		}
	}
	if afterKill < 10 {
		t.Errorf("%d calls after the kill, want 10 or more", afterKill)
	}
	if len(calls) >= killMaxCalls || ran >= killMaxDuration {
		t.Errorf("the loop hit its bound (%d calls in %s)", len(calls), ran)
	}

	// The seed holds what a BatchUpdate that succeeded gave it (read on the survivor alone).
	direct := memoryv1.NewMemoryRecordsServiceClient(dial(t, survivor))
	call, cancel := callContext(ctx)
	got, err := direct.Get(call, &memoryv1.GetRequest{MemoryId: memoryID(), MemoryRecordId: seed})
	cancel()
	if text := textOf(got.GetMemoryRecord().GetContent()); err != nil || !updatedTo[text] {
		t.Errorf("the seed after the loop: %q (%v), not the text of a BatchUpdate that succeeded", text, err)
	}

	// Each BatchCreate's record is in the store exactly once, and nothing else.
	stored := listUnder(t, ctx, direct, createdUnder)
	byNamespace := map[string][]*memoryv1.MemoryRecordSummary{}
	for _, record := range stored {
		for _, namespace := range record.GetNamespaces() {
			byNamespace[namespace] = append(byNamespace[namespace], record)
		}
	}
	creates := 0
	for _, call := range calls {
		if call.method != "BatchCreate" || call.err != nil {
			continue
		}
		creates++
		if found := byNamespace[call.namespace]; len(found) != 1 || found[0].GetMemoryRecordId() != call.recordID {
			t.Errorf("BatchCreate in %s answered %s; the store holds %d records there: %v",
				call.namespace, call.recordID, len(found), found)
		}
	}
	if len(stored) != creates {
		t.Errorf("%d records under %s, want the %d the BatchCreates answered", len(stored), createdUnder, creates)
	}
	// A retried BatchCreate whose record was created before its retry could have been (the retry waits out
	// the emulator's latency too) was applied for the killed facade, and not again for the retry.
	appliedForKilled := 0
	for namespace, retryBegun := range retriedCreates {
		call, cancel := callContext(ctx)
		reply, err := direct.List(call, &memoryv1.ListRequest{MemoryId: memoryID(), Namespace: proto.String(namespace)})
		cancel()
		if err != nil {
			t.Fatalf("List %s: %v", namespace, err)
		}
		found := reply.GetMemoryRecordSummaries()
		if len(found) != 1 {
			t.Errorf("the retried BatchCreate in %s: %d records, want 1", namespace, len(found))
			continue
		}
		if found[0].GetCreatedAt().AsTime().Before(retryBegun.Add(latency)) {
			appliedForKilled++
		}
	}
	t.Logf("%d BatchCreates, %d records; %d BatchCreates retried after failing on the killed facade, %d of them "+
		"applied for it before its retry", creates, len(stored), len(retriedCreates), appliedForKilled)
	if len(retriedCreates) < 1 || appliedForKilled < 1 {
		t.Errorf("%d BatchCreates retried, %d applied for the killed facade: want one or more of each",
			len(retriedCreates), appliedForKilled)
	}
}

// listUnder is every record summary under namespace path `path`, page by page.
func listUnder(
	t *testing.T, ctx context.Context, client memoryv1.MemoryRecordsServiceClient, path string,
) []*memoryv1.MemoryRecordSummary {
	t.Helper()
	var all []*memoryv1.MemoryRecordSummary
	token := ""
	for range 50 {
		call, cancel := callContext(ctx)
		reply, err := client.List(call, &memoryv1.ListRequest{
			MemoryId: memoryID(), NamespacePath: proto.String(path), PageSize: 100, PageToken: token,
		})
		cancel()
		if err != nil {
			t.Fatalf("List under %s: %v", path, err)
		}
		all = append(all, reply.GetMemoryRecordSummaries()...)
		if token = reply.GetNextPageToken(); token == "" {
			return all
		}
	}
	t.Fatalf("List under %s: more than 50 pages", path)
	return nil
}

// attempt is one attempt of a call, as the channel's stats.Handler saw it.
type attempt struct {
	transparent bool // a transparent retry (stats.Begin.IsTransparentRetryAttempt)
	begun       time.Time
	peer        string // the facade it was sent to (stats.OutHeader); "" if it never was
	ended       bool
	err         error
}

// trackedCall is one call's attempts, in order; the call's context carries it to the attemptLog.
type trackedCall struct {
	method   string
	attempts []*attempt
}

type (
	trackedCallKey struct{}
	attemptKey     struct{}
)

// attemptLog is a stats.Handler (grpc.WithStatsHandler) recording each attempt of the calls whose
// context holds a *trackedCall (from track): grpc-go tags and begins every attempt, the first and
// each retry, with the call's context. Other streams (health checking's Watch) are not recorded.
type attemptLog struct {
	mu    sync.Mutex
	calls []*trackedCall
}

// track is `ctx` carrying a new trackedCall of `method`.
func (l *attemptLog) track(ctx context.Context, method string) (context.Context, *trackedCall) {
	call := &trackedCall{method: method}
	l.mu.Lock()
	l.calls = append(l.calls, call)
	l.mu.Unlock()
	return context.WithValue(ctx, trackedCallKey{}, call), call
}

func (l *attemptLog) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	call, ok := ctx.Value(trackedCallKey{}).(*trackedCall)
	if !ok {
		return ctx
	}
	one := &attempt{}
	l.mu.Lock()
	call.attempts = append(call.attempts, one)
	l.mu.Unlock()
	return context.WithValue(ctx, attemptKey{}, one)
}

func (l *attemptLog) HandleRPC(ctx context.Context, event stats.RPCStats) {
	one, ok := ctx.Value(attemptKey{}).(*attempt)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch event := event.(type) {
	case *stats.Begin:
		one.begun, one.transparent = event.BeginTime, event.IsTransparentRetryAttempt
	case *stats.OutHeader:
		if event.RemoteAddr != nil {
			one.peer = event.RemoteAddr.String()
		}
	case *stats.End:
		one.ended, one.err = true, event.Error
	}
}

func (*attemptLog) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (*attemptLog) HandleConn(context.Context, stats.ConnStats) {}

// inFlightOn is the attempts sent to `address` and not ended yet, and how many of those begun between
// `from` and `to` ago are of each RPC.
func (l *attemptLog) inFlightOn(address string, from, to time.Duration) ([]*attempt, map[string]int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var inFlight []*attempt
	sent := map[string]int{}
	for _, call := range l.calls {
		for _, one := range call.attempts {
			if one.peer != address || one.ended {
				continue
			}
			inFlight = append(inFlight, one)
			if age := now.Sub(one.begun); age >= from && age <= to {
				sent[call.method]++
			}
		}
	}
	return inFlight, sent
}

// of is a copy of each attempt of `call`.
func (l *attemptLog) of(call *trackedCall) []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	copies := make([]attempt, 0, len(call.attempts))
	for _, one := range call.attempts {
		copies = append(copies, *one)
	}
	return copies
}

// snapshot is a copy of each of `attempts`.
func (l *attemptLog) snapshot(attempts []*attempt) []attempt {
	return l.of(&trackedCall{attempts: attempts})
}

// killCall is one call of the kill's loop.
type killCall struct {
	method    string
	started   time.Time
	took      time.Duration
	peer      string // the facade that answered (the last attempt's)
	err       error
	tracked   *trackedCall
	namespace string // a BatchCreate's own namespace, and the id of the record it created
	recordID  string
	updatedTo string // the text a BatchUpdate gave the seed
}

// killLoop is killCallers goroutines calling each of retriedMethods in turn (each starting with a
// different one) until stopped, or killMaxCalls, or killMaxDuration; a call under way when it is
// stopped is finished and counted. Get and BatchUpdate are of the seed, List of its namespace,
// BatchCreate of a record in a namespace of its own under `createdUnder`, Retrieve under that.
type killLoop struct {
	mu       sync.Mutex
	calls    []killCall
	begun    time.Time
	stopping atomic.Bool
	cancel   context.CancelFunc
	done     sync.WaitGroup
}

func startKillLoop(
	ctx context.Context, client memoryv1.MemoryRecordsServiceClient, attempts *attemptLog,
	seedID, seedNamespace, createdUnder string,
) *killLoop {
	ctx, cancel := context.WithTimeout(ctx, killMaxDuration)
	loop := &killLoop{begun: time.Now(), cancel: cancel}
	for caller := range killCallers {
		loop.done.Add(1)
		go func() {
			defer loop.done.Done()
			for turn := caller; !loop.stopping.Load() && ctx.Err() == nil && loop.count() < killMaxCalls; turn++ {
				result := killCall{method: retriedMethods[turn%len(retriedMethods)], started: time.Now()}
				var from peer.Peer
				call, cancelCall := callContext(ctx)
				call, result.tracked = attempts.track(call, result.method)
				switch result.method {
				case "Get":
					_, result.err = client.Get(call, &memoryv1.GetRequest{
						MemoryId: memoryID(), MemoryRecordId: seedID,
					}, grpc.Peer(&from))
				case "List":
					_, result.err = client.List(call, &memoryv1.ListRequest{
						MemoryId: memoryID(), Namespace: proto.String(seedNamespace), PageSize: 5,
					}, grpc.Peer(&from))
				case "Retrieve":
					_, result.err = client.Retrieve(call, &memoryv1.RetrieveRequest{
						MemoryId: memoryID(), NamespacePath: proto.String(createdUnder), PageSize: 5,
						SearchCriteria: &memoryv1.SearchCriteria{SearchQuery: "killed mid-call"},
					}, grpc.Peer(&from))
				case "BatchUpdate":
					result.updatedTo = fmt.Sprintf("updated by c%d-%d", caller, turn)
					var reply *memoryv1.BatchUpdateResponse
					reply, result.err = client.BatchUpdate(call, seedUpdate(seedID, result.updatedTo), grpc.Peer(&from))
					if result.err == nil {
						result.err = updatedOnly(reply, seedID)
					}
				case "BatchCreate":
					identifier := fmt.Sprintf("c%d-%d", caller, turn)
					result.namespace = createdUnder + "/" + identifier
					var reply *memoryv1.BatchCreateResponse
					reply, result.err = client.BatchCreate(call, &memoryv1.BatchCreateRequest{
						MemoryId: memoryID(),
						Records: []*memoryv1.MemoryRecordCreate{
							newRecord(identifier, result.namespace, "killed mid-call"),
						},
						ClientToken: proto.String(fmt.Sprintf("go-kill-%s-%d", identifier, result.started.UnixNano())),
					}, grpc.Peer(&from))
					if created := reply.GetSuccessfulRecords(); result.err == nil && len(created) != 1 {
						result.err = fmt.Errorf("created %v, failed %v", created, reply.GetFailedRecords())
					} else if result.err == nil {
						result.recordID = created[0].GetMemoryRecordId()
					}
				default:
					result.err = fmt.Errorf("no call of %s in the loop", result.method)
				}
				cancelCall()
				result.took = time.Since(result.started)
				if ctx.Err() != nil && result.err != nil {
					return // past the loop's bound (which the test reports): not a failure of the facades
				}
				if from.Addr != nil {
					result.peer = from.Addr.String()
				}
				loop.mu.Lock()
				loop.calls = append(loop.calls, result)
				loop.mu.Unlock()
			}
		}()
	}
	return loop
}

func (l *killLoop) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

func (l *killLoop) elapsed() time.Duration { return time.Since(l.begun) }

// countsByPeer is how many calls each facade answered so far.
func (l *killLoop) countsByPeer() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[string]int{}
	for _, call := range l.calls {
		counts[call.peer]++
	}
	return counts
}

func (l *killLoop) servedBy(address string) int { return l.countsByPeer()[address] }

// stop ends the loop once the calls under way are answered, and returns every call it made.
func (l *killLoop) stop() []killCall {
	l.stopping.Store(true)
	l.done.Wait()
	l.cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]killCall(nil), l.calls...)
}
