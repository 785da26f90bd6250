"""Letting go of a client library's objects without ever blocking the harness."""
from __future__ import annotations

import threading

from harness.support.console import console

RELEASE_WAIT_S = 5.0


def release(owner: object, attribute: str, what: str, wait_s: float = RELEASE_WAIT_S) -> bool:
    """Set `owner.attribute` to None in a daemon thread, and wait `wait_s` for it.

    A confluent-kafka client is destroyed when its last reference goes, and the destroy
    joins librdkafka's threads, which can wait forever on a broker that died; it releases
    the GIL meanwhile, so a thread can do it while the harness goes on. The attribute must
    hold the last reference (a caller's local variable would move the destroy back to the
    caller). True if it was gone in time."""
    t = threading.Thread(target=setattr, args=(owner, attribute, None), name=f"release {what}", daemon=True)
    t.start()
    t.join(wait_s)
    if t.is_alive():
        console.print(f"[yellow]{what} did not close within {wait_s:.0f} s; left to close when the harness exits[/]")
        return False
    return True
