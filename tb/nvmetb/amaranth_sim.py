"""Running one block in the Amaranth simulator from a pytest test."""

from amaranth.sim import Simulator

__all__ = ["CLOCK_PERIOD", "simulate"]

#: The sync domain's clock: 250 MHz, as the FPGA top runs.
CLOCK_PERIOD = 4e-9


def simulate(dut, testbench, *processes):
    """Simulate ``dut`` with a 250 MHz clock until the testbench ``testbench`` (an async
    function of ``ctx``) returns, with ``processes`` (async functions of ``ctx``, such as
    monitors that never return) running beside it."""
    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD)
    sim.add_testbench(testbench)
    for process in processes:
        sim.add_process(process)
    sim.run()
