"""The judgement: the oracle, the exactly-once checker and the latency and recovery metrics."""
