package com.agentcore.memory.tests;

import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;

/** The contract over plaintext, against the facade at MEMORY_RECORDS_ADDRESS (embedded emulator). */
class PlaintextContractTest extends ContractTests {
  @Override
  protected ManagedChannel connect(Channels.CallRecorder recorder) {
    return Channels.open(Env.require("MEMORY_RECORDS_ADDRESS"), InsecureChannelCredentials.create(), recorder);
  }

  @Override
  protected String transport() {
    return "plaintext";
  }
}
