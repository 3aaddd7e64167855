package memoryrecords

// Keepalive as Go services commonly configure it, in real time against the facade and, as a control,
// against a grpc-go server with its default (strict) enforcement policy.

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	memoryv1 "github.com/agentcore-memory-grpc/gen/go/agentcore/memory/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
)

const (
	// Long enough for three keepalive pings of an idle connection (at about 10 s, 20 s and 30 s):
	// grpc-go's server sends GOAWAY on the third ping it finds too soon.
	keepaliveRun = 35 * time.Second
	// HTTP/2 (RFC 9113): frame types, the ACK flag, and ENHANCE_YOUR_CALM.
	framePing        = 0x6
	frameGoAway      = 0x7
	flagAck          = 0x1
	enhanceYourCalm  = 0xb
	clientPrefaceLen = 24 // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
)

// commonKeepalive is what Go services commonly set: a ping after 10 s without reads, 5 s for its ack,
// with or without calls in flight.
var commonKeepalive = keepalive.ClientParameters{
	Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true,
}

// goAway is a GOAWAY frame a server sent.
type goAway struct {
	code  uint32
	debug string
	at    time.Time
}

// frameCounts is what a tapped connection saw of the HTTP/2 frames that matter to keepalive.
type frameCounts struct {
	keepalivePings int // pings the client sent with grpc-go's keepalive payload (8 zero bytes)
	otherPings     int // the client's other pings (grpc-go's BDP estimator)
	pingAcks       int // the server's acks of the client's keepalive pings
	goAways        []goAway
}

// http2Frames splits one direction of a connection into HTTP/2 frames (RFC 9113 section 4.1) and
// calls onFrame for each, however the bytes were cut into reads or writes.
type http2Frames struct {
	skip    int // bytes of the client preface still to skip
	pending []byte
	onFrame func(kind, flags byte, payload []byte)
}

func (f *http2Frames) feed(data []byte) {
	f.pending = append(f.pending, data...)
	if f.skip > 0 {
		skipped := min(f.skip, len(f.pending))
		f.pending, f.skip = f.pending[skipped:], f.skip-skipped
	}
	for len(f.pending) >= 9 {
		length := int(f.pending[0])<<16 | int(f.pending[1])<<8 | int(f.pending[2])
		if len(f.pending) < 9+length {
			return
		}
		f.onFrame(f.pending[3], f.pending[4], f.pending[9:9+length])
		f.pending = append([]byte(nil), f.pending[9+length:]...)
	}
}

// tappedConn is a plaintext connection whose HTTP/2 frames are counted both ways: the pings the client
// sends and the acks and GOAWAYs the server answers. (grpc-go reads in one goroutine and writes in
// another; the counts are shared under mu.)
type tappedConn struct {
	net.Conn
	mu               sync.Mutex
	counts           frameCounts
	written, readIn  http2Frames
	keepalivePayload [8]byte
}

func newTappedConn(conn net.Conn) *tappedConn {
	tapped := &tappedConn{Conn: conn}
	tapped.written = http2Frames{skip: clientPrefaceLen, onFrame: tapped.clientFrame}
	tapped.readIn = http2Frames{onFrame: tapped.serverFrame}
	return tapped
}

func (c *tappedConn) Write(data []byte) (int, error) {
	written, err := c.Conn.Write(data)
	c.written.feed(data[:written])
	return written, err
}

func (c *tappedConn) Read(data []byte) (int, error) {
	read, err := c.Conn.Read(data)
	c.readIn.feed(data[:read])
	return read, err
}

func (c *tappedConn) clientFrame(kind, flags byte, payload []byte) {
	if kind != framePing || flags&flagAck != 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if bytes.Equal(payload, c.keepalivePayload[:]) {
		c.counts.keepalivePings++
	} else {
		c.counts.otherPings++
	}
}

func (c *tappedConn) serverFrame(kind, flags byte, payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case kind == framePing && flags&flagAck != 0 && bytes.Equal(payload, c.keepalivePayload[:]):
		c.counts.pingAcks++
	case kind == frameGoAway && len(payload) >= 8:
		c.counts.goAways = append(c.counts.goAways, goAway{
			code: binary.BigEndian.Uint32(payload[4:8]), debug: string(payload[8:]), at: time.Now(),
		})
	}
}

func (c *tappedConn) snapshot() frameCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := c.counts
	counts.goAways = append([]goAway(nil), c.counts.goAways...)
	return counts
}

// tappingDialer dials TCP and taps every connection it makes: how many there were shows reconnects.
type tappingDialer struct {
	mu    sync.Mutex
	conns []*tappedConn
}

func (d *tappingDialer) dial(ctx context.Context, address string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	tapped := newTappedConn(conn)
	d.mu.Lock()
	d.conns = append(d.conns, tapped)
	d.mu.Unlock()
	return tapped, nil
}

func (d *tappingDialer) connections() []*tappedConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*tappedConn(nil), d.conns...)
}

// stateChange is a connectivity state a channel entered, and when.
type stateChange struct {
	state connectivity.State
	at    time.Time
}

// watchStates records every state `conn` enters from now on, until ctx ends.
func watchStates(ctx context.Context, conn *grpc.ClientConn) func() []stateChange {
	var mu sync.Mutex
	state := conn.GetState()
	changes := []stateChange{{state, time.Now()}}
	go func() {
		for conn.WaitForStateChange(ctx, state) {
			state = conn.GetState()
			mu.Lock()
			changes = append(changes, stateChange{state, time.Now()})
			mu.Unlock()
		}
	}()
	return func() []stateChange {
		mu.Lock()
		defer mu.Unlock()
		return append([]stateChange(nil), changes...)
	}
}

