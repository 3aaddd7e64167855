package com.agentcore.memory.tests;

import static com.agentcore.memory.tests.Env.MEMORY_ID;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.agentcore.memory.v1.ListRequest;
import com.agentcore.memory.v1.MemoryRecordsServiceGrpc;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.MultiThreadIoEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.nio.NioIoHandler;
import io.grpc.netty.shaded.io.netty.channel.socket.nio.NioSocketChannel;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import org.junit.jupiter.api.Test;

/**
 * Keepalive as Java services commonly set it (grpc-java's floor of 10 s between pings, a 5 s ack
 * timeout, pings without calls too), for about 35 s of real time: the facade never answers it with
 * GOAWAY `too_many_pings` (ENHANCE_YOUR_CALM), and the connection stays up. The negative control, at the
 * same time: the very same client settings against a grpc-java server with its defaults (it permits a
 * ping every 5 minutes, and none without calls) are sent that GOAWAY on the third ping, at about 30 s.
 *
 * <p>The signal is grpc-java's own: its HTTP/2 frame log (netty's Http2FrameLogger, at FINE on the
 * NettyClientHandler logger) and the WARNING it logs on ENHANCE_YOUR_CALM (after which it doubles its
 * keepalive time). Each of the two channels runs on an event loop of its own, whose thread name tells
 * whose connection a log line is about; every other channel of the suite is ignored.
 */
class KeepaliveTest {
  /** The logger of grpc-java's Netty client handler (its package as netty-shaded relocates it). */
  private static final Logger CLIENT_HANDLER_LOG =
      Logger.getLogger("io.grpc.netty.shaded.io.grpc.netty.NettyClientHandler");
  private static final Duration OBSERVED = Duration.ofSeconds(35);
  private static final Duration LIMIT = Duration.ofSeconds(50);
  private static final String FACADE = "keepalive-facade";
  private static final String STRICT = "keepalive-strict";

  /** The log lines grpc-java wrote on one connection's event loop thread. */
  private static final class ConnectionLog extends Handler {
    private final String thread;
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final SimpleFormatter formatter = new SimpleFormatter();

    ConnectionLog(String thread) {
      this.thread = thread;
      setLevel(Level.ALL);
    }

    @Override
    public void publish(LogRecord record) {
      if (Thread.currentThread().getName().equals(thread)) {
        lines.add(formatter.formatMessage(record));
      }
    }

    long count(String... parts) {
      return lines.stream().filter(line -> List.of(parts).stream().allMatch(line::contains)).count();
    }

    long pingsSent() {
      return count("OUTBOUND PING: ack=false");
    }

    long pingsAnswered() {
      return count("INBOUND PING: ack=true");
    }

    long goAways() {
      return count("INBOUND GO_AWAY");
    }

    /** GOAWAY ENHANCE_YOUR_CALM (HTTP/2 error 11) `too_many_pings`, as grpc-java reports it. */
    long tooManyPings() {
      return count("ENHANCE_YOUR_CALM", "too_many_pings");
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}

    @Override
    public String toString() {
      return thread + ": " + lines;
    }
  }

  private static EventLoopGroup eventLoop(String name) {
    ThreadFactory thread = runnable -> new Thread(runnable, name);
    return new MultiThreadIoEventLoopGroup(1, thread, NioIoHandler.newFactory());
  }

  /** The client settings under test, on the event loop `group`. */
  private static ManagedChannel keepaliveChannel(String address, EventLoopGroup group) {
    return NettyChannelBuilder.forTarget(address)
        .usePlaintext()
        .eventLoopGroup(group)
        .channelType(NioSocketChannel.class)
        .keepAliveTime(10, TimeUnit.SECONDS)
        .keepAliveTimeout(5, TimeUnit.SECONDS)
        .keepAliveWithoutCalls(true)
        .build();
  }

