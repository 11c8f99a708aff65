"""Long-running processes hide their start-up heap from the garbage collector."""

import subprocess
import sys

from rapport.cli import GC_YOUNG_THRESHOLD


def test_settling_freezes_the_start_up_heap_and_raises_the_young_threshold():
    # In a child process: frozen objects are never collected, which a test process must avoid.
    code = (
        "import gc; from rapport.cli import _settle_heap; _settle_heap(); "
        "print(gc.get_freeze_count(), gc.get_threshold()[0], len(gc.get_objects(2)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    frozen, young, old = (int(x) for x in out)
    assert frozen > 10_000  # the modules and everything they built
    assert young == GC_YOUNG_THRESHOLD
    assert old < 1_000  # a full collection now walks almost nothing
