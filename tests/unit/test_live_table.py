"""The live table's last frame: it says why the engine's run stopped."""
from __future__ import annotations

import pytest
from rich.console import Console

from harness.run.runner import LiveState, _phase_on_exit


def _last_frame(st: LiveState) -> str:
    out = Console(width=160, record=True)
    out.print(st.render(30))
    return out.export_text()


@pytest.mark.parametrize("error, phase", [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_an_interrupted_or_failed_run_says_so_in_its_last_frame(error: type[BaseException], phase: str) -> None:
    st = LiveState("kafka", phase="load", expected=6000)
    with pytest.raises(error), _phase_on_exit(st):
        raise error
    assert st.phase == phase and phase in _last_frame(st)


def test_a_finished_run_ends_done() -> None:
    st = LiveState("kafka", phase="stopping")
    with _phase_on_exit(st):
        pass
    assert "done" in _last_frame(st)
