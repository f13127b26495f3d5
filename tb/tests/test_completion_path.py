"""The completion path in the Amaranth simulator: CQ poster -> interrupt unit -> MSI-X
table, their writes through the DMA write arbiter (issue 10's latency targets: CQ entry
write -> MSI-X write <= 2 cycles, a null command every <= 3 cycles with an interrupt per
command), and the arbiter's ordering under random back-pressure."""

import random

import pytest
from amaranth import Module
from amaranth.lib import wiring

from nvmecore import CoreConfig
from nvmecore.layouts import MSIX_TABLE_BASE, Completion
from nvmecore.nvme.cq_post import CQE_BYTES, CqPoster
from nvmecore.nvme.dma_mux import DmaWriteArbiter
from nvmecore.nvme.irq import InterruptUnit
from nvmecore.pcie.msix import MsixTable
from nvmetb.amaranth_sim import simulate
from test_blocks import port_write

pytestmark = pytest.mark.quick

MSIX_ADDR = 0xFEE0_0008
VECTOR = 2


def _completion_path(config):
    m = Module()
    m.submodules.poster = poster = CqPoster(config)
    m.submodules.irq = irq = InterruptUnit(config)
    m.submodules.msix = msix = MsixTable(config)
    m.submodules.arb = arb = DmaWriteArbiter(config.data_width, 4)
    wiring.connect(m, poster.irq, irq.cq_irq)
    wiring.connect(m, irq.msix, msix.send)
    wiring.connect(m, poster.dma, arb.in0)
    wiring.connect(m, msix.dma, arb.in2)
    return m, poster, irq, msix, arb


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.6])
def test_cq_entry_to_msix_and_one_completion_per_three_cycles(stall):
    """Completions for a CQ with IEN = 1 and a vector that fires at once: the MSI-X write
    command is on the port 2 cycles after the entry's, and with the port always ready a
    completion (entry + message) goes every 3 cycles. With back-pressure on the port
    (``stall``), each message still follows its own entry, and every write's data follow
    its command in order."""
    config = CoreConfig(io_queues=3)
    m, poster, irq, msix, arb = _completion_path(config)
    n = 24
    rng = random.Random(11)
    cmds, beats = [], []          # (cycle, addr), (cycle, data)

    async def bench(ctx):
        qs = poster.queues
        ctx.set(qs.iv, VECTOR)
        ctx.set(qs.ien, 1)
        ctx.set(qs.phase, 1)
        ctx.set(irq.msix_enable, 1)
        ctx.set(irq.time, 0)                    # aggregation off: every completion fires
        ctx.set(arb.bus_master_enable, 1)
        await ctx.tick().until(~msix.port.busy)
        await port_write(ctx, msix.port, MSIX_TABLE_BASE + 16 * VECTOR, MSIX_ADDR, 8)
        await port_write(ctx, msix.port, MSIX_TABLE_BASE + 16 * VECTOR + 8, 0x42, 8)
        ctx.set(msix.enable, 1)
        sent = 0
        cycle = 0
        while len(beats) < 2 * n and cycle < 50 * n:
            ctx.set(poster.completion.valid, sent < n)
            ctx.set(poster.completion.payload,
                    Completion.const({"cqid": 1, "sqid": 1, "cid": sent}))
            ctx.set(arb.out.cmd.ready, rng.random() >= stall)
            ctx.set(arb.out.data.ready, rng.random() >= stall)
            if ctx.get(poster.completion.valid) and ctx.get(poster.completion.ready):
                sent += 1
            if ctx.get(arb.out.cmd.valid) and ctx.get(arb.out.cmd.ready):
                cmds.append((cycle, ctx.get(arb.out.cmd.payload.addr),
                             ctx.get(arb.out.cmd.payload.length)))
            if ctx.get(arb.out.data.valid) and ctx.get(arb.out.data.ready):
                assert ctx.get(arb.out.data.payload.last)
                beats.append((cycle, ctx.get(arb.out.data.payload.data)))
            await ctx.tick()
            cycle += 1

    simulate(m, bench)
    assert len(cmds) == len(beats) == 2 * n
    # Each write's one data beat is its own (the port is in order); entries in CID order,
    # each message behind its own entry.
    entries, messages = [], []            # indices on the port
    for i, ((c_cycle, addr, length), (d_cycle, value)) in enumerate(zip(cmds, beats, strict=True)):
        assert d_cycle >= c_cycle
        if addr == MSIX_ADDR:
            assert (length, value & 0xFFFF_FFFF) == (4, 0x42)
            messages.append(i)
        else:
            assert length == CQE_BYTES
            assert (value >> 96) & 0xFFFF == len(entries)        # the entry's CID
            entries.append(i)
    assert len(entries) == len(messages) == n
    assert all(e < msg for e, msg in zip(entries, messages, strict=True))
    if stall == 0:
        entries = [cmds[i][0] for i in entries]
        messages = [cmds[i][0] for i in messages]
        assert [b - a for a, b in zip(entries, messages, strict=True)] == [2] * n
        assert {b - a for a, b in zip(entries, entries[1:], strict=False)} == {3}


