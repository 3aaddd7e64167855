package memoryrecords

// Every RPC of the contract from Go, in plaintext and over mutual TLS; a batch of 250 records; the
// google.rpc details of errors as status.FromError and st.Details() decode them.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	memoryv1 "github.com/agentcore-memory-grpc/gen/go/agentcore/memory/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// mutualTLS are the credentials of a client presenting the certificate in the variables
// MEMORY_RECORDS_TLS_<certVariable>_FILE and _KEY_FILE (CERT: the one the policy admits, DENIED_CERT:
// one it does not), trusting the CA of MEMORY_RECORDS_TLS_CA_FILE.
func mutualTLS(t *testing.T, certVariable string) grpc.DialOption {
	t.Helper()
	caPEM, err := os.ReadFile(requireEnv(t, "MEMORY_RECORDS_TLS_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("MEMORY_RECORDS_TLS_CA_FILE holds no PEM certificate")
	}
	keyVariable := strings.TrimSuffix(certVariable, "CERT") + "KEY"
	pair, err := tls.LoadX509KeyPair(
		requireEnv(t, "MEMORY_RECORDS_TLS_"+certVariable+"_FILE"),
		requireEnv(t, "MEMORY_RECORDS_TLS_"+keyVariable+"_FILE"),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The server's certificate names 127.0.0.1 (and localhost), the address dialled.
	config := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	return grpc.WithTransportCredentials(credentials.NewTLS(config))
}

// TestEveryRPC proves that the generated Go client calls every RPC of the contract and reads its
// reply field for field, in plaintext and over mutual TLS (where the policy admits only the client's
// SPIFFE ID, so that a served call also proves the identity the facade saw); it fails when the
// contract gains an RPC that exerciseEveryRPC does not call.
func TestEveryRPC(t *testing.T) {
	t.Parallel()
	t.Run("plaintext", func(t *testing.T) {
		t.Parallel()
		var called calledMethods
		conn := dial(t, requireEnv(t, "MEMORY_RECORDS_ADDRESS"), called.interceptor())
		exerciseEveryRPC(t, testContext(t, 30*time.Second), memoryv1.NewMemoryRecordsServiceClient(conn))
		called.requireAllOfTheContract(t)
	})
	t.Run("mutual_TLS", func(t *testing.T) {
		t.Parallel()
		var called calledMethods
		conn := dial(t, requireEnv(t, "MEMORY_RECORDS_TLS_ADDRESS"), mutualTLS(t, "CERT"), called.interceptor())
		exerciseEveryRPC(t, testContext(t, 30*time.Second), memoryv1.NewMemoryRecordsServiceClient(conn))
		called.requireAllOfTheContract(t)
	})
}

// exerciseEveryRPC calls each RPC of the contract once or more, in a namespace of its own.
func exerciseEveryRPC(t *testing.T, ctx context.Context, client memoryv1.MemoryRecordsServiceClient) {
	t.Helper()
	memory := memoryID()
	namespace := newNamespace("every-rpc")
	texts := []string{"Alice likes green tea", "Bob drinks black coffee", "green tea keeps Carol awake"}
	records := make([]*memoryv1.MemoryRecordCreate, len(texts))
	for index, text := range texts {
		records[index] = newRecord(fmt.Sprintf("r%d", index), namespace, text)
	}

	// BatchCreate: every record created, its request_identifier echoed.
	call, cancel := callContext(ctx)
	defer cancel()
	created, err := client.BatchCreate(call, &memoryv1.BatchCreateRequest{
		MemoryId: memory, Records: records, ClientToken: proto.String(fmt.Sprintf("go-%d", time.Now().UnixNano())),
	})
	if err != nil {
		t.Fatalf("BatchCreate: %v", err)
	}
	if len(created.GetFailedRecords()) != 0 || len(created.GetSuccessfulRecords()) != len(texts) {
		t.Fatalf("BatchCreate: %d created, %d failed", len(created.GetSuccessfulRecords()), len(created.GetFailedRecords()))
	}
	ids := make([]string, len(texts))
	for index, result := range created.GetSuccessfulRecords() {
		if result.GetRequestIdentifier() != fmt.Sprintf("r%d", index) ||
			result.GetStatus() != memoryv1.MemoryRecordStatus_MEMORY_RECORD_STATUS_SUCCEEDED ||
			!strings.HasPrefix(result.GetMemoryRecordId(), "mem-") {
			t.Fatalf("BatchCreate: result %d is %v", index, result)
		}
		ids[index] = result.GetMemoryRecordId()
	}

	// Get: the record reads back as written.
	got, err := client.Get(call, &memoryv1.GetRequest{MemoryId: memory, MemoryRecordId: ids[0]})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	record := got.GetMemoryRecord()
	if record.GetMemoryRecordId() != ids[0] || textOf(record.GetContent()) != texts[0] ||
		!slices.Equal(record.GetNamespaces(), []string{namespace}) || record.GetMemoryStrategyId() != "manual" ||
		!proto.Equal(record.GetTimestamp(), records[0].GetTimestamp()) || record.GetCreatedAt().GetSeconds() <= 0 ||
		record.GetMetadata()["topic"].GetStringValue() != "drinks" ||
		record.GetMetadata()["weight"].GetNumberValue() != 0.75 {
		t.Fatalf("Get: %v", record)
	}

	// BatchUpdate: the known record changes; an unknown one fails alone, with AWS's 404.
	updated, err := client.BatchUpdate(call, &memoryv1.BatchUpdateRequest{
		MemoryId: memory,
		Records: []*memoryv1.MemoryRecordUpdate{
			{
				MemoryRecordId: ids[0],
				Timestamp:      timestamppb.New(time.Unix(recordTimestamps+3600, 0)),
				Content:        &memoryv1.MemoryContent{Content: &memoryv1.MemoryContent_Text{Text: "Alice prefers oolong"}},
			},
			{MemoryRecordId: unknownRecordID, Timestamp: timestamppb.New(time.Unix(recordTimestamps, 0))},
		},
	})
	if err != nil {
		t.Fatalf("BatchUpdate: %v", err)
	}
	if len(updated.GetSuccessfulRecords()) != 1 || updated.GetSuccessfulRecords()[0].GetMemoryRecordId() != ids[0] {
		t.Fatalf("BatchUpdate: succeeded %v", updated.GetSuccessfulRecords())
	}
	if failed := updated.GetFailedRecords(); len(failed) != 1 || failed[0].GetMemoryRecordId() != unknownRecordID ||
		failed[0].GetErrorCode() != 404 || failed[0].GetOutcome() != memoryv1.RecordOutcome_RECORD_OUTCOME_NOT_APPLIED {
		t.Fatalf("BatchUpdate: failed %v", failed)
	}
	got, err = client.Get(call, &memoryv1.GetRequest{MemoryId: memory, MemoryRecordId: ids[0]})
	if err != nil || textOf(got.GetMemoryRecord().GetContent()) != "Alice prefers oolong" {
		t.Fatalf("Get after BatchUpdate: %v, %v", got, err)
	}

	// List: the namespace page by page (page_size 2: two pages), every record once, without scores.
	var listed []string
	pageToken := ""
	for pages := 1; ; pages++ {
		page, err := client.List(call, &memoryv1.ListRequest{
			MemoryId: memory, Namespace: proto.String(namespace), PageSize: 2, PageToken: pageToken,
		})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, summary := range page.GetMemoryRecordSummaries() {
			if summary.Score != nil || !slices.Equal(summary.GetNamespaces(), []string{namespace}) {
				t.Fatalf("List: %v", summary)
			}
			listed = append(listed, summary.GetMemoryRecordId())
		}
		pageToken = page.GetNextPageToken()
		if pageToken == "" {
			if pages != 2 {
				t.Fatalf("List: %d pages of 2 for 3 records", pages)
			}
			break
		}
		if pages > 3 {
			t.Fatal("List: no last page")
		}
	}
	slices.Sort(listed)
	if want := slices.Sorted(slices.Values(ids)); !slices.Equal(listed, want) {
		t.Fatalf("List: %v, want %v", listed, want)
	}

	// Retrieve: what matches the query, best first, with scores.
	found, err := client.Retrieve(call, &memoryv1.RetrieveRequest{
		MemoryId: memory, Namespace: proto.String(namespace),
		SearchCriteria: &memoryv1.SearchCriteria{SearchQuery: "black coffee"},
	})
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	summaries := found.GetMemoryRecordSummaries()
	if len(summaries) == 0 || summaries[0].GetMemoryRecordId() != ids[1] {
		t.Fatalf("Retrieve: %v, want %s first", summaries, ids[1])
	}
	for index, summary := range summaries {
		bestFirst := index == 0 || summary.GetScore() <= summaries[index-1].GetScore()
		if summary.Score == nil || summary.GetScore() <= 0 || !bestFirst {
			t.Fatalf("Retrieve: scores not positive and best first: %v", summaries)
		}
	}

	// Delete: the record is gone.
	deleted, err := client.Delete(call, &memoryv1.DeleteRequest{MemoryId: memory, MemoryRecordId: ids[0]})
	if err != nil || deleted.GetMemoryRecordId() != ids[0] {
		t.Fatalf("Delete: %v, %v", deleted, err)
	}
	_, err = client.Get(call, &memoryv1.GetRequest{MemoryId: memory, MemoryRecordId: ids[0]})
	decodeError(t, err, codes.NotFound)

	// BatchDelete: the records it names, in order; an unknown one fails alone.
	batchDeleted, err := client.BatchDelete(call, &memoryv1.BatchDeleteRequest{
		MemoryId: memory,
		Records: []*memoryv1.MemoryRecordDelete{
			{MemoryRecordId: ids[1]}, {MemoryRecordId: ids[2]}, {MemoryRecordId: unknownRecordID},
		},
	})
	if err != nil {
		t.Fatalf("BatchDelete: %v", err)
	}
	var gone []string
	for _, result := range batchDeleted.GetSuccessfulRecords() {
		gone = append(gone, result.GetMemoryRecordId())
	}
	if !slices.Equal(gone, ids[1:]) {
		t.Fatalf("BatchDelete: deleted %v, want %v", gone, ids[1:])
	}
	if failed := batchDeleted.GetFailedRecords(); len(failed) != 1 || failed[0].GetMemoryRecordId() != unknownRecordID {
		t.Fatalf("BatchDelete: failed %v", failed)
	}
	empty, err := client.List(call, &memoryv1.ListRequest{MemoryId: memory, Namespace: proto.String(namespace)})
	if err != nil || len(empty.GetMemoryRecordSummaries()) != 0 {
		t.Fatalf("List after the deletes: %v, %v", empty, err)
	}
}

// TestBatchCreateOf250Records proves that one BatchCreate of 250 records (three AWS calls of at most
// 100, sent concurrently by the facade) answers every record, in request order by request_identifier,
// and that they were all stored.
func TestBatchCreateOf250Records(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	client := memoryv1.NewMemoryRecordsServiceClient(dial(t, requireEnv(t, "MEMORY_RECORDS_ADDRESS")))
	namespace := newNamespace("batch-250")
	records := make([]*memoryv1.MemoryRecordCreate, 250)
	for index := range records {
		records[index] = newRecord(fmt.Sprintf("r%03d", index), namespace, fmt.Sprintf("record number %d", index))
	}
	call, cancel := callContext(ctx)
	defer cancel()
	created, err := client.BatchCreate(call, &memoryv1.BatchCreateRequest{
		MemoryId: memoryID(), Records: records, ClientToken: proto.String(fmt.Sprintf("go-250-%d", time.Now().UnixNano())),
	})
	if err != nil {
		t.Fatalf("BatchCreate: %v", err)
	}
	if failed := created.GetFailedRecords(); len(failed) != 0 {
		t.Fatalf("BatchCreate: %d failed, the first %v", len(failed), failed[0])
	}
	results := created.GetSuccessfulRecords()
	if len(results) != len(records) {
		t.Fatalf("BatchCreate: %d results for %d records", len(results), len(records))
	}
	ids := map[string]bool{}
	for index, result := range results {
		if want := records[index].GetRequestIdentifier(); result.GetRequestIdentifier() != want {
			t.Fatalf("result %d is for %q, want %q: not in request order", index, result.GetRequestIdentifier(), want)
		}
		ids[result.GetMemoryRecordId()] = true
	}
	if len(ids) != len(records) {
		t.Fatalf("%d distinct ids for %d records", len(ids), len(records))
	}

	// All stored: the namespace lists them, in pages of 100.
	listed := 0
	pageToken := ""
	for range 4 {
		page, err := client.List(call, &memoryv1.ListRequest{
			MemoryId: memoryID(), Namespace: proto.String(namespace), PageSize: 100, PageToken: pageToken,
		})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, summary := range page.GetMemoryRecordSummaries() {
			if !ids[summary.GetMemoryRecordId()] {
				t.Fatalf("List: %s was not created here", summary.GetMemoryRecordId())
			}
			listed++
		}
		if pageToken = page.GetNextPageToken(); pageToken == "" {
			break
		}
	}
	if listed != len(records) {
		t.Fatalf("List: %d records, want %d", listed, len(records))
	}
}

// TestErrorDetails proves that a Go caller decodes the AIP-193 details with status.FromError and
// st.Details(): a validation error is INVALID_ARGUMENT with a BadRequest naming each bad field by its
// proto path and an ErrorInfo of the facade, and a Get of an unknown id is NOT_FOUND with AWS's error
// in ErrorInfo, the record in ResourceInfo and AWS's request id in RequestInfo.
func TestErrorDetails(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	client := memoryv1.NewMemoryRecordsServiceClient(dial(t, requireEnv(t, "MEMORY_RECORDS_ADDRESS")))
	call, cancel := callContext(ctx)
	defer cancel()

	t.Run("validation", func(t *testing.T) {
		bad := newRecord("r2", "bad namespace!", "")
		_, err := client.BatchCreate(call, &memoryv1.BatchCreateRequest{
			MemoryId: memoryID(), Records: []*memoryv1.MemoryRecordCreate{newRecord("r1", newNamespace("errors"), "fine"), bad},
		})
		invalid := decodeError(t, err, codes.InvalidArgument)
		if info := invalid.errorInfo; info.GetReason() != "INVALID_ARGUMENT" || info.GetDomain() != facadeDomain {
			t.Errorf("ErrorInfo %v", info)
		}
		paths := invalid.fieldPaths()
		slices.Sort(paths)
		if want := []string{"records[1].content.text", "records[1].namespaces[0]"}; !slices.Equal(paths, want) {
			t.Errorf("BadRequest names %v, want %v", paths, want)
		}

		_, err = client.Get(call, &memoryv1.GetRequest{MemoryId: memoryID(), MemoryRecordId: "mem-1"})
		invalid = decodeError(t, err, codes.InvalidArgument)
		if paths := invalid.fieldPaths(); !slices.Equal(paths, []string{"memory_record_id"}) {
			t.Errorf("BadRequest names %v, want [memory_record_id]", paths)
		}
		description := invalid.badRequest.GetFieldViolations()[0].GetDescription()
		if !strings.Contains(description, "40 to 50 characters") {
			t.Errorf("the violation says %q", description)
		}
	})

	t.Run("not_found", func(t *testing.T) {
		_, err := client.Get(call, &memoryv1.GetRequest{MemoryId: memoryID(), MemoryRecordId: unknownRecordID})
		missing := decodeError(t, err, codes.NotFound)
		info := missing.errorInfo
		if info.GetReason() != "AWS_RESOURCE_NOT_FOUND" || info.GetDomain() != awsDomain {
			t.Errorf("ErrorInfo %v", info)
		}
		metadata := info.GetMetadata()
		if metadata["awsErrorCode"] != "ResourceNotFoundException" || metadata["operation"] != "GetMemoryRecord" ||
			metadata["httpStatus"] != "404" || metadata["awsRequestId"] == "" {
			t.Errorf("ErrorInfo metadata %v", metadata)
		}
		if missing.requestInfo.GetRequestId() != metadata["awsRequestId"] {
			t.Errorf("RequestInfo %v, ErrorInfo's awsRequestId %q", missing.requestInfo, metadata["awsRequestId"])
		}
		want := fmt.Sprintf("memories/%s/memoryRecords/%s", memoryID(), unknownRecordID)
		if missing.resourceInfo.GetResourceName() != want {
			t.Errorf("ResourceInfo %v, want %s", missing.resourceInfo, want)
		}
	})
}

// TestPermissionDenied proves that a caller over mutual TLS whose certificate (from the trusted CA)
// names a SPIFFE ID the policy does not admit is refused PERMISSION_DENIED, with an ErrorInfo of
// reason CALLER_NOT_ALLOWED naming the method, while the admitted certificate is served.
func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	address := requireEnv(t, "MEMORY_RECORDS_TLS_ADDRESS")
	request := &memoryv1.ListRequest{MemoryId: memoryID(), Namespace: proto.String(newNamespace("denied"))}
	call, cancel := callContext(ctx)
	defer cancel()

	denied := memoryv1.NewMemoryRecordsServiceClient(dial(t, address, mutualTLS(t, "DENIED_CERT")))
	_, err := denied.List(call, request)
	refusal := decodeError(t, err, codes.PermissionDenied)
	if info := refusal.errorInfo; info.GetReason() != "CALLER_NOT_ALLOWED" || info.GetDomain() != facadeDomain ||
		info.GetMetadata()["method"] != "List" || info.GetMetadata()["ruleSetVersion"] == "" {
		t.Errorf("ErrorInfo %v", info)
	}

	admitted := memoryv1.NewMemoryRecordsServiceClient(dial(t, address, mutualTLS(t, "CERT")))
	if _, err := admitted.List(call, request); err != nil {
		t.Fatalf("the admitted certificate: %v", err)
	}
}
