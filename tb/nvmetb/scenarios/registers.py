"""Core-level scenarios, written once and run on every backend (Amaranth simulator,
Icarus, Verilator). Each is ``async def name(core: CheckedCore)``: every read is compared
with the reference model as it happens, and ``core.check()`` compares everything the
core emitted. Besides the model, a few values are asserted straight from the NVMe and
PCIe specifications, so that a mistake shared by model and RTL still fails.
"""

import random

from amaranth.lib import data

from nvmecore.layouts import (
    CAP_AMS_WRR_URGENT,
    DOORBELL_BASE,
    MSIX_ENTRY_BYTES,
    MSIX_PBA_BASE,
    MSIX_TABLE_BASE,
    NVME_VERSION_1_4,
    Aqa,
    ArbitrationMechanism,
    Cap,
    Cc,
    Csts,
    Reg,
    ShnType,
    ShstState,
)
from nvmetb.bench.harness import CheckedCore, Mismatch

__all__ = ["SCENARIOS"]

PAGE = 4096


def cc_value(**fields):
    base = {"iosqes": 6, "iocqes": 4}
    base.update(fields)
    return Cc.const(base).as_bits()


def csts(value):
    return data.Layout.cast(Csts).from_bits(value)


def expect(cond, message):
    if not cond:
        raise Mismatch(message)


async def set_admin_queues(core, asq=0x1_0000, acq=0x2_0000, asqs=31, acqs=31):
    await core.write(Reg.AQA, Aqa.const({"asqs": asqs, "acqs": acqs}).as_bits())
    await core.write(Reg.ASQ, asq, 8)
    await core.write(Reg.ACQ, acq, 8)


async def write_cc(core, **fields):
    """Write CC and poll CSTS until the controller has acted on it."""
    await core.write(Reg.CC, cc_value(**fields))
    return csts(await core.read_settled(Reg.CSTS))


async def enable(core, **cc):
    return await write_cc(core, en=1, **cc)


async def disable(core):
    status = await write_cc(core, en=0)
    expect(status.rdy == 0, "RDY still set after CC.EN = 0")


ALL_REGISTER_QWORDS = range(0, 0x48, 8)


async def read_all_registers(core):
    for addr in ALL_REGISTER_QWORDS:
        await core.read_raw(addr)
        await core.read(addr, 4)
        await core.read(addr + 4, 4)


# -- Scenarios -------------------------------------------------------------------------

async def reset_values(core: CheckedCore):
    await read_all_registers(core)
    cap = await core.read(Reg.CAP, 8)
    expect(cap >> 37 & 0xFF == 1, f"CAP.CSS must be NVM only (bit 37): {cap:#x}")
    expect(cap >> 24 & 0xFF == core.config.ready_timeout, "CAP.TO")
    expect(cap & 0xFFFF == core.config.max_queue_entries - 1, "CAP.MQES")
    expect(cap >> 16 & 1 == 1, "CAP.CQR")
    expect(data.Layout.cast(Cap).from_bits(cap).ams == CAP_AMS_WRR_URGENT,
           "CAP.AMS: weighted round robin with urgent class (and round robin)")
    expect(await core.read(Reg.VS) == NVME_VERSION_1_4 == 0x00010400, "VS")
    for offset in (0x40, 0x44, 0x100, 0xFFC, DOORBELL_BASE, DOORBELL_BASE + 4):
        expect(await core.read(offset) == 0, f"offset {offset:#x} must read 0")
    for vector in range(core.config.msix_vectors):
        ctrl = await core.read(MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * vector + 12)
        expect(ctrl == 1, f"MSI-X vector {vector} must reset masked")
    await core.read_raw(MSIX_PBA_BASE)
    await core.check()


