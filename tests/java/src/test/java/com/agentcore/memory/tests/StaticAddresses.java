package com.agentcore.memory.tests;

import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.NameResolverRegistry;
import io.grpc.StatusOr;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.util.Arrays;
import java.util.List;

/**
 * Targets `static:///host:port,host:port`: a fixed list of addresses, one per backend, as a Kubernetes
 * headless Service's DNS would give them, so that the service config's round_robin has two to pick from.
 * grpc-java has no such resolver of its own; this one is registered in the default registry.
 */
final class StaticAddresses extends NameResolverProvider {
  static final String SCHEME = "static";

  static {
    NameResolverRegistry.getDefaultRegistry().register(new StaticAddresses());
  }

  /** The target of `addresses` ("host:port,host:port"), the resolver registered. */
  static String target(String addresses) {
    return SCHEME + ":///" + addresses;
  }

  static InetSocketAddress parse(String address) {
    int colon = address.lastIndexOf(':');
    return new InetSocketAddress(address.substring(0, colon), Integer.parseInt(address.substring(colon + 1)));
  }

  @Override
  public NameResolver newNameResolver(URI target, NameResolver.Args args) {
    if (!SCHEME.equals(target.getScheme())) {
      return null;
    }
    List<EquivalentAddressGroup> groups = Arrays.stream(target.getPath().substring(1).split(","))
        .map(address -> new EquivalentAddressGroup((SocketAddress) parse(address)))
        .toList();
    return new NameResolver() {
      @Override
      public String getServiceAuthority() {
        return "memory-records";
      }

      @Override
      public void start(Listener2 listener) {
        listener.onResult2(ResolutionResult.newBuilder().setAddressesOrError(StatusOr.fromValue(groups)).build());
      }

      @Override
      public void shutdown() {}
    };
  }

  @Override
  public String getDefaultScheme() {
    return SCHEME;
  }

  @Override
  protected boolean isAvailable() {
    return true;
  }

  /** Below DNS's 5: targets without a scheme still resolve through DNS. */
  @Override
  protected int priority() {
    return 4;
  }
}
