"""StreamArbiter (nvme/stream_arbiter.py): every source's payloads in order under random
traffic and backpressure, the stream rule on the output, and strict turns when every
source always has something."""

import random

import pytest
from amaranth.sim import Simulator

from nvmecore.nvme.stream_arbiter import StreamArbiter
from nvmetb.amaranth_sim import CLOCK_PERIOD, simulate
from nvmetb.amaranth_streams import Sink, Source

pytestmark = pytest.mark.quick


@pytest.mark.parametrize("count", [1, 3, 5])
@pytest.mark.parametrize("gap, stall", [(0, 0), (0.5, 0.3)])
def test_all_through_in_order(count, gap, stall):
    dut = StreamArbiter(16, count)
    items = [[(i << 12) | n for n in range(60)] for i in range(count)]
    sources = [Source(port, items[i], gap=gap, rng=random.Random(i))
               for i, port in enumerate(dut.inputs)]
    sink = Sink(dut.out, stall=stall, rng=random.Random(99), convert=int)
    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD)
    for source in sources:
        sim.add_process(source.process())
    sim.add_process(sink.process())

    async def until_done(ctx):
        for _ in range(20000):
            await ctx.tick()
            if len(sink.received) == 60 * count:
                return
        raise AssertionError("not everything came through")
    sim.add_testbench(until_done)
    sim.run()
    for i in range(count):
        assert [x for x in sink.received if x >> 12 == i] == items[i]


def test_turns_with_every_source_busy():
    dut = StreamArbiter(8, 5)

    async def testbench(ctx):
        ctx.set(dut.out.ready, 1)
        for port in dut.inputs:
            ctx.set(port.valid, 1)
        grants = []
        for _ in range(12):
            grants.append(ctx.get(dut.grant))
            await ctx.tick()
        assert grants == [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2]   # after 0 (reset)
        ctx.set(dut.inputs[1].valid, 0)             # the next after 2 with work: 3
        ctx.set(dut.inputs[2].valid, 0)
        grants = []
        for _ in range(4):
            grants.append(ctx.get(dut.grant))
            await ctx.tick()
        assert grants == [3, 4, 0, 3]
    simulate(dut, testbench)
