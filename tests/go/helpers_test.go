// Package memoryrecords holds the Go client tests of agentcore.memory.v1.MemoryRecordsService: the
// generated client (generated/go) with grpc-go, as a Go service would call the facade, against real
// `python -m service` processes. tests/integration/go_client.py starts them on the embedded
// emulator and names them in MEMORY_RECORDS_* variables; a test whose variable is missing fails (a
// skipped test would prove nothing). By hand, with facades of your own:
//
//	MEMORY_RECORDS_ADDRESS=127.0.0.1:50051 go test -run 'TestEveryRPC/plaintext' -v ./...
//
// This file holds what the tests share: the environment, connections, records, the decoding of an
// error's google.rpc details and the scraping of a facade's /metrics.
package memoryrecords

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	memoryv1 "github.com/agentcore-memory-grpc/gen/go/agentcore/memory/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// The memory the embedded emulator knows by default (its start line's localMemoryIds).
	defaultMemoryID  = "demo_memory-0123456789"
	unknownRecordID  = "mem-00000000-0000-0000-0000-000000000000"
	facadeDomain     = "agentcore-memory-grpc"
	awsDomain        = "bedrock-agentcore.amazonaws.com"
	serviceName      = "agentcore.memory.v1.MemoryRecordsService"
	receiveLimit     = 8 * 1024 * 1024 // the largest List or Retrieve page (7.1 MiB) is over gRPC's 4 MiB
	callTimeout      = 10 * time.Second
	recordTimestamps = 1_732_560_000
)

// requireEnv is the value of the environment variable `name`; the test fails without it.
func requireEnv(t *testing.T, name string) string {
	t.Helper()
	value := os.Getenv(name)
	if value == "" {
		t.Fatalf("set %s (tests/integration/go_client.py sets it)", name)
	}
	return value
}

// requireEnvList is a comma-separated variable as a list of exactly `count` items.
func requireEnvList(t *testing.T, name string, count int) []string {
	t.Helper()
	items := strings.Split(requireEnv(t, name), ",")
	if len(items) != count {
		t.Fatalf("%s: %d items, want %d", name, len(items), count)
	}
	return items
}

func memoryID() string {
	if id := os.Getenv("MEMORY_ID"); id != "" {
		return id
	}
	return defaultMemoryID
}

// testContext is a context that ends with the test, or after `timeout`: no test waits for ever.
func testContext(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// callContext bounds one call: the deadline grpc-go sends as grpc-timeout.
func callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout)
}

// dial is a client connection to `target` (plaintext unless `options` say otherwise), closed with
// the test. The receive limit is the one a client of this service should set.
func dial(t *testing.T, target string, options ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	defaults := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(receiveLimit)),
	}
	conn, err := grpc.NewClient(target, append(defaults, options...)...)
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", target, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// calledMethods records the RPCs a connection made (by method name), through a client interceptor.
type calledMethods struct {
	mu    sync.Mutex
	names map[string]bool
}

func (c *calledMethods) interceptor() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, request, reply any,
		conn *grpc.ClientConn, invoker grpc.UnaryInvoker, options ...grpc.CallOption) error {
		c.mu.Lock()
		if c.names == nil {
			c.names = map[string]bool{}
		}
		c.names[method[strings.LastIndex(method, "/")+1:]] = true
		c.mu.Unlock()
		return invoker(ctx, method, request, reply, conn, options...)
	})
}

// requireAllOfTheContract fails the test for each RPC of the contract (the generated ServiceDesc)
// that was not called: a new RPC fails it until a test calls it.
func (c *calledMethods) requireAllOfTheContract(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	desc := memoryv1.MemoryRecordsService_ServiceDesc
	if desc.ServiceName != serviceName {
		t.Errorf("service %s, want %s", desc.ServiceName, serviceName)
	}
	for _, method := range desc.Methods {
		if !c.names[method.MethodName] {
			t.Errorf("the contract's RPC %s was not called: add it to exerciseEveryRPC", method.MethodName)
		}
	}
	for _, stream := range desc.Streams {
		t.Errorf("the contract's streaming RPC %s was not called: add it to exerciseEveryRPC", stream.StreamName)
	}
	if len(desc.Methods) < 7 {
		t.Errorf("the contract has %d RPCs, want at least the 7 of v1", len(desc.Methods))
	}
}

var namespaces atomic.Int64

// newNamespace is a namespace of this run and test alone, so that List and Retrieve see only what the
// test wrote.
func newNamespace(kind string) string {
	return fmt.Sprintf("go/%s-%d-%d-%d", kind, os.Getpid(), time.Now().UnixNano(), namespaces.Add(1))
}

