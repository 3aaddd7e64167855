package memoryrecords

// A Go caller's trace through the facade: tests/integration/test_trace_jaeger.py starts Jaeger and a
// facade exporting to it, runs this test alone, then reads the whole trace back from Jaeger. The other
// runs of this suite skip it (go_client.py passes -skip), since it needs that Jaeger.

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	memoryv1 "github.com/agentcore-memory-grpc/gen/go/agentcore/memory/v1"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// tracedCall is what the Python side needs to find the trace in Jaeger and to prove that none of the
// call's sensitive values reached it.
type tracedCall struct {
	TraceID         string   `json:"traceId"`
	SpanID          string   `json:"spanId"`
	Marker          string   `json:"marker"`
	Namespace       string   `json:"namespace"`
	MemoryRecordIDs []string `json:"memoryRecordIds"`
}

// TestTraceOfBatchCreate starts a span of its own ("go-caller"), calls BatchCreate with 250 records
// (three AWS calls for the facade) through otelgrpc's client stats handler, which sends traceparent,
// exports its spans over OTLP/gRPC to MEMORY_RECORDS_TRACE_OTLP_ENDPOINT and writes the trace's ids
// and the call's sensitive values to MEMORY_RECORDS_TRACE_RESULT_FILE.
func TestTraceOfBatchCreate(t *testing.T) {
	endpoint := os.Getenv("MEMORY_RECORDS_TRACE_OTLP_ENDPOINT")
	if endpoint == "" {
		t.Skip("set MEMORY_RECORDS_TRACE_OTLP_ENDPOINT (tests/integration/test_trace_jaeger.py sets it)")
	}
	resultFile := requireEnv(t, "MEMORY_RECORDS_TRACE_RESULT_FILE")
	ctx := testContext(t, 30*time.Second)

	exporter, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatalf("the OTLP exporter: %v", err)
	}
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "go-caller"))),
	)
	// Explicit rather than otel's globals: the propagator that writes traceparent into the metadata.
	handler := otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(provider),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
	)
	client := memoryv1.NewMemoryRecordsServiceClient(
		dial(t, requireEnv(t, "MEMORY_RECORDS_ADDRESS"), grpc.WithStatsHandler(handler)),
	)

	marker := fmt.Sprintf("trace-marker-%d", time.Now().UnixNano())
	namespace := newNamespace("trace")
	records := make([]*memoryv1.MemoryRecordCreate, 250)
	for index := range records {
		records[index] = newRecord(fmt.Sprintf("t%03d", index), namespace, fmt.Sprintf("%s record %d", marker, index))
	}
	spanCtx, span := provider.Tracer("go-caller").Start(ctx, "go-caller")
	call, cancel := callContext(spanCtx)
	created, err := client.BatchCreate(call, &memoryv1.BatchCreateRequest{
		MemoryId: memoryID(), Records: records, ClientToken: proto.String(marker),
	})
	cancel()
	span.End()
	if err != nil {
		t.Fatalf("BatchCreate: %v", err)
	}
	if failed := created.GetFailedRecords(); len(failed) != 0 {
		t.Fatalf("BatchCreate: %d failed, the first %v", len(failed), failed[0])
	}
	// Shutdown exports what the batcher holds: every span is in Jaeger once it returns.
	if err := provider.Shutdown(ctx); err != nil {
		t.Fatalf("exporting the spans: %v", err)
	}

	result := tracedCall{
		TraceID:   span.SpanContext().TraceID().String(),
		SpanID:    span.SpanContext().SpanID().String(),
		Marker:    marker,
		Namespace: namespace,
	}
	for _, record := range created.GetSuccessfulRecords() {
		result.MemoryRecordIDs = append(result.MemoryRecordIDs, record.GetMemoryRecordId())
	}
	if len(result.MemoryRecordIDs) != len(records) {
		t.Fatalf("BatchCreate: %d results for %d records", len(result.MemoryRecordIDs), len(records))
	}
	encoded, err := json.Marshal(result)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(resultFile, encoded, 0o600); err != nil {
		t.Fatal(err)
	}
}
