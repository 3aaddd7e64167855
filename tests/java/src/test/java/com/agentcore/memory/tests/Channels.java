package com.agentcore.memory.tests;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.TlsChannelCredentials;
import java.io.File;
import java.io.IOException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/** Channels to the facade as a Java service builds them: grpc-java's public API, netty-shaded beneath. */
final class Channels {
  /**
   * The receive limit a client should set (README "Field mapping"): the largest List or Retrieve page,
   * 7.1 MiB, is larger than gRPC's default of 4 MiB.
   */
  static final int RECEIVE_LIMIT_BYTES = 8 * 1024 * 1024;

  private Channels() {}

  static ManagedChannel plaintext(String address) {
    return open(address, InsecureChannelCredentials.create());
  }

  /** Mutual TLS: trusts `caFile`'s server certificates and presents `certFile` (PEM, PKCS#8 key). */
  static ChannelCredentials mutualTls(String caFile, String certFile, String keyFile) throws IOException {
    return TlsChannelCredentials.newBuilder()
        .trustManager(new File(caFile))
        .keyManager(new File(certFile), new File(keyFile))
        .build();
  }

  /** TLS without a client certificate. */
  static ChannelCredentials tlsOnly(String caFile) throws IOException {
    return TlsChannelCredentials.newBuilder().trustManager(new File(caFile)).build();
  }

  /**
   * A channel to `address`. The server certificates the tests make name localhost and 127.0.0.1
   * (tests/certs.py), so the dialled address itself is verified.
   */
  static ManagedChannel open(String address, ChannelCredentials credentials, ClientInterceptor... interceptors) {
    return Grpc.newChannelBuilder(address, credentials)
        .maxInboundMessageSize(RECEIVE_LIMIT_BYTES)
        .intercept(interceptors)
        .build();
  }

  static void close(ManagedChannel channel) throws InterruptedException {
    if (channel != null && !channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)) {
      throw new AssertionError("the channel did not terminate");
    }
  }

  /** Names every RPC started through it: what the tests called, for the check that they call every one. */
  static final class CallRecorder implements ClientInterceptor {
    final Set<String> methods = ConcurrentHashMap.newKeySet();

    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      methods.add(method.getBareMethodName());
      return next.newCall(method, options);
    }
  }
}
