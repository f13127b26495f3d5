"""nvmecore.fifo.BypassFIFO in the Amaranth simulator: the same entries in the same order
as a queue model under random writes and reads, and an entry written into an empty FIFO
readable the next cycle (SyncFIFOBuffered shows it a cycle later)."""

import random
from collections import deque

import pytest
from amaranth.lib.fifo import SyncFIFOBuffered

from nvmecore.fifo import BypassFIFO
from nvmetb.amaranth_sim import simulate

pytestmark = pytest.mark.quick


@pytest.mark.parametrize("depth", [2, 3, 5, 17])
@pytest.mark.parametrize("w_rate, r_rate", [(0.5, 0.5), (0.9, 0.3), (0.3, 0.9), (1.0, 1.0)])
def test_order_and_levels(depth, w_rate, r_rate):
    dut = BypassFIFO(width=16, depth=depth)
    rng = random.Random(depth * 100 + int(10 * w_rate) + int(r_rate))
    model = deque()
    state = {"next": 0, "read": 0}

    async def bench(ctx):
        for _ in range(3000):
            w_en, r_en = rng.random() < w_rate, rng.random() < r_rate
            ctx.set(dut.w_en, w_en)
            ctx.set(dut.w_data, state["next"])
            ctx.set(dut.r_en, r_en)
            assert ctx.get(dut.level) == len(model)
            assert ctx.get(dut.w_rdy) == (len(model) - ctx.get(dut.r_rdy) < depth - 1)
            if ctx.get(dut.r_rdy):
                assert model, "r_rdy with nothing written"
                assert ctx.get(dut.r_data) == model[0]
                if r_en:
                    model.popleft()
                    state["read"] += 1
            if w_en and ctx.get(dut.w_rdy):
                model.append(state["next"])
                state["next"] = (state["next"] + 1) & 0xFFFF
            await ctx.tick()
        assert state["read"] > 500

    simulate(dut, bench)


@pytest.mark.parametrize("cls, latency", [(BypassFIFO, 1), (SyncFIFOBuffered, 2)])
def test_first_word_latency(cls, latency):
    """An entry written into an empty FIFO is on the read side ``latency`` cycles later;
    a stream written one a cycle and read one a cycle flows without a gap."""
    dut = cls(width=8, depth=8)

    async def bench(ctx):
        ctx.set(dut.r_en, 1)
        seen = []
        for cycle in range(20):
            ctx.set(dut.w_en, cycle < 6)
            ctx.set(dut.w_data, 0x10 + cycle)
            if ctx.get(dut.r_rdy):
                seen.append((cycle, ctx.get(dut.r_data)))
            await ctx.tick()
        assert seen == [(latency + i, 0x10 + i) for i in range(6)]

    simulate(dut, bench)
