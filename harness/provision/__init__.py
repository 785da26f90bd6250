"""What a run needs installed: pinned versions, jars, engine runtimes."""