async def read_only_and_reserved(core: CheckedCore):
    for reg in (Reg.CAP, Reg.CAP + 4, Reg.VS, Reg.CSTS, Reg.NSSR, Reg.CMBLOC, Reg.CMBSZ,
                0x18, 0x40, 0x44, 0x50, 0x7FC, 0xFF8, 0xFFC):
        await core.write(reg, 0xFFFF_FFFF)
    await core.write(Reg.CAP, (1 << 64) - 1, 8)
    # Reserved bits of CC (3:1, 31:24) and AQA (15:12, 31:28) stay zero.
    await core.write(Reg.CC, 0xFF00_000E)
    await core.write(Reg.AQA, 0xF000_F000)
    await read_all_registers(core)
    expect(await core.read(Reg.CC) == 0, "CC reserved bits must read 0")
    expect(await core.read(Reg.AQA) == 0, "AQA reserved bits must read 0")
    expect(csts(await core.read(Reg.CSTS)).rdy == 0, "CSTS is read-only")
    # The PBA is read-only too; past the last vector the table reads 0.
    await core.write(MSIX_PBA_BASE, (1 << 64) - 1, 8)
    await core.write(MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * core.config.msix_vectors,
                     (1 << 64) - 1, 8)
    await core.read_raw(MSIX_PBA_BASE)
    await core.read_raw(MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * core.config.msix_vectors)
    await core.check()


async def narrow_and_split_accesses(core: CheckedCore):
    # Byte and word writes honour byte enables on storage registers.
    await core.write(Reg.AQA, 0x0F0F_0F0F)
    await core.write(Reg.AQA + 1, 0x55, 1)
    await core.write(Reg.AQA + 2, 0xABCD, 2)
    for offset in range(Reg.AQA, Reg.AQA + 4):
        await core.read(offset, 1)
    await core.read(Reg.AQA + 2, 2)
    # 64-bit registers: one 64-bit access, or two 32-bit ones in either order.
    await core.write(Reg.ASQ, 0x1234_5678_9ABC_D000, 8)
    await core.write(Reg.ACQ + 4, 0x0000_0001)
    await core.write(Reg.ACQ, 0x0000_3000)
    expect(await core.read(Reg.ACQ, 8) == 0x1_0000_3000, "ACQ from two DWORD writes")
    await core.write(Reg.ASQ + 4, 0xFF, 1)
    await core.read(Reg.ASQ + 4)
    await core.read(Reg.ASQ, 8)
    # A QWORD spanning INTMC and CC acts as two DWORD writes.
    await core.write(Reg.INTMS, 0xFFFF_FFFF)
    await core.write_raw(Reg.INTMC, 0xFF, cc_value(en=0, mps=0) << 32 | 0x0000_00F0)
    await core.read_raw(Reg.INTMC)
    await core.read_raw(Reg.VS)
    await core.check()


async def interrupt_mask_registers(core: CheckedCore):
    await core.write(Reg.INTMS, 0x0000_0005)
    await core.write(Reg.INTMS, 0x8000_0000)
    expect(await core.read(Reg.INTMC) == 0x8000_0005, "INTMS is write-1-to-set")
    await core.write(Reg.INTMC, 0x0000_0001)
    expect(await core.read(Reg.INTMS) == 0x8000_0004, "INTMC is write-1-to-clear")
    await core.write(Reg.INTMS + 3, 0xFF, 1)
    await core.read(Reg.INTMS)
    await core.check()


async def enable_and_disable(core: CheckedCore):
    await set_admin_queues(core)
    status = await enable(core)
    expect(status.rdy == 1 and status.cfs == 0, f"enable failed: {status}")
    await read_all_registers(core)
    await disable(core)
    await read_all_registers(core)
    # AQA, ASQ and ACQ survive a controller reset; CC does not (QEMU).
    expect(await core.read(Reg.ASQ, 8) == 0x1_0000, "ASQ kept over a reset")
    expect(await core.read(Reg.CC) == 0, "CC cleared by a reset")
    status = await enable(core)
    expect(status.rdy == 1, "re-enable after a reset")
    await core.check()


