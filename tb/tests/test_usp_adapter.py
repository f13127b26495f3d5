"""The UltraScale+ adapter's own glue in the Amaranth simulator: configuration state from
the cfg_* ports to the core, function-level reset and its answer, the Device Control poll
through cfg_mgmt, INTx. (The three engines have their own tests; the whole adapter runs
on the Verilog in test_usp_rtl.py and test_pcie_rtl.py.)"""

import pytest

from nvmecore import CoreConfig
from nvmecore.pcie.usp import DEVCTL_DWORD, DEVCTL_POLL_CYCLES, FLR_DONE_DELAY, UspAdapter
from nvmetb.amaranth_sim import simulate

pytestmark = pytest.mark.quick


def test_configuration_reaches_the_core():
    dut = UspAdapter(CoreConfig(io_queues=2))

    async def bench(ctx):
        for status, enable, mask, mps, mrrs in ((0x7, 1, 0, 1, 2), (0x3, 0, 1, 3, 5),
                                                (0x4, 1, 1, 0, 0)):
            ctx.set(dut.cfg_function_status, status)
            ctx.set(dut.cfg_interrupt_msix_enable, enable)
            ctx.set(dut.cfg_interrupt_msix_mask, mask)
            ctx.set(dut.cfg_max_payload, mps)
            ctx.set(dut.cfg_max_read_req, mrrs)
            await ctx.tick()
            cfg = dut.core_cfg
            assert ctx.get(cfg.bus_master_enable) == status >> 2 & 1     # bit 2: BME
            assert ctx.get(cfg.msix_enable) == enable
            assert ctx.get(cfg.msix_function_mask) == mask
            assert ctx.get(cfg.max_payload_size) == mps
            assert ctx.get(cfg.max_read_request_size) == mrrs

    simulate(dut, bench)


def test_intx_waits_for_cfg_interrupt_sent():
    """[PG213 "Legacy Interrupt Mode"] cfg_interrupt_int changes only after the hard IP
    acknowledged the previous change with cfg_interrupt_sent; changes in between fold into
    the next message, so the last level always reaches the IP."""
    dut = UspAdapter(CoreConfig(io_queues=2))

    async def bench(ctx):
        sent_after = 6
        asked, changes = 0, []
        due = None
        levels = [1, 0, 1, 1, 0, 0, 1] + [0] * 30 + [1] * 30 + [0, 1, 0] + [0] * 40
        for cycle, level in enumerate(levels):
            ctx.set(dut.intx, level)
            ctx.set(dut.cfg_interrupt_sent, 0)
            now = ctx.get(dut.cfg_interrupt_int) & 1
            assert ctx.get(dut.cfg_interrupt_pending) & 1 == now
            if due is not None:
                assert now == asked, f"cycle {cycle}: changed before cfg_interrupt_sent"
                if cycle >= due:
                    ctx.set(dut.cfg_interrupt_sent, 1)
                    due = None
            elif now != asked:
                asked, due = now, cycle + sent_after
                changes.append((cycle, now))
            await ctx.tick()
        assert changes[0] == (1, 1)                 # the first change goes at once
        assert [lvl for _, lvl in changes] == [1, 0, 1, 0]     # the 1 at 68 folds away
        assert asked == 0 and due is None           # the last level reached the IP

    simulate(dut, bench)


def test_function_level_reset_is_answered_once():
    dut = UspAdapter(CoreConfig(io_queues=2))

    async def bench(ctx):
        for _ in range(2):                       # two FLRs in a row
            await ctx.tick().repeat(5)
            ctx.set(dut.cfg_flr_in_process, 1)
            done_at = []
            for cycle in range(3 * FLR_DONE_DELAY):
                await ctx.delay(1e-9)
                # the core is held in reset, from the cycle after (flr is a register)
                assert ctx.get(dut.core_cfg.flr) == (cycle >= 1)
                if ctx.get(dut.cfg_flr_done) & 1:
                    done_at.append(cycle)
                await ctx.tick()
            assert done_at == [FLR_DONE_DELAY], done_at     # flr and cfg_flr_done are registers
            ctx.set(dut.cfg_flr_in_process, 0)           # the hard IP ends the FLR
            await ctx.tick().repeat(2)
            assert ctx.get(dut.core_cfg.flr) == 0
            assert ctx.get(dut.cfg_flr_done) == 0

    simulate(dut, bench)


def test_device_control_is_polled_through_cfg_mgmt():
    dut = UspAdapter(CoreConfig(io_queues=2))

    async def bench(ctx):
        reads = []
        cycle = 0
        while len(reads) < 3:
            await ctx.delay(1e-9)
            if ctx.get(dut.cfg_mgmt_read):
                assert ctx.get(dut.cfg_mgmt_addr) == DEVCTL_DWORD     # PCIe cap + 8, DWORDs
                reads.append(cycle)
                # The hard IP answers three cycles later (as cocotbext-pcie's model does).
                await ctx.tick().repeat(3)
                ctx.set(dut.cfg_mgmt_read_data, 1 << 8)
                ctx.set(dut.cfg_mgmt_read_write_done, 1)
                await ctx.tick()
                cycle += 4
                ctx.set(dut.cfg_mgmt_read_write_done, 0)
                await ctx.delay(1e-9)
                assert ctx.get(dut.cfg_mgmt_read) == 0      # one read per poll
            await ctx.tick()
            cycle += 1
            assert cycle < 4 * DEVCTL_POLL_CYCLES, "Device Control is not polled"
        gaps = [b - a for a, b in zip(reads, reads[1:], strict=False)]
        assert all(DEVCTL_POLL_CYCLES <= g <= DEVCTL_POLL_CYCLES + 8 for g in gaps), gaps

    simulate(dut, bench)


def test_read_request_reaches_rq_in_three_cycles():
    """A DMA read request from the core (an SQ entry fetch) taken in cycle 0 is a read TLP
    on RQ in cycle 3: the read engine's checks register (the skid buffer in front passes
    the request straight through), the register slice to the requester, the requester's
    output register (issue 10's doorbell -> SQ entry read latency)."""
    dut = UspAdapter(CoreConfig(io_queues=2))

    async def bench(ctx):
        ctx.set(dut.cfg_max_read_req, 2)
        ctx.set(dut.pcie_tfc_nph_av, 15)
        ctx.set(dut.rq.tready, 1)
        await ctx.tick().repeat(4)
        req = dut.dma_rd.req
        ctx.set(req.payload, {"addr": 0x1_2345_6040, "length": 64, "tag": 0})
        ctx.set(req.valid, 1)
        assert ctx.get(req.ready)
        cycles = 0
        await ctx.tick()
        ctx.set(req.valid, 0)
        while not ctx.get(dut.rq.tvalid):
            await ctx.tick()
            cycles += 1
            assert cycles < 10
        assert cycles + 1 == 3, f"on RQ {cycles + 1} cycles after the request"
        desc_addr = ctx.get(dut.rq.tdata) >> 2 & ((1 << 62) - 1)     # descriptor DW 0-1
        assert desc_addr == 0x1_2345_6040 >> 2

    simulate(dut, bench)
