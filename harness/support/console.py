"""The one rich console: wide enough for the result table when output goes to a log."""
from __future__ import annotations

from rich.console import Console

console = Console()
if not console.is_terminal:
    console = Console(width=160)