// newRecord is a valid record to create, with every kind of field set.
func newRecord(requestIdentifier, namespace, text string) *memoryv1.MemoryRecordCreate {
	return &memoryv1.MemoryRecordCreate{
		RequestIdentifier: requestIdentifier,
		Namespaces:        []string{namespace},
		Content:           &memoryv1.MemoryContent{Content: &memoryv1.MemoryContent_Text{Text: text}},
		Timestamp:         &timestamppb.Timestamp{Seconds: recordTimestamps, Nanos: 123_456_000},
		MemoryStrategyId:  proto.String("manual"),
		Metadata: map[string]*memoryv1.MetadataValue{
			"topic":  {Value: &memoryv1.MetadataValue_StringValue{StringValue: "drinks"}},
			"weight": {Value: &memoryv1.MetadataValue_NumberValue{NumberValue: 0.75}},
		},
	}
}

// textOf is the text of a record's content ("" when there is none).
func textOf(content *memoryv1.MemoryContent) string {
	return content.GetText()
}

// richError is what an error carried: its status, and each google.rpc detail by type.
type richError struct {
	status       *status.Status
	errorInfo    *errdetails.ErrorInfo
	badRequest   *errdetails.BadRequest
	resourceInfo *errdetails.ResourceInfo
	requestInfo  *errdetails.RequestInfo
	retryInfo    *errdetails.RetryInfo
	quotaFailure *errdetails.QuotaFailure
}

// decodeError reads `err` back with status.FromError and st.Details(), as a Go caller would: the code
// must be `code`, every detail a known google.rpc type (each at most once) and an ErrorInfo there.
func decodeError(t *testing.T, err error, code codes.Code) richError {
	t.Helper()
	if err == nil {
		t.Fatalf("the call succeeded, want %s", code)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a gRPC status: %v", err)
	}
	if st.Code() != code {
		t.Fatalf("code %s (%s), want %s", st.Code(), st.Message(), code)
	}
	found := richError{status: st}
	seen := map[string]bool{}
	for _, detail := range st.Details() {
		if failed, isError := detail.(error); isError {
			t.Fatalf("a detail does not decode: %v", failed)
		}
		name := fmt.Sprintf("%T", detail)
		if seen[name] {
			t.Fatalf("two %s details", name)
		}
		seen[name] = true
		switch typed := detail.(type) {
		case *errdetails.ErrorInfo:
			found.errorInfo = typed
		case *errdetails.BadRequest:
			found.badRequest = typed
		case *errdetails.ResourceInfo:
			found.resourceInfo = typed
		case *errdetails.RequestInfo:
			found.requestInfo = typed
		case *errdetails.RetryInfo:
			found.retryInfo = typed
		case *errdetails.QuotaFailure:
			found.quotaFailure = typed
		default:
			t.Fatalf("a detail of an unexpected type %s", name)
		}
	}
	if found.errorInfo == nil {
		t.Fatalf("no ErrorInfo in the details of %s: %s", code, st.Message())
	}
	if reason := found.errorInfo.GetReason(); reason != strings.ToUpper(reason) || strings.Contains(reason, " ") {
		t.Errorf("ErrorInfo reason %q is not UPPER_SNAKE_CASE", reason)
	}
	return found
}

// fieldPaths are the fields a BadRequest names, in its order.
func (e richError) fieldPaths() []string {
	var paths []string
	for _, violation := range e.badRequest.GetFieldViolations() {
		paths = append(paths, violation.GetField())
	}
	return paths
}

// metrics is one scrape of a facade's /metrics (Prometheus text): each sample by its series, e.g.
// `grpc_server_handled_total{grpc_code="OK",grpc_method="Get",...}`.
type metrics map[string]float64

// scrape reads http://`address`/metrics.
func scrape(t *testing.T, ctx context.Context, address string) metrics {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+address+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatalf("scraping %s: %v", address, err)
	}
	defer func() { _ = response.Body.Close() }()
	if response.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s", address, response.Status)
	}
	samples := metrics{}
	lines := bufio.NewScanner(response.Body)
	lines.Buffer(make([]byte, 64*1024), 1024*1024)
	for lines.Scan() {
		line := lines.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cut := strings.LastIndexByte(line, ' ')
		value, err := strconv.ParseFloat(line[cut+1:], 64)
		if cut < 0 || err != nil {
			t.Fatalf("scraping %s: not a sample: %q", address, line)
		}
		samples[line[:cut]] = value
	}
	if err := lines.Err(); err != nil {
		t.Fatalf("scraping %s: %v", address, err)
	}
	return samples
}

// sum is the total of the samples of metric `name` whose labels include every one of `labels`.
func (m metrics) sum(name string, labels map[string]string) float64 {
	total := 0.0
	for series, value := range m {
		metric, labelText, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		if matchesLabels(strings.TrimSuffix(labelText, "}"), labels) {
			total += value
		}
	}
	return total
}

// matchesLabels says whether `a="1",b="2"` holds every label of `want` (the facade's label values
// hold no quote or comma).
func matchesLabels(text string, want map[string]string) bool {
	have := map[string]string{}
	for pair := range strings.SplitSeq(text, ",") {
		if key, value, ok := strings.Cut(pair, "="); ok {
			have[key] = strings.Trim(value, `"`)
		}
	}
	for key, value := range want {
		if have[key] != value {
			return false
		}
	}
	return true
}
