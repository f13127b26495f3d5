"""cocotb tests of nvmetb.cocotb_edges on a small design (``test_cocotb_edges.py``): the
edge loop's steps see the same values, in the same order and at the same edges, as
coroutines awaiting every rising edge would; writes act from the next edge; a step added
mid-simulation starts at the next edge; EdgeLoop.wait returns after exactly n edges,
ahead of the steps of that edge."""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from nvmetb.cocotb_edges import EdgeLoop, Output, reader


async def _start(dut):
    Clock(dut.clk, 4, unit="ns", impl="gpi").start()
    dut.d.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)


async def _reference(dut, cycles, seen):
    """What a coroutine awaiting every edge samples."""
    for _ in range(cycles):
        await RisingEdge(dut.clk)
        seen.append(int(dut.count.value))


async def _stop(dut, edges):
    """Stop the loop once it has run its steps at the current edge (this task, waiting
    on the clock ahead of the loop, resumes first at the next edge)."""
    await RisingEdge(dut.clk)
    edges.stop()


@cocotb.test()
async def steps_sample_like_coroutines(dut):
    await _start(dut)
    edges = EdgeLoop(dut.clk)
    count = reader(dut.count)
    order, ref = [], []
    edges.add(lambda: order.append(("a", count())))
    edges.add(lambda: order.append(("b", count())))
    edges.start()
    await _reference(dut, 8, ref)
    await _stop(dut, edges)
    assert [v for name, v in order if name == "a"] == ref, (order, ref)
    assert [name for name, _ in order] == ["a", "b"] * 8, order
    assert [v for name, v in order if name == "b"] == ref


@cocotb.test()
async def outputs_act_from_the_next_edge(dut):
    await _start(dut)
    edges = EdgeLoop(dut.clk)
    count, q = reader(dut.count), reader(dut.q)
    d = Output(dut.d)
    samples = []

    def step():
        samples.append((count(), q()))
        d.set(count() & 0xFF)
    edges.add(step)
    edges.start()
    await _reference(dut, 10, [])
    await _stop(dut, edges)
    # d written at edge k is clocked into q at edge k + 1 and seen at edge k + 2.
    for k in range(len(samples) - 2):
        assert samples[k + 2][1] == samples[k][0] & 0xFF, samples
    assert d.value == samples[-1][0] & 0xFF


@cocotb.test()
async def added_step_starts_at_the_next_edge(dut):
    await _start(dut)
    edges = EdgeLoop(dut.clk)
    count = reader(dut.count)
    edges.add(lambda: None)
    edges.start()
    await RisingEdge(dut.clk)
    late, ref = [], []
    edges.add(lambda: late.append(count()))          # at an edge, loop not run yet
    cocotb.start_soon(_reference(dut, 4, ref))
    await _reference(dut, 4, [])
    await _stop(dut, edges)
    assert late == ref and len(late) == 4, (late, ref)


@cocotb.test()
async def wait_counts_edges_ahead_of_the_steps(dut):
    await _start(dut)
    edges = EdgeLoop(dut.clk)
    count = reader(dut.count)
    log = []
    edges.add(lambda: log.append(("step", count())))
    edges.start()
    await RisingEdge(dut.clk)
    for cycles in (1, 2, 5, 3):
        start = count()
        await edges.wait(cycles)
        log.append(("woken", count()))
        assert count() == start + cycles, (start, cycles, count())
    await _stop(dut, edges)
    # At the edge that ends a wait, the waiting task runs before the steps.
    for i, (what, value) in enumerate(log):
        if what == "woken":
            assert log[i + 1] == ("step", value), log


@cocotb.test()
async def reader_refuses_unknown_bits(dut):
    if cocotb.SIM_NAME.lower().startswith("icarus"):
        try:
            reader(dut.undriven)()
        except ValueError:
            pass
        else:
            raise AssertionError("reader() returned an int for X bits")
    assert reader(dut.count)() == int(dut.count.value)
