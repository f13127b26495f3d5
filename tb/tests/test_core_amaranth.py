"""Quick tier: every core-level scenario in the Amaranth simulator, against the model,
on a small build and on the default one."""

import pytest

from nvmecore import CoreConfig
from nvmetb.bench.amaranth_backend import run_scenario
from nvmetb.bench.harness import PATTERNS
from nvmetb.bench.scenarios import SCENARIOS

pytestmark = pytest.mark.quick

CONFIGS = {
    "small": CoreConfig(io_queues=2, msix_vectors=3, max_queue_entries=64, debug=True),
    "default": CoreConfig(debug=True),
    "wide": CoreConfig(io_queues=70, msix_vectors=71, data_width=512, debug=True),
}


@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario(scenario, config, pattern):
    run_scenario(SCENARIOS[scenario], CONFIGS[config], PATTERNS[pattern],
                 seed=sum(scenario.encode()))
