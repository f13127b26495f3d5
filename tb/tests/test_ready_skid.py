"""ReadySkid (nvme/ready_skid.py): the registered-ready skid buffer in front of the I/O
check stage. Order and the stream rule under random traffic, no forward latency, full
throughput, and an ``i.ready`` that does not follow ``o.ready`` within a cycle."""

import random

import pytest
from amaranth.sim import Simulator

from nvmecore.nvme.ready_skid import ReadySkid
from nvmetb.amaranth_sim import CLOCK_PERIOD, simulate
from nvmetb.amaranth_streams import Sink, Source

pytestmark = pytest.mark.quick


@pytest.mark.parametrize("gap, stall", [(0, 0), (0.3, 0.5), (0, 0.7), (0.6, 0.1)])
def test_order_and_stream_rule(gap, stall):
    dut = ReadySkid(16)
    items = [random.Random(gap * 10 + stall).getrandbits(16) for _ in range(300)]
    src = Source(dut.i, items, gap=gap, rng=random.Random(1))
    sink = Sink(dut.o, stall=stall, rng=random.Random(2), convert=int)
    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD)
    sim.add_process(src.process())
    sim.add_process(sink.process())

    async def until_done(ctx):
        for _ in range(5000):
            await ctx.tick()
            if len(sink.received) == len(items):
                return
        raise AssertionError("not all items came through")
    sim.add_testbench(until_done)
    sim.run()
    assert sink.received == items


def test_no_latency_full_throughput_registered_ready():
    dut = ReadySkid(8)

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        for value in range(1, 11):              # one payload a cycle, each out at once
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, value)
            assert ctx.get(dut.i.ready) and ctx.get(dut.o.valid)
            assert ctx.get(dut.o.payload) == value
            await ctx.tick()
        # The sink stalls: i.ready stays up this cycle whatever o.ready does ...
        ctx.set(dut.i.payload, 42)
        ctx.set(dut.o.ready, 0)
        assert ctx.get(dut.i.ready)
        await ctx.tick()
        # ... the payload is kept aside; the source waits, the kept one is shown.
        ctx.set(dut.i.payload, 43)
        for o_ready in (0, 1):
            ctx.set(dut.o.ready, o_ready)
            assert not ctx.get(dut.i.ready)
            assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 42
        await ctx.tick()
        assert ctx.get(dut.i.ready) and ctx.get(dut.o.payload) == 43
        ctx.set(dut.i.valid, 0)
        await ctx.tick()
        assert not ctx.get(dut.o.valid) and ctx.get(dut.empty)
    simulate(dut, testbench)
