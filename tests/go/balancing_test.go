package memoryrecords

// Client-side load balancing across two facades (one store behind both, as replicas share AWS), and
// the published service config (deploy/clients/service-config.json) riding out one being stopped.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	memoryv1 "github.com/agentcore-memory-grpc/gen/go/agentcore/memory/v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health" // the client side of healthCheckConfig
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/protobuf/proto"
)

const (
	publishedServiceConfig = "../../deploy/clients/service-config.json"
	roundRobinOnly         = `{"loadBalancingConfig": [{"round_robin": {}}]}`
	// The steady loop: this many callers, each pausing between calls, bounded in calls and time.
	loopCallers     = 2
	loopPause       = 10 * time.Millisecond
	loopMaxCalls    = 3000
	loopMaxDuration = 25 * time.Second
)

// pairConn is a channel to both facades of the pair, resolved by a manual resolver (as a headless
// Kubernetes Service's DNS would list the pods), with `serviceConfig`.
func pairConn(t *testing.T, addresses []string, serviceConfig string) *grpc.ClientConn {
	t.Helper()
	builder := manual.NewBuilderWithScheme("pair")
	var endpoints []resolver.Endpoint
	for _, address := range addresses {
		endpoints = append(endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: address}}})
	}
	builder.InitialState(resolver.State{Endpoints: endpoints})
	return dial(t, "pair:///facades", grpc.WithResolvers(builder), grpc.WithDefaultServiceConfig(serviceConfig))
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
// steady loop of the retried RPCs (Get, List, BatchCreate with a client_token) still succeeds: health
// checking takes the draining facade out of rotation while it still serves, and the loop goes on on
// the other after it has stopped.
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
		config, err := os.ReadFile(publishedServiceConfig)
		if err != nil {
			t.Fatal(err)
		}
		var parsed struct {
			HealthCheckConfig struct{ ServiceName string }
		}
		if err := json.Unmarshal(config, &parsed); err != nil || parsed.HealthCheckConfig.ServiceName != serviceName {
			t.Fatalf("%s: health checking of %q (%v), want %s",
				publishedServiceConfig, parsed.HealthCheckConfig.ServiceName, err, serviceName)
		}
		client := memoryv1.NewMemoryRecordsServiceClient(pairConn(t, addresses, string(config)))
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
			"call on the draining facade started %s later, its port closed %s later",
			total, ran, phases, lastOnStopped.Sub(terminated), stopped.Sub(terminated))
		if err := errors.Join(failures...); err != nil {
			t.Errorf("%d of %d calls failed:\n%v", len(failures), total, err)
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

// steadyLoop is loopCallers goroutines calling Get, List and BatchCreate in turn until stopped (or
// loopMaxCalls, or loopMaxDuration).
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
				var method string
				var err error
				switch turn % 3 {
				case 0:
					method = "Get"
					_, err = client.Get(call, &memoryv1.GetRequest{
						MemoryId: memoryID(), MemoryRecordId: recordID,
					}, grpc.Peer(&from))
				case 1:
					method = "List"
					_, err = client.List(call, &memoryv1.ListRequest{
						MemoryId: memoryID(), Namespace: proto.String(namespace), PageSize: 5,
					}, grpc.Peer(&from))
				default:
					method = "BatchCreate"
					_, err = client.BatchCreate(call, &memoryv1.BatchCreateRequest{
						MemoryId: memoryID(),
						Records: []*memoryv1.MemoryRecordCreate{
							newRecord(fmt.Sprintf("c%d-%d", caller, turn), namespace, "steady loop"),
						},
						ClientToken: proto.String(fmt.Sprintf("go-loop-%d-%d-%d", caller, turn, started.UnixNano())),
					}, grpc.Peer(&from))
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