async def enable_with_bad_setup(core: CheckedCore):
    bad = [
        ("misaligned ASQ", dict(asq=0x1_0800), {}),
        ("misaligned ACQ", dict(acq=0x2_0040), {}),
        ("ASQ size 1", dict(asqs=0), {}),
        ("ACQ size 1", dict(acqs=0), {}),
        ("CSS admin only", {}, dict(css=0b111)),
        ("CSS 1", {}, dict(css=1)),
        ("MPS 8 KiB", {}, dict(mps=1)),
        # CAP.AMS offers round robin and weighted round robin with urgent class only.
        ("AMS 010b", {}, dict(ams=0b010)),
        ("AMS vendor specific", {}, dict(ams=ArbitrationMechanism.VENDOR.value)),
    ]
    for what, queues, cc in bad:
        await set_admin_queues(core, **queues)
        status = await enable(core, **cc)
        expect(status.cfs == 1 and status.rdy == 0, f"enable with {what}: {status}")
        # Doorbells of a controller that failed to start name no queue.
        await core.write(DOORBELL_BASE, 1)
        await disable(core)
        expect(await core.read(Reg.CSTS) == 0, f"CSTS after reset from {what}")
    await set_admin_queues(core)
    expect((await enable(core)).rdy == 1, "a good set-up still enables")
    await disable(core)
    status = await enable(core, ams=ArbitrationMechanism.WRR_URGENT.value)
    expect(status.rdy == 1 and status.cfs == 0, f"enable with AMS WRR: {status}")
    await core.check()


async def shutdown(core: CheckedCore):
    await set_admin_queues(core)
    await enable(core)
    for shn in (ShnType.NORMAL, ShnType.ABRUPT):
        status = await write_cc(core, en=1, shn=shn)
        expect(status.shst == ShstState.COMPLETE and status.rdy == 1, f"shutdown {shn}")
        status = await write_cc(core, en=1, shn=ShnType.NONE)
        expect(status.shst == ShstState.NORMAL, "SHN cleared")
    # Shutdown, then reset: CSTS clears, and the controller can start again.
    await write_cc(core, en=1, shn=ShnType.NORMAL)
    await disable(core)
    expect((await enable(core)).rdy == 1, "enable after shutdown and reset")
    # Reset and shutdown in one write: the reset wins (CSTS = 0).
    status = await write_cc(core, en=0, shn=ShnType.NORMAL)
    expect(status.as_value().value == 0, "EN=0 with SHN: reset")
    # Shutdown while disabled still completes (QEMU acts on the SHN edge alone).
    expect((await write_cc(core, en=0, shn=ShnType.NORMAL)).shst == ShstState.COMPLETE,
           "shutdown while disabled")
    await core.check()


async def doorbells(core: CheckedCore):
    n = core.config.io_queues
    # Before enable no queue exists: every doorbell is an invalid-register event.
    await core.write(DOORBELL_BASE, 3)
    await core.write(DOORBELL_BASE + 4, 3)
    await set_admin_queues(core, asqs=7, acqs=15)
    await enable(core)
    await core.write(DOORBELL_BASE, 7)            # SQ0 tail, last valid value
    await core.write(DOORBELL_BASE, 8)            # = size: invalid value
    await core.write(DOORBELL_BASE + 4, 15)       # CQ0 head
    await core.write(DOORBELL_BASE + 4, 16)
    await core.write(DOORBELL_BASE, 0x0001_0003)  # reserved bits 31:16 are ignored
    # I/O queues made through the test port.
    await core.create_queue(1, False, 64)
    await core.create_queue(1, True, 32)
    await core.create_queue(n, False, core.config.max_queue_entries)
    await core.write(DOORBELL_BASE + 8, 63)
    await core.write(DOORBELL_BASE + 12, 31)
    await core.write(DOORBELL_BASE + 12, 32)
    await core.write(DOORBELL_BASE + 8 * n, core.config.max_queue_entries - 1)
    await core.write(DOORBELL_BASE + 8 * n + 4, 0)          # CQ n does not exist
    await core.write(DOORBELL_BASE + 8 * (n + 1), 0)        # beyond the queue count
    await core.write(DOORBELL_BASE + 0xFF8, 0)              # last doorbell slot
    # One QWORD write rings both doorbells of a pair, SQ first.
    await core.write(DOORBELL_BASE + 8, 5 | 70 << 32, 8)
    # Doorbell writes without all four bytes are ignored; doorbells read 0.
    await core.write(DOORBELL_BASE + 8, 1, 2)
    await core.write(DOORBELL_BASE + 9, 1, 1)
    await core.read(DOORBELL_BASE + 8, 8)
    await core.delete_queue(1, True)
    await core.write(DOORBELL_BASE + 12, 1)
    # A controller reset deletes every queue.
    await disable(core)
    await core.write(DOORBELL_BASE + 8, 1)
    await core.write(DOORBELL_BASE, 1)
    await core.check()
    expect(len(core.model.doorbells) >= 5 and len(core.model.events) >= 8,
           "the scenario exercised both outcomes")


