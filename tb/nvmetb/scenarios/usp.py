"""Scenarios for the UltraScale+ adapter itself, run through ``usp_backend`` with the
reference model in lock step: what cocotbext-pcie's root complex cannot produce.

Register-level (``async def name(core: CheckedCore)``, the backend a
:class:`~nvmetb.bench.usp_backend.UspBackend`):

- :func:`back_to_back_accesses`: reads sent as fast as the credits allow, with writes
  between them, against the hard IP's non-posted credit counter;
- :func:`completer_requests`: reads of 1 to 32 DWORDs at any DWORD offset, a 4-DWORD
  write, and requests the completer must refuse (a read over 128 B, an I/O read);
- :func:`intx_handshake`: INTx toggled faster than the hard IP acknowledges messages.

Host-driver (``async def name(host, bench)``; ``bench.core.dut.dma`` is the
:class:`~nvmetb.dma.usp_ports.UspDma`):

- :func:`fetch_fault`: an SQ fetch answered with UR, CA, a poisoned completion or not at
  all (time-out): CSTS.CFS as the model says, then recovery;
- :func:`interleaved_fetches`: several multi-entry fetches in flight, their completions
  split at every RCB, interleaved and straddled;
- :func:`flr_in_traffic`: a function-level reset while I/O commands and an Identify
  transfer are in flight, then bring-up again;
- :func:`extended_tags`: the tag range with Extended Tag Field Enable on and off.
"""

import random

from cocotbext.pcie.core.tlp import CplStatus, TlpType

from nvmecore.layouts import (
    MSIX_ENTRY_BYTES,
    MSIX_PBA_BASE,
    MSIX_TABLE_BASE,
    AdminOpcode,
    NvmOpcode,
    Reg,
)
from nvmecore.pcie.usp_completer import NP_CREDITS
from nvmetb.bench.harness import CheckedCore, Mismatch
from nvmetb.bench.usp_backend import NP_CREDIT_LIMIT
from nvmetb.dma.usp_ports import SHORT_TAGS
from nvmetb.model import split_access

from .queues import G, expect
from .registers import program_vectors, set_admin_queues

__all__ = ["REGISTER_SCENARIOS", "back_to_back_accesses", "completer_requests",
           "intx_handshake",
           "fetch_fault", "interleaved_fetches", "flr_in_traffic", "extended_tags"]

FLUSH = {"cdw0": {"opc": NvmOpcode.FLUSH.value}, "nsid": 1}
GET_FEATURES = {"cdw0": {"opc": AdminOpcode.GET_FEATURES.value}, "cdw10": 7}
#: Storage registers whose value is what was last written (under their masks).
STORAGE = (Reg.INTMS, Reg.AQA, Reg.ASQ, Reg.ACQ)


def _check(cond, message):
    if not cond:
        raise Mismatch(message)


# -- Register level -----------------------------------------------------------------------

async def back_to_back_accesses(core: CheckedCore, seed=3, count=96):
    """Reads back to back, each on a credit the completer granted, some right behind a
    write to the same register: every read returns what the model says, in order. The
    completer never lets the hard IP hold more than two credits for it, and reads did
    overlap (more than one in flight)."""
    backend = core.dut
    rng = random.Random(seed)
    vectors = core.config.msix_vectors
    await set_admin_queues(core)
    await program_vectors(core, range(vectors), masked=set(range(vectors)))
    addrs = [0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38, 0x40, MSIX_PBA_BASE,
             *(MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * v for v in range(vectors))]
    ops, expected = [], []
    for _ in range(count):
        if rng.random() < 0.3:
            addr, be, value = split_access(rng.choice(STORAGE), 4, rng.getrandbits(32))
            ops.append(("w", addr, be, value))
            core.model.reg_write(addr, value, be)
            ops.append(("r", addr, be))
        else:
            ops.append(("r", rng.choice(addrs), rng.choice([0xFF, 0x0F, 0xF0, 0x3C, 0x81])))
        if ops[-1][0] == "r":
            _, addr, be = ops[-1]
            expected.append((addr, be, core.model.reg_read(addr, be)))
    got = await backend.bus_burst(ops)
    for (addr, be, want), value in zip(expected, got, strict=True):
        mask = backend.read_mask(be)
        core.reads += 1
        _check(value & mask == want & mask,
               f"back-to-back read of {addr:#06x} (be {be:#04x}): RTL {value:#018x}, "
               f"model {want:#018x}")
    _check(backend.most_np <= NP_CREDITS, f"the completer let the hard IP hold "
           f"{backend.most_np} non-posted credits (at most {NP_CREDITS})")
    _check(backend.most_unanswered >= 2, "reads never overlapped: not back to back")
    _check(backend.credits < NP_CREDIT_LIMIT, "credit counter saturated")
    await core.check()


