// Command metricstwin is the Go twin of the facade's gRPC metrics: a server of
// agentcore.memory.v1.MemoryRecordsService instrumented with go-grpc-middleware's Prometheus provider
// (providers/prometheus, handling-time histogram on, the facade's buckets), beside grpc-go's own health
// and reflection services, as a Go server would be. tests/integration/test_middleware_metrics.py makes
// the same calls to it and to the facade and compares the two /metrics expositions.
//
// Its handlers do no work: each answers a code chosen by the request, the code the facade with the
// embedded emulator gives for the same request:
//
//   - an empty memory_id: INVALID_ARGUMENT;
//   - a memory_id starting with "unknown": NOT_FOUND;
//   - a memory_record_id (Get, Delete) starting with "mem-00000000-": NOT_FOUND;
//   - anything else: OK, with an empty response.
//
// It listens on loopback ports of the flags (0: any free one) and prints one JSON line on stdout,
// {"grpcPort": ..., "metricsPort": ...}, once both accept connections. SIGTERM or SIGINT stops it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	memoryv1 "github.com/agentcore-memory-grpc/gen/go/agentcore/memory/v1"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// latencyBuckets are the facade's LATENCY_BUCKETS (service/telemetry/metrics/__init__.py), in seconds.
var latencyBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80,
}

// codeOf is the code a request with these ids is answered with.
func codeOf(memoryID, recordID string) error {
	switch {
	case memoryID == "":
		return status.Error(codes.InvalidArgument, "memory_id is required")
	case strings.HasPrefix(memoryID, "unknown"):
		return status.Error(codes.NotFound, "no such memory")
	case strings.HasPrefix(recordID, "mem-00000000-"):
		return status.Error(codes.NotFound, "no such record")
	}
	return nil
}

type memoryRecords struct {
	memoryv1.UnimplementedMemoryRecordsServiceServer
}

func (memoryRecords) BatchCreate(_ context.Context, r *memoryv1.BatchCreateRequest) (*memoryv1.BatchCreateResponse, error) {
	if err := codeOf(r.GetMemoryId(), ""); err != nil {
		return nil, err
	}
	return &memoryv1.BatchCreateResponse{}, nil
}

func (memoryRecords) BatchUpdate(_ context.Context, r *memoryv1.BatchUpdateRequest) (*memoryv1.BatchUpdateResponse, error) {
	if err := codeOf(r.GetMemoryId(), ""); err != nil {
		return nil, err
	}
	return &memoryv1.BatchUpdateResponse{}, nil
}

func (memoryRecords) Get(_ context.Context, r *memoryv1.GetRequest) (*memoryv1.GetResponse, error) {
	if err := codeOf(r.GetMemoryId(), r.GetMemoryRecordId()); err != nil {
		return nil, err
	}
	return &memoryv1.GetResponse{}, nil
}

func (memoryRecords) Delete(_ context.Context, r *memoryv1.DeleteRequest) (*memoryv1.DeleteResponse, error) {
	if err := codeOf(r.GetMemoryId(), r.GetMemoryRecordId()); err != nil {
		return nil, err
	}
	return &memoryv1.DeleteResponse{}, nil
}

func (memoryRecords) BatchDelete(_ context.Context, r *memoryv1.BatchDeleteRequest) (*memoryv1.BatchDeleteResponse, error) {
	if err := codeOf(r.GetMemoryId(), ""); err != nil {
		return nil, err
	}
	return &memoryv1.BatchDeleteResponse{}, nil
}

func (memoryRecords) List(_ context.Context, r *memoryv1.ListRequest) (*memoryv1.ListResponse, error) {
	if err := codeOf(r.GetMemoryId(), ""); err != nil {
		return nil, err
	}
	return &memoryv1.ListResponse{}, nil
}

func (memoryRecords) Retrieve(_ context.Context, r *memoryv1.RetrieveRequest) (*memoryv1.RetrieveResponse, error) {
	if err := codeOf(r.GetMemoryId(), ""); err != nil {
		return nil, err
	}
	return &memoryv1.RetrieveResponse{}, nil
}

func listen(port int) (net.Listener, int, error) {
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, 0, err
	}
	return listener, listener.Addr().(*net.TCPAddr).Port, nil
}

func main() {
	grpcPort := flag.Int("grpc-port", 0, "loopback port of the gRPC server (0: any free one)")
	metricsPort := flag.Int("metrics-port", 0, "loopback port of /metrics (0: any free one)")
	flag.Parse()

	// The metrics as the provider's README sets them up, histogram on, in a registry of their own (no
	// go_* or process_* collectors: the comparison is of the grpc_* families only).
	serverMetrics := grpcprom.NewServerMetrics(
		grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(latencyBuckets)),
	)
	registry := prometheus.NewRegistry()
	registry.MustRegister(serverMetrics)

	server := grpc.NewServer(
		grpc.ChainUnaryInterceptor(serverMetrics.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(serverMetrics.StreamServerInterceptor()),
	)
	memoryv1.RegisterMemoryRecordsServiceServer(server, memoryRecords{})
	healthServer := health.NewServer()
	healthServer.SetServingStatus(memoryv1.MemoryRecordsService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, healthServer)
	reflection.Register(server)
	// Every series of every registered method at 0, before the first call.
	serverMetrics.InitializeMetrics(server)

	grpcListener, boundGRPC, err := listen(*grpcPort)
	if err != nil {
		log.Fatalf("cannot listen for gRPC: %v", err)
	}
	metricsListener, boundMetrics, err := listen(*metricsPort)
	if err != nil {
		log.Fatalf("cannot listen for /metrics: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	metricsServer := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	served := make(chan error, 2)
	go func() { served <- server.Serve(grpcListener) }()
	go func() { served <- metricsServer.Serve(metricsListener) }()

	start, err := json.Marshal(map[string]int{"grpcPort": boundGRPC, "metricsPort": boundMetrics})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(start))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case err := <-served:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("serving stopped: %v", err)
		}
	}
	server.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = metricsServer.Shutdown(ctx)
}
