package com.agentcore.memory.tests;

import com.agentcore.memory.v1.MemoryContent;
import com.agentcore.memory.v1.MemoryRecordCreate;
import com.agentcore.memory.v1.MetadataValue;
import com.agentcore.memory.v1.StringList;
import com.google.protobuf.Timestamp;
import java.util.concurrent.atomic.AtomicInteger;

/** Requests' building blocks: timestamps, records, and namespaces that belong to one test run. */
final class Records {
  static final String UNKNOWN_MEMORY_ID = "unknown_memory-0123456789";
  static final String UNKNOWN_RECORD_ID = "mem-00000000-0000-0000-0000-000000000000";
  static final Timestamp WHEN = timestamp(1_732_560_000, 123_456_000);
  private static final AtomicInteger NAMESPACES = new AtomicInteger();

  private Records() {}

  static Timestamp timestamp(long seconds, int nanos) {
    return Timestamp.newBuilder().setSeconds(seconds).setNanos(nanos).build();
  }

  /** A namespace no other run or test writes to, so that List and Retrieve see only this test's records. */
  static String namespace(String test) {
    return "java/" + test + "/run-" + ProcessHandle.current().pid() + "-" + System.currentTimeMillis()
        + "-" + NAMESPACES.incrementAndGet();
  }

  /** A record to create, with every kind of metadata value. */
  static MemoryRecordCreate record(String requestIdentifier, String namespace, String text) {
    return MemoryRecordCreate.newBuilder()
        .setRequestIdentifier(requestIdentifier)
        .addNamespaces(namespace)
        .setContent(MemoryContent.newBuilder().setText(text))
        .setTimestamp(WHEN)
        .setMemoryStrategyId("manual")
        .putMetadata("topic", MetadataValue.newBuilder().setStringValue("drinks").build())
        .putMetadata("tags", MetadataValue.newBuilder()
            .setStringListValue(StringList.newBuilder().addValues("tea").addValues("green")).build())
        .putMetadata("weight", MetadataValue.newBuilder().setNumberValue(0.75).build())
        .putMetadata("seen", MetadataValue.newBuilder().setDateTimeValue(timestamp(1_700_000_000, 5_000)).build())
        .build();
  }
}
