"""Block-level tests in the Amaranth simulator: each block on its own ports, against the
reference model's matching function (the whole core is covered by test_core_*)."""

import random

import pytest
from amaranth.lib import data

from nvmecore import CoreConfig
from nvmecore.layouts import (
    DOORBELL_BASE,
    MSIX_PBA_BASE,
    MSIX_TABLE_BASE,
    AsyncEvent,
    Cc,
    IrqRequest,
    QueueSizeUpdate,
    Reg,
    RegRequest,
)
from nvmecore.nvme.bar0 import Bar0Decoder
from nvmecore.nvme.cq_post import CoalescedIrq
from nvmecore.nvme.ctrl_regs import ControllerRegisters
from nvmecore.nvme.doorbell import DoorbellDecoder
from nvmecore.nvme.irq import InterruptUnit
from nvmecore.pcie.msix import MsixTable
from nvmetb.amaranth_sim import simulate
from nvmetb.model import ControllerModel, DmaWrite, DoorbellWrite, split_access

pytestmark = pytest.mark.quick


async def port_write(ctx, port, offset, value, size=4):
    addr, be, qword = split_access(offset, size, value)
    ctx.set(port.addr, addr)
    ctx.set(port.be, be)
    ctx.set(port.wdata, qword)
    ctx.set(port.w_stb, 1)
    await ctx.tick()
    ctx.set(port.w_stb, 0)


async def port_read(ctx, port, offset, size=4):
    addr, be, _ = split_access(offset, size)
    ctx.set(port.addr, addr)
    ctx.set(port.be, be)
    ctx.set(port.r_stb, 1)
    await ctx.tick()
    ctx.set(port.r_stb, 0)
    value = ctx.get(port.rdata)
    return value >> (8 * (offset - addr)) & ((1 << (8 * size)) - 1)


def test_controller_registers_against_model():
    """Random DWORD and QWORD traffic on the controller registers alone."""
    config = CoreConfig(io_queues=2)
    dut = ControllerRegisters(config)
    model = ControllerModel(config)
    rng = random.Random(5)

    async def testbench(ctx):
        ctx.set(dut.quiescent, 1)
        for _ in range(400):
            offset = rng.choice([Reg.CAP, Reg.VS, Reg.INTMS, Reg.INTMC, Reg.CC, Reg.CSTS,
                                 Reg.AQA, Reg.ASQ, Reg.ACQ, Reg.CMBLOC, 0x40])
            size = 8 if offset in (Reg.CAP, Reg.ASQ, Reg.ACQ) and rng.random() < 0.5 else 4
            if rng.random() < 0.5:
                value = rng.getrandbits(8 * size)
                if offset == Reg.CC:
                    value = Cc.const({"en": rng.getrandbits(1), "shn": rng.randrange(3),
                                      "iosqes": 6, "iocqes": 4}).as_bits()
                if offset == Reg.ASQ or offset == Reg.ACQ:
                    value &= ~0xFFF if rng.random() < 0.8 else ~0
                if offset == Reg.AQA:
                    value |= 0x0001_0001
                await port_write(ctx, dut.port, offset, value, size)
                model.write(offset, value, size)
                await ctx.tick().repeat(3)            # let the state machine act
            else:
                got = await port_read(ctx, dut.port, offset, size)
                assert got == model.read(offset, size), f"{offset:#x}"
            assert ctx.get(dut.ready) == model.ready

    simulate(dut, testbench)


def test_controller_reset_waits_for_quiescence():
    config = CoreConfig(io_queues=2)
    dut = ControllerRegisters(config)

    async def testbench(ctx):
        ctx.set(dut.quiescent, 1)
        await port_write(ctx, dut.port, Reg.AQA, 0x0001_0001)
        await port_write(ctx, dut.port, Reg.CC, Cc.const({"en": 1}).as_bits())
        assert await port_read(ctx, dut.port, Reg.CSTS) == 1
        ctx.set(dut.quiescent, 0)
        ctx.set(dut.port.addr, 0x10)
        ctx.set(dut.port.be, 0xF0)
        ctx.set(dut.port.wdata, 0)
        ctx.set(dut.port.w_stb, 1)
        assert ctx.get(dut.run) == 0                 # fetching stops with the write
        await ctx.tick()
        ctx.set(dut.port.w_stb, 0)
        for _ in range(10):
            assert ctx.get(dut.ctrl_reset) == 0 and ctx.get(dut.run) == 0
            await ctx.tick()
        assert await port_read(ctx, dut.port, Reg.CSTS) == 1, "RDY held while busy"
        ctx.set(dut.quiescent, 1)
        assert ctx.get(dut.ctrl_reset) == 1         # queues dropped once quiescent
        await ctx.tick()
        assert await port_read(ctx, dut.port, Reg.CSTS) == 0

    simulate(dut, testbench)