  private static void awaitReady(ManagedChannel channel) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (channel.getState(true) != ConnectivityState.READY) {
      assertTrue(System.nanoTime() < deadline, "not connected: " + channel.getState(false));
      Thread.sleep(20);
    }
  }

  @Test
  void javaKeepaliveWithoutCallsIsNeverToldTooManyPingsByTheFacadeButIsByAStrictServer() throws Exception {
    String facadeAddress = Env.require("MEMORY_RECORDS_ADDRESS");
    // grpc-java's server defaults: permitKeepAliveTime 5 min, permitKeepAliveWithoutCalls false.
    Server strict = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0)).build().start();
    EventLoopGroup facadeLoop = eventLoop(FACADE);
    EventLoopGroup strictLoop = eventLoop(STRICT);
    ConnectionLog facadeLog = new ConnectionLog(FACADE);
    ConnectionLog strictLog = new ConnectionLog(STRICT);
    // FINE turns grpc-java's frame log on for every channel of the JVM while this test runs; the console
    // handler (INFO) prints none of it, and ConnectionLog keeps only its own thread's lines.
    Level level = CLIENT_HANDLER_LOG.getLevel();
    CLIENT_HANDLER_LOG.setLevel(Level.FINE);
    CLIENT_HANDLER_LOG.addHandler(facadeLog);
    CLIENT_HANDLER_LOG.addHandler(strictLog);
    ManagedChannel toFacade = keepaliveChannel(facadeAddress, facadeLoop);
    ManagedChannel toStrict = keepaliveChannel("127.0.0.1:" + strict.getPort(), strictLoop);
    try {
      awaitReady(toFacade);
      awaitReady(toStrict);
      List<ConnectivityState> facadeStates = new CopyOnWriteArrayList<>();
      toFacade.notifyWhenStateChanged(ConnectivityState.READY, () -> facadeStates.add(toFacade.getState(false)));

      // Both connections idle, pinging, at once: until OBSERVED has passed and the strict server has
      // answered too_many_pings (LIMIT bounds the wait).
      long started = System.nanoTime();
      Duration elapsed = Duration.ZERO;
      Duration strictToldAfter = null;
      while (elapsed.compareTo(LIMIT) < 0 && (elapsed.compareTo(OBSERVED) < 0 || strictToldAfter == null)) {
        Thread.sleep(200);
        elapsed = Duration.ofNanos(System.nanoTime() - started);
        if (strictToldAfter == null && strictLog.tooManyPings() > 0) {
          strictToldAfter = elapsed;
        }
      }
      System.out.printf("keepalive: the facade answered %d of %d pings in %d s, with %d GOAWAY; the strict server"
              + " sent too_many_pings after %s and %d pings%n", facadeLog.pingsAnswered(), facadeLog.pingsSent(),
          elapsed.toSeconds(), facadeLog.goAways(), strictToldAfter, strictLog.pingsSent());

      // The negative control: the same client settings do draw too_many_pings from a strict server, so
      // the facade's silence below is the facade's doing, not a client that never pinged.
      assertTrue(strictLog.tooManyPings() > 0, "no too_many_pings from the strict server: " + strictLog);
      assertTrue(strictLog.count("INBOUND GO_AWAY", "errorCode=11") > 0, strictLog.toString());
      assertTrue(strictLog.pingsSent() >= 3, strictLog.toString());

      // The facade: three pings or more (about every 10 s), each answered, no GOAWAY of any kind, and the
      // connection READY throughout, still serving.
      assertTrue(facadeLog.pingsSent() >= 3, "pings sent to the facade: " + facadeLog);
      assertTrue(facadeLog.pingsAnswered() >= 3, "pings the facade answered: " + facadeLog);
      assertEquals(0, facadeLog.goAways(), facadeLog.toString());
      assertEquals(0, facadeLog.tooManyPings(), facadeLog.toString());
      assertEquals(List.of(), facadeStates, "the facade connection left READY");
      assertEquals(ConnectivityState.READY, toFacade.getState(false));
      MemoryRecordsServiceGrpc.newBlockingStub(toFacade).withDeadlineAfter(10, TimeUnit.SECONDS)
          .list(ListRequest.newBuilder().setMemoryId(MEMORY_ID).setNamespace(Records.namespace("keepalive")).build());
      assertEquals(List.of(), facadeStates, "the facade connection left READY");
    } finally {
      CLIENT_HANDLER_LOG.removeHandler(facadeLog);
      CLIENT_HANDLER_LOG.removeHandler(strictLog);
      CLIENT_HANDLER_LOG.setLevel(level);
      Channels.close(toFacade);
      Channels.close(toStrict);
      strict.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      facadeLoop.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(5, TimeUnit.SECONDS);
      strictLoop.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(5, TimeUnit.SECONDS);
    }
  }
}