// keepaliveClient is a connection with commonKeepalive through a tapping dialer, made READY by one
// List (whose reply also starts grpc-go's BDP ping, as any first reply does).
func keepaliveClient(t *testing.T, ctx context.Context, address string) (
	memoryv1.MemoryRecordsServiceClient, *grpc.ClientConn, *tappingDialer,
) {
	t.Helper()
	dialer := &tappingDialer{}
	conn := dial(t, address, grpc.WithKeepaliveParams(commonKeepalive), grpc.WithContextDialer(dialer.dial))
	client := memoryv1.NewMemoryRecordsServiceClient(conn)
	if err := listOnce(ctx, client); err != nil {
		t.Fatalf("List: %v", err)
	}
	if state := conn.GetState(); state != connectivity.Ready {
		t.Fatalf("after a call the channel is %s", state)
	}
	return client, conn, dialer
}

// strictServer is a plain grpc-go server with its default keepalive enforcement (MinTime 5 minutes,
// no pings without calls) serving an empty List, on a loopback port; its address.
func strictServer(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	memoryv1.RegisterMemoryRecordsServiceServer(server, emptyList{})
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}

// listOnce lists a namespace of its own: one small call.
func listOnce(ctx context.Context, client memoryv1.MemoryRecordsServiceClient) error {
	call, cancel := callContext(ctx)
	defer cancel()
	request := &memoryv1.ListRequest{MemoryId: memoryID(), Namespace: proto.String(newNamespace("keepalive"))}
	_, err := client.List(call, request)
	return err
}

type emptyList struct {
	memoryv1.UnimplementedMemoryRecordsServiceServer
}

func (emptyList) List(context.Context, *memoryv1.ListRequest) (*memoryv1.ListResponse, error) {
	return &memoryv1.ListResponse{}, nil
}

// TestKeepalive proves that a Go client with the keepalive Go services commonly set (Time 10 s,
// Timeout 5 s, PermitWithoutStream) keeps an idle connection to the facade for 35 s: its keepalive
// pings are sent and acked, the facade sends no GOAWAY (too_many_pings), the channel stays READY on
// its one connection, and a call at the end is served on it. The control shows that the test would
// see the failure: the same client against a grpc-go server with the default enforcement policy is
// sent GOAWAY ENHANCE_YOUR_CALM "too_many_pings" within the same time, and its channel leaves READY.
// Both halves run at once, in real time.
func TestKeepalive(t *testing.T) {
	t.Parallel()
	t.Run("facade_accepts_the_pings", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, keepaliveRun+20*time.Second)
		client, conn, dialer := keepaliveClient(t, ctx, requireEnv(t, "MEMORY_RECORDS_ADDRESS"))
		states := watchStates(ctx, conn)
		select {
		case <-time.After(keepaliveRun):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}

		connections := dialer.connections()
		if len(connections) != 1 {
			t.Fatalf("%d connections in %s: the first was lost", len(connections), keepaliveRun)
		}
		counts := connections[0].snapshot()
		t.Logf("in %s: %d keepalive pings, %d acked, %d other pings, GOAWAYs %v",
			keepaliveRun, counts.keepalivePings, counts.pingAcks, counts.otherPings, counts.goAways)
		if counts.keepalivePings < 3 {
			t.Errorf("%d keepalive pings in %s, want 3: the test did not exercise keepalive",
				counts.keepalivePings, keepaliveRun)
		}
		if counts.pingAcks < counts.keepalivePings-1 { // the last may be in flight
			t.Errorf("%d of %d keepalive pings acked", counts.pingAcks, counts.keepalivePings)
		}
		if len(counts.goAways) != 0 {
			t.Errorf("the facade sent GOAWAY: %+v", counts.goAways)
		}
		if changes := states(); len(changes) != 1 || changes[0].state != connectivity.Ready {
			t.Errorf("the channel left READY: %v", changes)
		}

		if err := listOnce(ctx, client); err != nil {
			t.Fatalf("List after %s: %v", keepaliveRun, err)
		}
		if connections := dialer.connections(); len(connections) != 1 {
			t.Errorf("the last call needed connection %d", len(connections))
		}
	})

	t.Run("strict_server_sends_too_many_pings", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, keepaliveRun+20*time.Second)
		_, conn, dialer := keepaliveClient(t, ctx, strictServer(t))
		started := time.Now()
		states := watchStates(ctx, conn)
		var tooManyPings *goAway
		for tooManyPings == nil && time.Since(started) < keepaliveRun {
			time.Sleep(100 * time.Millisecond)
			for _, frame := range dialer.connections()[0].snapshot().goAways {
				if frame.code == enhanceYourCalm && frame.debug == "too_many_pings" {
					tooManyPings = &frame
				}
			}
		}
		if tooManyPings == nil {
			t.Fatalf("no GOAWAY too_many_pings in %s: the control does not fail as it should", time.Since(started))
		}
		t.Logf("GOAWAY ENHANCE_YOUR_CALM too_many_pings after %s", tooManyPings.at.Sub(started))
		// The channel is told too: it leaves READY (grpc-go goes IDLE once the connection is gone).
		for changes := states(); len(changes) < 2 && ctx.Err() == nil; changes = states() {
			time.Sleep(50 * time.Millisecond)
		}
		if changes := states(); len(changes) < 2 || changes[1].state == connectivity.Ready {
			t.Errorf("the channel did not leave READY: %v", changes)
		}
	})
}