def test_doorbell_decoder_against_model():
    config = CoreConfig(io_queues=5, max_queue_entries=256)
    dut = DoorbellDecoder(config)
    model = ControllerModel(config)
    model.admin_sizes = (8, 16)
    model.csts = 1                                    # admin queues exist
    rng = random.Random(7)
    got_updates, got_events = [], []

    async def collect(ctx):
        ctx.set(dut.update.ready, 1)
        ctx.set(dut.event.ready, 1)
        async for _, _, uv, ur, up, ev, er, ep in ctx.tick().sample(
                dut.update.valid, dut.update.ready, dut.update.payload,
                dut.event.valid, dut.event.ready, dut.event.payload):
            if uv and ur:
                got_updates.append(DoorbellWrite(up.qid, bool(up.cq), up.value))
            if ev and er:
                got_events.append(ep.as_bits())
            ctx.set(dut.update.ready, rng.random() < 0.6)
            ctx.set(dut.event.ready, rng.random() < 0.6)

    async def testbench(ctx):
        ctx.set(dut.admin_ready, 1)
        ctx.set(dut.admin_sq_size, 8)
        ctx.set(dut.admin_cq_size, 16)
        await ctx.tick().until(~dut.port.busy)        # power-on sweep
        for _ in range(300):
            if rng.random() < 0.2:
                qid, cq = rng.randrange(1, 7), rng.random() < 0.5
                size = rng.choice([None, 2, 64, 256])
                ctx.set(dut.queue.payload, QueueSizeUpdate.const(
                    {"qid": qid, "cq": cq, "valid": size is not None, "size": size or 0}))
                ctx.set(dut.queue.valid, 1)
                await ctx.tick().until(dut.queue.ready)
                ctx.set(dut.queue.valid, 0)
                model.set_queue(qid, cq, size)
            else:
                qid = rng.randrange(8)
                offset = DOORBELL_BASE + 8 * qid + 4 * rng.getrandbits(1)
                value = rng.choice([0, 1, 7, 8, 15, 16, 63, 64, 255, 256, rng.getrandbits(32)])
                size = 8 if rng.random() < 0.2 else 4
                offset &= ~(size - 1)
                await ctx.tick().until(~dut.port.busy)
                await port_write(ctx, dut.port, offset, value, size)
                model.write(offset, value, size)
        await ctx.tick().until(~dut.port.busy)
        await ctx.tick().repeat(4)
        assert got_updates == model.doorbells
        assert got_events == model.events
        assert {data.Layout.cast(AsyncEvent).from_bits(e).info for e in got_events} == {0, 1}

    simulate(dut, testbench, collect)


def test_doorbell_writes_one_per_cycle():
    """A stream of good single-DWORD doorbell writes (a host ringing SQ tails and CQ
    heads): the decoder takes one every cycle (it took one every two: ``busy`` while the
    last was reported), and reports them in order, one a cycle."""
    config = CoreConfig(io_queues=5)
    dut = DoorbellDecoder(config)
    writes = [(DOORBELL_BASE + 8 * q + 4 * cq, v)
              for v in range(1, 9) for q, cq in ((1, 0), (1, 1), (2, 0), (2, 1))]
    got = []

    async def collect(ctx):
        async for _, _, uv, ur, up in ctx.tick().sample(
                dut.update.valid, dut.update.ready, dut.update.payload):
            if uv and ur:
                got.append((up.qid, up.cq, up.value))

    async def testbench(ctx):
        ctx.set(dut.admin_ready, 1)
        ctx.set(dut.update.ready, 1)
        await ctx.tick().until(~dut.port.busy)        # power-on sweep
        for qid in (1, 2):
            for cq in (0, 1):
                ctx.set(dut.queue.payload, QueueSizeUpdate.const(
                    {"qid": qid, "cq": cq, "valid": 1, "size": 64}))
                ctx.set(dut.queue.valid, 1)
                await ctx.tick()
        ctx.set(dut.queue.valid, 0)
        for offset, value in writes:
            assert not ctx.get(dut.port.busy)
            await port_write(ctx, dut.port, offset, value)
        await ctx.tick().repeat(3)
        assert got == [(((o - DOORBELL_BASE) >> 3), (o >> 2) & 1, v) for o, v in writes]

    simulate(dut, testbench, collect)


