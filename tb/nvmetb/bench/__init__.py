
from nvmecore import CoreConfig

#: The core-level bench's Verilog build: the default build with its debug ports, and an SQ
#: fetch time-out of 80 µs instead of 50 ms, so that a scenario can run into it
#: (``fetch_timeout``). test_core_rtl, test_io_rtl, test_queues_rtl, the conformance
#: suite's core-level targets and the stateful tests share it (one build per simulator).
CORE_BENCH_CONFIG = CoreConfig(debug=True, dma_read_timeout=20_000)