async def msix_table(core: CheckedCore):
    vectors = core.config.msix_vectors
    for v in range(vectors):
        base = MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * v
        if v % 2:
            await core.write(base, 0xFEE0_0000 | v << 4 | 3, 8)      # bits 1:0 read 0
            await core.write(base + 8, 0x4000 + v | 1 << 32, 8)
        else:
            await core.write(base + 4, v)
            await core.write(base, 0xFEE0_1000 | v << 4)
            await core.write(base + 8, 0x100 + v)
            await core.write(base + 12, 0xFFFF_FFFE)                 # unmask
    await core.write(MSIX_TABLE_BASE + 9, 0xAA, 1)
    for v in range(vectors):
        base = MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * v
        await core.read_raw(base)
        await core.read_raw(base + 8)
        await core.read(base + 12)
    expect(await core.read(MSIX_TABLE_BASE) & 3 == 0, "message address bits 1:0 are 0")
    await core.check()


async def program_vectors(core, vectors, masked=()):
    for v in vectors:
        base = MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * v
        await core.write(base, 0xFEE0_0000 + 0x10 * v, 8)
        await core.write(base + 8, (0x20 + v) | int(v in masked) << 32, 8)


async def msix_messages(core: CheckedCore):
    vectors = core.config.msix_vectors
    await program_vectors(core, range(vectors), masked={1, 2})
    await core.set_cfg(msix_enable=True)
    await core.irq(0)
    await core.irq(3 % vectors)
    await core.irq(1)                         # masked: PBA bit
    await core.irq(2)
    await core.irq(2)
    await core.check()
    expect(len(core.model.dma_writes) == 2, "two unmasked vectors sent")
    pba = await core.read(MSIX_PBA_BASE, 8)
    expect(pba == 0b110, f"PBA {pba:#x}")
    await core.write(MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * 2 + 12, 0)   # unmask vector 2
    await core.check()
    expect(await core.read(MSIX_PBA_BASE, 8) == 0b010, "PBA bit cleared when sent")
    # Function mask holds everything back; releasing it flushes, lowest vector first.
    await core.set_cfg(msix_function_mask=True)
    await core.irq(0)
    await core.irq(vectors - 1)
    await core.read(MSIX_PBA_BASE, 8)
    await core.write(MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * 1 + 12, 0)
    await core.set_cfg(msix_function_mask=False)
    await core.check()
    # Requests for vectors the table does not have are dropped.
    await core.irq(vectors)
    await core.irq(0x7FF)
    for v in range(min(vectors, 8)):
        await core.irq(v)
    await core.read_raw(MSIX_PBA_BASE)
    await core.check()