async def completer_requests(core: CheckedCore):
    """Reads of 1 to 32 DWORDs starting at even and odd DWORDs, compared DWORD by DWORD
    with the model; a 4-DWORD write; a zero-length read; and requests answered with
    Unsupported Request (a read of 33 DWORDs, an I/O read), after which reads work."""
    backend = core.dut
    vectors = core.config.msix_vectors
    await program_vectors(core, range(vectors), masked={0})
    await set_admin_queues(core)

    def model_dwords(offset, dwords):
        first = offset // 8 * 8
        qwords = b"".join(core.model.reg_read(a).to_bytes(8, "little")
                          for a in range(first, offset + 4 * dwords + 7, 8))
        return qwords[offset - first:offset - first + 4 * dwords]

    for offset, dwords in ((0x00, 1), (0x04, 1), (0x04, 2), (0x00, 4), (0x1C, 3),
                           (MSIX_TABLE_BASE, 4), (MSIX_TABLE_BASE + 4, 7),
                           (MSIX_TABLE_BASE, 32), (MSIX_TABLE_BASE + 0x44, 32)):
        tlp, cpl, frame = await backend.raw_read(TlpType.MEM_READ_64, offset, dwords)
        backend._expect(tlp, cpl, frame)
        want = model_dwords(offset, dwords)
        _check(bytes(cpl.data) == want, f"read of {dwords} DW at {offset:#x}: RTL "
               f"{bytes(cpl.data).hex()}, model {want.hex()}")
        core.reads += 1
    # A 4-DWORD write (a 16-byte copy into an MSI-X entry), read back.
    entry = MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * (vectors - 1)
    payload = (0xFEE0_1230).to_bytes(4, "little") + bytes(4) + \
        (0x55).to_bytes(4, "little") + (1).to_bytes(4, "little")
    await backend.raw_write(entry, payload)
    core.model.reg_write(entry, int.from_bytes(payload[:8], "little"))
    core.model.reg_write(entry + 8, int.from_bytes(payload[8:], "little"))
    await core.read_raw(entry)
    await core.read_raw(entry + 8)
    # Zero-length read: one DWORD, no byte enabled; it completes.
    tlp, cpl, frame = await backend.raw_read(TlpType.MEM_READ_64, Reg.CSTS, 1, 0, 0)
    backend._expect(tlp, cpl, frame)
    # Refused: longer than 128 B, and I/O space. Each UR completion is an advisory
    # non-fatal error, reported to the hard IP as correctable [PCIe 4.0 §6.2.3.2.4.1].
    _check(backend.err_cor == backend.err_uncor == 0, "errors reported before any")
    tlp, cpl, frame = await backend.raw_read(TlpType.MEM_READ_64, MSIX_TABLE_BASE, 33)
    backend._expect(tlp, cpl, frame, status=CplStatus.UR)
    tlp, cpl, frame = await backend.raw_read(TlpType.IO_READ, 0x10, 1, 0xF, 0)
    backend._expect(tlp, cpl, frame, status=CplStatus.UR)
    await core.wait(4)
    _check((backend.err_cor, backend.err_uncor) == (2, 0),
           f"{backend.err_cor} correctable and {backend.err_uncor} uncorrectable errors "
           "reported on cfg_err_*_in for two UR completions (2 and 0 wanted)")
    await core.read_raw(Reg.CAP)
    await core.read(Reg.CSTS)
    await core.check()


async def intx_handshake(core: CheckedCore):
    """INTx raised and dropped faster than the hard IP sends its messages (the test port
    toggles a vector's level every few cycles): the adapter changes cfg_interrupt_int only
    after cfg_interrupt_sent (the backend fails any earlier change), and the level the
    host ends up with is the model's."""
    backend = core.dut
    for level in (True, False, True, False, True):
        for _ in range(3):
            await core.irq(0, deassert=not level)
            await core.irq(0, deassert=level)
        await core.irq(0, deassert=not level)
        await core.check()
        _check(backend.intx() == level, f"INTx {backend.intx()} on the link, {level} wanted")
    _check(backend.intx_messages >= 5, f"only {backend.intx_messages} INTx messages")
    await core.irq(0, deassert=True)
    await core.check()


REGISTER_SCENARIOS = {f.__name__: f for f in (back_to_back_accesses, completer_requests,
                                              intx_handshake)}


# -- Host level ---------------------------------------------------------------------------