def test_msix_table_sender_against_model():
    config = CoreConfig(io_queues=9, msix_vectors=10, data_width=64)
    dut = MsixTable(config)
    model = ControllerModel(config)
    rng = random.Random(11)
    sent = []

    async def collect(ctx):
        header = None
        async for _, _, cv, cr, cp, dv, dr, dp in ctx.tick().sample(
                dut.dma.cmd.valid, dut.dma.cmd.ready, dut.dma.cmd.payload,
                dut.dma.data.valid, dut.dma.data.ready, dut.dma.data.payload):
            if cv and cr:
                header = (cp.addr, cp.length)
            if dv and dr:
                assert dp.last and header[1] == 4
                sent.append(DmaWrite(header[0], (dp.data & 0xFFFF_FFFF).to_bytes(4, "little")))
            ctx.set(dut.dma.cmd.ready, rng.random() < 0.7)
            ctx.set(dut.dma.data.ready, rng.random() < 0.7)

    async def testbench(ctx):
        await ctx.tick().until(~dut.port.busy)
        for v in range(10):
            await port_write(ctx, dut.port, MSIX_TABLE_BASE + 16 * v, 0xFEE0_0000 + 4 * v, 8)
            await port_write(ctx, dut.port, MSIX_TABLE_BASE + 16 * v + 8, 0x1_0000_0100 + v, 8)
            model.write(MSIX_TABLE_BASE + 16 * v, 0xFEE0_0000 + 4 * v, 8)
            model.write(MSIX_TABLE_BASE + 16 * v + 8, 0x1_0000_0100 + v, 8)
        ctx.set(dut.enable, 1)
        model.set_cfg(True, False)
        for _ in range(200):
            action = rng.random()
            if action < 0.4 and model.msix_enable:
                # (With MSI-X off the interrupt unit sends nothing here: INTx instead.)
                v = rng.randrange(11)
                ctx.set(dut.send.payload, v)
                ctx.set(dut.send.valid, 1)
                await ctx.tick().until(dut.send.ready)
                ctx.set(dut.send.valid, 0)
                model.irq(v) if v < 10 else None
            elif action < 0.7:
                v, masked = rng.randrange(10), rng.getrandbits(1)
                await ctx.tick().until(dut.idle)
                await port_write(ctx, dut.port, MSIX_TABLE_BASE + 16 * v + 12, masked)
                model.write(MSIX_TABLE_BASE + 16 * v + 12, masked)
            elif action < 0.8:
                enable, fmask = rng.random() < 0.9, rng.random() < 0.2
                await ctx.tick().until(dut.idle)
                ctx.set(dut.enable, enable)
                ctx.set(dut.function_mask, fmask)
                model.set_cfg(enable, fmask)
            else:
                await ctx.tick().until(dut.idle)
                await ctx.tick().repeat(2)
                assert await port_read(ctx, dut.port, MSIX_PBA_BASE, 8) == \
                    model.read(MSIX_PBA_BASE, 8)
            await ctx.tick()
        ctx.set(dut.enable, 1)
        ctx.set(dut.function_mask, 0)
        model.set_cfg(True, False)
        await ctx.tick().repeat(100)
        assert sent == model.dma_writes
        assert len(sent) > 20

    simulate(dut, testbench, collect)


def test_interrupt_unit_routes_to_msix_or_intx():
    config = CoreConfig(io_queues=3)
    dut = InterruptUnit(config)

    async def request(ctx, vector, deassert=0):
        ctx.set(dut.request.payload, IrqRequest.const({"vector": vector, "deassert": deassert}))
        ctx.set(dut.request.valid, 1)
        await ctx.tick().until(dut.request.ready)
        ctx.set(dut.request.valid, 0)
        await ctx.tick()

    async def testbench(ctx):
        await request(ctx, 2)
        assert ctx.get(dut.intx) == 1
        ctx.set(dut.intms, 0b100)
        await ctx.tick()
        assert ctx.get(dut.intx) == 0
        ctx.set(dut.intms, 0)
        await request(ctx, 2, deassert=1)
        assert ctx.get(dut.intx) == 0
        ctx.set(dut.msix_enable, 1)
        ctx.set(dut.msix.ready, 1)
        ctx.set(dut.request.payload, IrqRequest.const({"vector": 3}))
        ctx.set(dut.request.valid, 1)
        assert ctx.get(dut.msix.valid) == 1 and ctx.get(dut.msix.payload) == 3
        ctx.set(dut.request.payload, IrqRequest.const({"vector": 4}))   # no such vector
        assert ctx.get(dut.msix.valid) == 0 and ctx.get(dut.request.ready) == 1
        ctx.set(dut.request.valid, 0)
        assert ctx.get(dut.intx) == 0

    simulate(dut, testbench)