async def intx(core: CheckedCore):
    await core.irq(0)
    await core.check()
    expect(core.model.intx, "INTx asserted with MSI-X disabled")
    await core.write(Reg.INTMS, 1)
    await core.check()
    await core.write(Reg.INTMC, 1)
    await core.irq(5)
    await core.irq(0, deassert=True)
    await core.check()
    await core.irq(5, deassert=True)
    await core.check()
    expect(not core.model.intx, "INTx released")
    # With MSI-X enabled INTx stays low, and a controller reset drops pending levels.
    await core.irq(3)
    await core.set_cfg(msix_enable=True)
    await core.check()
    await core.set_cfg(msix_enable=False)
    await core.check()
    await set_admin_queues(core)
    await enable(core)
    await disable(core)
    await core.check()
    expect(not core.model.intx, "controller reset clears INTx")


async def resets(core: CheckedCore):
    vectors = core.config.msix_vectors
    await program_vectors(core, range(vectors), masked={0})
    await core.set_cfg(msix_enable=True)
    await core.irq(0)                          # pending in the PBA
    await set_admin_queues(core)
    await enable(core)
    await core.create_queue(1, False, 16)
    await disable(core)                        # the MSI-X table and PBA survive
    for v in range(vectors):
        await core.read_raw(MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * v)
        await core.read_raw(MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * v + 8)
    expect(await core.read(MSIX_PBA_BASE) == 1, "PBA survives a controller reset")
    await core.write(Reg.INTMS, 0xF0)
    await core.flr()                           # ... but not a function-level reset
    await read_all_registers(core)
    for v in range(vectors):
        await core.read_raw(MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * v)
        await core.read_raw(MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * v + 8)
    await core.read_raw(MSIX_PBA_BASE)
    await core.write(DOORBELL_BASE + 8, 1)      # queue 1 is gone
    await core.check()


async def random_accesses(core: CheckedCore, seed=1, count=300):
    """Seeded random register traffic over every region, reads compared as they go."""
    rng = random.Random(seed)
    vectors = core.config.msix_vectors
    regions = [
        (0x000, 0x048), (0x000, 0x1000),
        (DOORBELL_BASE, DOORBELL_BASE + 8 * (core.config.io_queues + 2)),
        (MSIX_TABLE_BASE, MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * (vectors + 1)),
        (MSIX_PBA_BASE, MSIX_PBA_BASE + 16),
    ]
    await set_admin_queues(core)
    await core.set_cfg(msix_enable=True)
    for _ in range(count):
        low, high = rng.choice(regions)
        addr = rng.randrange(low, high) & ~7
        be = rng.choice([0xFF, 0x0F, 0xF0, 1 << rng.randrange(8), rng.randrange(1, 256)])
        kind = rng.random()
        if kind < 0.45:
            await core.read_raw(addr, be)
        elif kind < 0.9:
            value = rng.getrandbits(64)
            if addr == Reg.CC - 4 and be & 0xF0 and rng.random() < 0.7:
                value = (value & 0xFFFF_FFFF) | cc_value(
                    en=rng.getrandbits(1), shn=rng.choice(list(ShnType))) << 32
            await core.write_raw(addr, be, value)
            if addr == Reg.CC - 4 and be & 0xF0:
                await core.read_settled(Reg.CSTS)
            if MSIX_TABLE_BASE <= addr < MSIX_PBA_BASE:
                # A message being sent reads its entry a cycle after it starts; changing
                # an unmasked entry under it is undefined [PCIe 4.0 §6.1.4.2].
                await core.wait(4)
        else:
            await core.irq(rng.randrange(vectors + 1), deassert=rng.random() < 0.2)
            await core.wait(4)
    await core.check()


SCENARIOS = {f.__name__: f for f in (
    reset_values, read_only_and_reserved, narrow_and_split_accesses,
    interrupt_mask_registers, enable_and_disable, enable_with_bad_setup, shutdown,
    doorbells, msix_table, msix_messages, intx, resets, random_accesses,
)}