async def fetch_fault(host, bench, kind):
    """Four admin commands fetched in one read (split at every RCB on RC), the read
    answered as ``kind`` says: CSTS.CFS as the model says, and only after the
    completion time-out for a dropped completion; a controller reset recovers."""
    dma = bench.core.dut.dma
    timeout_us = bench.core.config.completion_timeout / 250
    await host.bring_up(io_queues=1, queue_entries=8)
    asq = host.sqs[0]
    bench.fail_reads(asq.base, asq.base + 64 * asq.entries, kind=kind)
    for _ in range(4):
        await host.submit(0, GET_FEATURES, ring=False)
    await host.ring_sq(0)
    if kind == "drop":
        await bench.wait(timeout_us / 2)
        csts = await bench.core.read(Reg.CSTS, compare=False)
        _check(not csts >> 1 & 1, f"CSTS {csts:#x}: CFS before the completion time-out")
        await bench.wait(timeout_us)
    await bench.wait(2)
    csts = await bench.core.read_settled(Reg.CSTS)
    _check(csts >> 1 & 1, f"CSTS {csts:#x}: CFS not set after a {kind} fetch")
    _check(dma.faults[kind] >= 1, f"no read was answered with {kind}")
    # Reported to the hard IP as PCIe classes them [PCIe 4.0 §6.2.3.2.4]: poisoned, UR and
    # CA completions are advisory non-fatal (correctable), a completion time-out is not.
    backend = bench.core.dut
    got = (backend.err_cor > 0, backend.err_uncor > 0)
    want = (False, True) if kind == "drop" else (True, False)
    _check(got == want, f"a {kind} fetch: {backend.err_cor} correctable and "
           f"{backend.err_uncor} uncorrectable errors on cfg_err_*_in")
    bench.clear_faults()
    await host.disable()
    bench.forget_io()
    await host.bring_up(io_queues=1, queue_entries=8)
    expect(await host.get_features(0x07, check=False), G.SUCCESS, False, "after recovery")
    if kind == "drop":
        # Round robin comes back to the tags that never got their completions: the RQ
        # checker fails a reuse before the time-out.
        first = dma.reads
        while dma.reads - first <= SHORT_TAGS:
            await host.get_features(0x07, check=False)


async def interleaved_fetches(host, bench):
    """Eight commands waiting in each of four I/O SQs, the doorbells rung back to back:
    multi-entry fetches in flight together, their completions split at every RCB,
    interleaved across tags and straddled; every command completes as the model says."""
    dma = bench.core.dut.dma
    await host.bring_up(io_queues=4, queue_entries=16)
    cids = []
    for _ in range(2):
        for qid in range(1, 5):
            for _ in range(8):
                cids.append((qid, await host.submit(qid, FLUSH, ring=False)))
        for qid in range(1, 5):
            await host.ring_sq(qid)
        for qid, cid in cids:
            expect(await host.wait_completion(qid, cid), G.SUCCESS, False, "Flush")
        cids.clear()
    _check(dma.interleaved > 0, "no completions were interleaved across tags")
    if dma.rc_segments > 1:
        _check(dma.straddled > 0, "no completions were straddled")


async def flr_in_traffic(host, bench):
    """A function-level reset while I/O commands complete and an Identify's data is on
    its way: ``cfg_flr_done`` answers, RQ stays well formed (no TLP cut short), then the
    controller comes up again from scratch and runs commands; the hard IP never holds more
    non-posted credits than the completer wants, before or after the reset."""
    backend = bench.core.dut
    await host.bring_up(io_queues=2, queue_entries=8)
    await bench.compare()                       # everything up to here, exactly
    target = bench.alloc(4096, name="identify-at-flr")
    writes = len(bench.memory.writes)
    for i in range(6):
        await host.submit(1 + i % 2, FLUSH)
    await host.submit(0, {"cdw0": {"opc": AdminOpcode.IDENTIFY.value}, "cdw10": 1,
                          "prp1": target})
    for _ in range(4000):                       # until the Identify data is moving
        if any(w.addr >= target and w.addr < target + 4096
               for w in bench.memory.writes[writes:]):
            break
        await bench.core.wait(1)
    else:
        raise Mismatch("the Identify data never started")
    pulses = backend.flr_done_pulses
    await bench.core.flr()
    _check(backend.flr_done_pulses == pulses + 1,
           f"cfg_flr_done pulsed {backend.flr_done_pulses - pulses} times")
    bench.forget_io(admin=True)
    await bench.wait(2)
    _check(backend.dma.outstanding == 0, "reads outstanding after the reset")
    await host.bring_up(io_queues=2, queue_entries=8)
    for i in range(4):
        cid = await host.submit(1 + i % 2, FLUSH)
        expect(await host.wait_completion(1 + i % 2, cid), G.SUCCESS, False, "Flush")
    _check(backend.flr_done_pulses == pulses + 1, "cfg_flr_done pulsed outside a reset")
    # The hard IP's non-posted credit count survives the FLR: the completer must not grant
    # its credits again on top of the ones the IP still holds.
    _check(backend.most_np <= NP_CREDITS, f"the hard IP held {backend.most_np} non-posted "
           f"credits for the completer (at most {NP_CREDITS}), across the FLR")


async def extended_tags(host, bench, enabled):
    """Bring-up of every queue pair (more reads than 32 tags): tags wrap at 32 without
    Extended Tag Field Enable and use 32 and above with it (the RQ checker fails any tag
    of 32 or more while it is off)."""
    dma = bench.core.dut.dma
    await host.bring_up(io_queues=bench.core.config.io_queues, queue_entries=8)
    for _ in range(8):
        await host.get_features(0x07, check=False)
    _check(dma.reads > SHORT_TAGS, f"only {dma.reads} reads")
    top = max(dma.tags)
    if enabled:
        _check(top >= SHORT_TAGS, f"extended tags on, but the highest tag was {top}")
    else:
        _check(top < SHORT_TAGS and len(dma.tags) == SHORT_TAGS,
               f"extended tags off: tags {sorted(dma.tags)}")
