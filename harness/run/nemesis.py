"""The nemesis: injects the workload's fault schedule into a running engine, or into the
Kafka cluster under it."""
from __future__ import annotations

import threading
import time

from harness.backends.base import KafkaCluster
from harness.engines.base import Engine
from harness.judge.judge import FaultEvent
from harness.workload.schema import Fault


class Nemesis:
    def __init__(self, engine: Engine, kafka: KafkaCluster, faults: list[Fault], load_start_mono_ns: int) -> None:
        self.engine = engine
        self.kafka = kafka
        self.faults = sorted(faults, key=lambda f: f.at_s)
        self.start_mono_ns = load_start_mono_ns
        self.events: list[FaultEvent] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nemesis", daemon=True)
        self._thread.start()

    def _wait_until(self, offset_s: float) -> bool:
        delay = (self.start_mono_ns + offset_s * 1e9 - time.monotonic_ns()) / 1e9
        return not self._stop.wait(max(0.0, delay))

    def _run(self) -> None:
        for fault in self.faults:
            if not self._wait_until(fault.at_s):
                return
            event = FaultEvent(fault, injected_ns=time.time_ns())
            self.events.append(event)
            try:
                broker = fault.target == "broker"
                event.target = self.kafka.kill_broker(fault.instance) if broker else self.engine.inject(fault)
                if not self._wait_until(fault.at_s + fault.restart_after_s):
                    return
                if broker:
                    self.kafka.restart_broker(fault.instance)
                else:
                    self.engine.recover(fault)
                event.recovered_ns = time.time_ns()
            except Exception as e:  # recorded in the result; the run goes on and is judged
                event.error = f"{type(e).__name__}: {e}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
