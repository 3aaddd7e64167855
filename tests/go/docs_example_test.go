package memoryrecords

// The Go snippet of docs/calling.md, run as written: a connection with the receive limit a List page
// needs, and a caller's mistake read back from its google.rpc details.

import (
	"context"
	"testing"
	"time"

	memoryv1 "github.com/agentcore-memory-grpc/gen/go/agentcore/memory/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// --- begin docs/calling.md: go ---
// connect dials the facade; a List or Retrieve page can be larger than grpc-go's 4 MiB default.
func connect(address string) (*grpc.ClientConn, error) {
	return grpc.NewClient(address,
		grpc.WithTransportCredentials(insecure.NewCredentials()), // or credentials.NewTLS(...)
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(8<<20)))
}

// explain says what went wrong: the code, ErrorInfo's reason and the fields BadRequest names.
func explain(err error) string {
	st, _ := status.FromError(err)
	text := st.Code().String()
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			text += " " + d.GetReason()
		case *errdetails.BadRequest:
			for _, violation := range d.GetFieldViolations() {
				text += " " + violation.GetField()
			}
		}
	}
	return text
}

// --- end docs/calling.md: go ---

func TestDocsExample(t *testing.T) {
	conn, err := connect(requireEnv(t, "MEMORY_RECORDS_ADDRESS"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := memoryv1.NewMemoryRecordsServiceClient(conn)
	_, err = client.Get(ctx, &memoryv1.GetRequest{MemoryId: memoryID(), MemoryRecordId: ""})
	if got, want := explain(err), "InvalidArgument INVALID_ARGUMENT memory_record_id"; got != want {
		t.Fatalf("explain(err) = %q, want %q", got, want)
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("not INVALID_ARGUMENT: %v", err)
	}
}
