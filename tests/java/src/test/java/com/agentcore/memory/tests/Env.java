package com.agentcore.memory.tests;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The facades under test, as tests/integration/java_client.py names them in MEMORY_RECORDS_*
 * variables. A variable that is missing fails the test that needs it: a skipped test would prove
 * nothing, and the wrapper counts every test as run.
 */
final class Env {
  /** The memory the embedded emulator knows (emulator.DEFAULT_MEMORY_ID). */
  static final String MEMORY_ID = "demo_memory-0123456789";

  private Env() {}

  static String require(String name) {
    String value = System.getenv(name);
    if (value == null || value.isBlank()) {
      fail(name + " is not set: run these tests through tests/integration/java_client.py,"
          + " which starts the facades and names them");
    }
    return value;
  }
}