def test_completion_interrupt_reaches_the_msix_write_in_two_cycles():
    """Latency (issue 10: CQ entry write -> MSI-X write): a CQ's interrupt request that
    fires with none waiting is offered to the MSI-X table in the cycle the interrupt unit
    takes it (when the table cannot take it, the cycle after, from the FIFO), and the
    table offers the message's write command the cycle after it takes the vector."""
    config = CoreConfig(io_queues=3)
    irq, msix = InterruptUnit(config), MsixTable(config)

    async def irq_bench(ctx):
        ctx.set(irq.msix_enable, 1)
        for table_ready in (1, 0):
            ctx.set(irq.msix.ready, table_ready)
            ctx.set(irq.cq_irq.payload, CoalescedIrq.const({"vector": 2, "admin": 1}))
            ctx.set(irq.cq_irq.valid, 1)
            assert ctx.get(irq.cq_irq.ready)
            assert ctx.get(irq.msix.valid) and ctx.get(irq.msix.payload) == 2
            await ctx.tick()
            ctx.set(irq.cq_irq.valid, 0)
            # taken at once, or waiting in the FIFO for the table
            assert ctx.get(irq.msix.valid) == (not table_ready)
            ctx.set(irq.msix.ready, 1)
            await ctx.tick()
            assert not ctx.get(irq.msix.valid)

    async def msix_bench(ctx):
        await ctx.tick().until(~msix.port.busy)
        await port_write(ctx, msix.port, MSIX_TABLE_BASE + 16 * 2, 0xFEE0_0008, 8)
        await port_write(ctx, msix.port, MSIX_TABLE_BASE + 16 * 2 + 8, 0x42, 8)  # unmasked
        ctx.set(msix.enable, 1)
        ctx.set(msix.dma.cmd.ready, 1)
        ctx.set(msix.dma.data.ready, 1)
        await ctx.tick()
        ctx.set(msix.send.payload, 2)
        ctx.set(msix.send.valid, 1)
        assert ctx.get(msix.send.ready)
        await ctx.tick()
        ctx.set(msix.send.valid, 0)
        assert ctx.get(msix.dma.cmd.valid)
        assert ctx.get(msix.dma.cmd.payload.addr) == 0xFEE0_0008
        await ctx.tick()
        assert ctx.get(msix.dma.data.valid) and ctx.get(msix.dma.data.payload.data) == 0x42

    simulate(irq, irq_bench)
    simulate(msix, msix_bench)


def test_bar0_decoder_keeps_read_order_under_backpressure():
    dut = Bar0Decoder()
    rng = random.Random(3)
    responses = []

    async def blocks(ctx):
        # Each block answers a read with its own tag and the address.
        async for _, _, *strobes in ctx.tick().sample(
                dut.ctrl.r_stb, dut.doorbell.r_stb, dut.msix.r_stb, dut.ctrl.addr):
            addr = strobes[3]
            for tag, (port, stb) in enumerate(zip((dut.ctrl, dut.doorbell, dut.msix),
                                                  strobes[:3], strict=True)):
                if stb:
                    ctx.set(port.rdata, tag << 32 | addr)

    async def sink(ctx):
        async for _, _, valid, ready, payload in ctx.tick().sample(
                dut.bus.resp.valid, dut.bus.resp.ready, dut.bus.resp.payload):
            if valid and ready:
                responses.append(payload)
            ctx.set(dut.bus.resp.ready, rng.random() < 0.4)

    async def testbench(ctx):
        expected = []
        for _ in range(60):
            addr = rng.randrange(0x4000) & ~7
            ctx.set(dut.bus.req.payload, RegRequest.const({"addr": addr, "write": 0,
                                                           "be": 0xFF}))
            ctx.set(dut.bus.req.valid, 1)
            await ctx.tick().until(dut.bus.req.ready)
            ctx.set(dut.bus.req.valid, 0)
            expected.append(min(addr >> 12, 2) << 32 | addr)
        await ctx.tick().repeat(40)
        assert responses == expected

    simulate(dut, testbench, blocks, sink)
