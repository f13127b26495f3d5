"""Fixed latencies of the blocks a command passes through, one command alone, in the
Amaranth simulator (issue 10's targets: last SQ entry beat -> CQ entry write <= 4 cycles
through the FPGA top; the benchmark measures the whole path, these tests each block's
share, so that a cycle added anywhere shows where)."""

import pytest

from nvmecore import CoreConfig
from nvmecore.backend.interface import BackendOp, BackendStatus
from nvmecore.layouts import NvmOpcode
from nvmecore.nvme.io_engine import IoEngine
from nvmecore.nvme.router import CommandRouter
from nvmecore.nvme.sq_fetch import FetchedCommand
from nvmetb.amaranth_sim import simulate

pytestmark = pytest.mark.quick


def _command(sqid, opc, cid=7, nsid=1):
    return FetchedCommand(CoreConfig()).const({
        "sqe": {"cdw0": {"opc": opc, "cid": cid}, "nsid": nsid},
        "sqid": sqid, "cqid": sqid, "sqhd": 1})


async def _wait(ctx, signal, limit=20):
    """Cycles until ``signal`` is high (0: it is high now)."""
    cycles = 0
    while not ctx.get(signal):
        await ctx.tick()
        cycles += 1
        assert cycles < limit, f"{signal} never came"
    return cycles


def test_router_hands_an_admin_command_on_the_next_cycle():
    """An admin command taken from the fetch engine is offered to the admin engine the
    cycle after (the admin FIFO's first word: SyncFIFO, not SyncFIFOBuffered's 2)."""
    dut = CommandRouter(CoreConfig())

    async def bench(ctx):
        ctx.set(dut.cmd.payload, _command(0, 0x0A))
        ctx.set(dut.cmd.valid, 1)
        assert ctx.get(dut.cmd.ready)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        assert await _wait(ctx, dut.admin.valid) + 1 == 1
        assert ctx.get(dut.admin.payload.sqe.cdw0.cid) == 7

    simulate(dut, bench)


def test_flush_through_the_io_engine():
    """A Flush: the backend gets its command 2 cycles after the I/O engine takes it (the
    check stage's register, the plain FIFO's first word), and the completion is offered
    3 cycles after the backend reports it done (the event register, the slot context
    read, the completion register; with nothing else finishing, not the finished FIFO)."""
    config = CoreConfig()
    dut = IoEngine(config)

    async def bench(ctx):
        back = dut.backend
        ctx.set(back.cmd.ready, 1)
        ctx.set(dut.completion.ready, 1)
        await ctx.tick().repeat(4)
        ctx.set(dut.cmd.payload, _command(1, NvmOpcode.FLUSH.value))
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick().until(dut.cmd.ready)       # taken in the cycle before this one
        ctx.set(dut.cmd.valid, 0)
        to_backend = await _wait(ctx, back.cmd.valid) + 1
        assert ctx.get(back.cmd.payload.op) == BackendOp.FLUSH
        tag = ctx.get(back.cmd.payload.tag)
        await ctx.tick()
        ctx.set(back.done.payload, {"tag": tag, "status": BackendStatus.OK})
        ctx.set(back.done.valid, 1)
        assert ctx.get(back.done.ready)
        await ctx.tick()
        ctx.set(back.done.valid, 0)
        to_completion = await _wait(ctx, dut.completion.valid) + 1
        assert ctx.get(dut.completion.payload.cid) == 7
        assert ctx.get(dut.completion.payload.sc) == 0
        assert (to_backend, to_completion) == (2, 3)

    simulate(dut, bench)