def test_write_arbiter_keeps_each_write_whole_and_in_order():
    """Four writers with random writes of 1-4 beats and random valid gaps, the port with
    random ready: every write's beats leave after its command, in the order the commands
    left, and no writer's write is split or reordered. A command may go ahead of the data
    before it (one at most)."""
    width = 64
    arb = DmaWriteArbiter(width, 4)
    rng = random.Random(7)
    plans = {i: [rng.randint(1, 4) for _ in range(20)] for i in range(4)}
    out_cmds, out_beats = [], []
    max_ahead = 0

    async def writer(ctx, i):
        port = getattr(arb, f"in{i}")
        for seq, n in enumerate(plans[i]):
            while rng.random() < 0.3:
                await ctx.tick()
            ctx.set(port.cmd.valid, 1)
            ctx.set(port.cmd.payload.addr, i << 16 | seq)
            ctx.set(port.cmd.payload.length, n * width // 8)
            await ctx.tick().until(port.cmd.ready)
            ctx.set(port.cmd.valid, 0)
            for b in range(n):
                while rng.random() < 0.2:
                    await ctx.tick()
                ctx.set(port.data.valid, 1)
                ctx.set(port.data.payload.data, i << 16 | seq << 4 | b)
                ctx.set(port.data.payload.last, b == n - 1)
                await ctx.tick().until(port.data.ready)
                ctx.set(port.data.valid, 0)

    async def sink(ctx):
        nonlocal max_ahead
        ctx.set(arb.bus_master_enable, 1)
        total = sum(len(p) for p in plans.values())
        cycle = 0
        while (len(out_cmds) < total or len(out_beats) < sum(map(sum, plans.values()))) \
                and cycle < 5000:
            ctx.set(arb.out.cmd.ready, rng.random() < 0.6)
            ctx.set(arb.out.data.ready, rng.random() < 0.6)
            _, _, cv, cr, addr, dv, dr, data, last = await ctx.tick().sample(
                arb.out.cmd.valid, arb.out.cmd.ready, arb.out.cmd.payload.addr,
                arb.out.data.valid, arb.out.data.ready, arb.out.data.payload.data,
                arb.out.data.payload.last)
            if cv and cr:
                out_cmds.append(addr)
            if dv and dr:
                out_beats.append((data, last))
            done_writes = sum(1 for _, lst in out_beats if lst)
            max_ahead = max(max_ahead, len(out_cmds) - done_writes)
            cycle += 1

    def bind(i):
        async def process(ctx):
            await writer(ctx, i)
        return process

    simulate(arb, sink, *(bind(i) for i in range(4)))
    # Beats grouped by `last`, in command order, each group the whole write it belongs to.
    groups, cur = [], []
    for data, last in out_beats:
        cur.append(data)
        if last:
            groups.append(cur)
            cur = []
    assert len(groups) == len(out_cmds) == sum(len(p) for p in plans.values())
    for addr, group in zip(out_cmds, groups, strict=True):
        i, seq = addr >> 16, addr & 0xFFFF
        assert group == [i << 16 | seq << 4 | b for b in range(plans[i][seq])]
    for i in range(4):
        assert [a & 0xFFFF for a in out_cmds if a >> 16 == i] == list(range(20))
    assert max_ahead == 2             # the header ahead was used, and never more than one
