"""How fast a bench runs: a CPU-time meter, and an opt-in profile of one run to see where
the Python time of a simulation goes.

:class:`CpuMeter` measures the CPU seconds of the simulation process (simulator and
Python together, so that other load on the machine does not count); the backends log
"N cycles, M cycles per CPU second" for every scenario.

With ``NVMETB_PROFILE=DIR`` in the environment, every ``run_scenario`` /
``run_host_scenario`` (cocotb and Amaranth backends) runs under :mod:`cProfile` and writes
``DIR/<name>.prof``; a relative ``DIR`` is taken from the process's working directory,
which for a cocotb test is its run directory (``sim/build/runs/<test id>/``)::

    NVMETB_PROFILE=. .venv/bin/pytest -q "tb/tests/test_queues_rtl.py::test_queues[icarus-bring_up]"
    .venv/bin/python -m pstats sim/build/runs/<test id>/bring_up-fast.prof

The profile covers everything Python does while the scenario runs: the scenario, the
bench's coroutines or processes, cocotb's scheduler or the Amaranth simulator.
"""

import cProfile
import logging
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PROFILE_ENV", "CpuMeter", "profiled"]

PROFILE_ENV = "NVMETB_PROFILE"


@contextmanager
def profiled(name):
    """Profile the body if :data:`PROFILE_ENV` is set; ``name`` names the output file."""
    where = os.environ.get(PROFILE_ENV, "").strip()
    if not where:
        yield
        return
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        path = Path(where) / (re.sub(r"[^A-Za-z0-9_.=+-]+", "_", name) + ".prof")
        path.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(path)
        logging.getLogger("tb").info("profile written to %s", path.resolve())


class CpuMeter:
    """CPU time of this process from construction on; :meth:`rate` turns a cycle count
    into "N cycles, M cycles per CPU second"."""

    def __init__(self):
        self.start = time.process_time()

    def rate(self, cycles):
        seconds = time.process_time() - self.start
        return f"{cycles} cycles, {cycles / max(seconds, 1e-9):.0f} cycles per CPU second"
