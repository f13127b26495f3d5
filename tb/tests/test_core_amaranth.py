"""Quick tier: every core-level scenario in the Amaranth simulator, against the model:
a small build with and without backpressure, and the default build at full speed. (The
Verilog tiers run the default build; larger builds are too slow for Python simulation.)"""

import pytest

from nvmecore import CoreConfig
from nvmetb.bench.amaranth_backend import run_scenario
from nvmetb.bench.harness import PATTERNS
from nvmetb.scenarios.registers import SCENARIOS

pytestmark = pytest.mark.quick

CONFIGS = {
    "small": CoreConfig(io_queues=2, msix_vectors=3, max_queue_entries=64, data_width=64,
                        debug=True),
    "default": CoreConfig(debug=True),
}
RUNS = [("small", "fast"), ("small", "busy"), ("default", "fast")]
#: In the full run only (the quick tier's 2-minute budget): the small build (the quick
#: tier runs the default build at full speed).
SLOW = {("small", "fast"), ("small", "busy")}


@pytest.mark.parametrize("config, pattern", [
    pytest.param(*run, id="-".join(run), marks=pytest.mark.slow if run in SLOW else ())
    for run in RUNS])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario(scenario, config, pattern):
    run_scenario(SCENARIOS[scenario], CONFIGS[config], PATTERNS[pattern],
                 seed=sum(scenario.encode()))
