package com.agentcore.memory.tests;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One scrape of a facade's /metrics (Prometheus text format), each sample by its series, e.g.
 * {@code grpc_server_handled_total{grpc_code="OK",grpc_method="Get",...}}.
 */
final class FacadeMetrics {
  private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  private static final Pattern LABEL = Pattern.compile("(\\w+)=\"((?:[^\"\\\\]|\\\\.)*)\"");

  private final Map<String, Double> samples;

  private FacadeMetrics(Map<String, Double> samples) {
    this.samples = samples;
  }

  /** Reads http://`address`/metrics. */
  static FacadeMetrics scrape(String address) throws IOException, InterruptedException {
    HttpResponse<String> response = HTTP.send(
        HttpRequest.newBuilder(URI.create("http://" + address + "/metrics")).timeout(Duration.ofSeconds(5)).build(),
        HttpResponse.BodyHandlers.ofString());
    if (response.statusCode() != 200) {
      throw new AssertionError("scraping " + address + ": HTTP " + response.statusCode());
    }
    Map<String, Double> samples = new HashMap<>();
    for (String line : response.body().split("\n")) {
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      int cut = line.lastIndexOf(' ');
      if (cut < 0) {
        throw new AssertionError("scraping " + address + ": not a sample: " + line);
      }
      samples.put(line.substring(0, cut), Double.parseDouble(line.substring(cut + 1)));
    }
    return new FacadeMetrics(samples);
  }

  /** The total of the samples of metric `name` whose labels include every one of `labels`. */
  double sum(String name, Map<String, String> labels) {
    double total = 0;
    for (Map.Entry<String, Double> sample : samples.entrySet()) {
      String series = sample.getKey();
      int brace = series.indexOf('{');
      if (!(brace < 0 ? series : series.substring(0, brace)).equals(name)) {
        continue;
      }
      Map<String, String> have = new HashMap<>();
      Matcher label = LABEL.matcher(brace < 0 ? "" : series.substring(brace));
      while (label.find()) {
        have.put(label.group(1), label.group(2));
      }
      if (have.entrySet().containsAll(labels.entrySet())) {
        total += sample.getValue();
      }
    }
    return total;
  }
}
