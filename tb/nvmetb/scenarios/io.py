"""NVM I/O scenarios: the host driver's Read, Write, Compare, Flush, Write Zeroes,
Dataset Management and Format NVM against docs/io-commands.md, written once for every
bench.

Each is ``async def name(host, bench, **knobs)``. ``bench`` is the lock-step bench
transport (:class:`~nvmetb.bench.transport.BenchTransport`) or the model alone
(:class:`~nvmetb.transports.model.ModelTransport`); a scenario uses only what both
offer: ``config``, ``fail_reads`` / ``clear_faults``, ``forget_io``, ``compare`` and the
transport's host memory. The runner calls ``bench.compare()`` at the end; the driver
checks CIDs, SQID, SQHD, phase, reserved DW0/DW1 and every buffer as commands complete,
and the namespace shadow (:meth:`~nvmetb.host.io.NvmIo.track_namespace`) checks every
Read and Compare against what the host wrote.

The defaults are sized for a slow simulator; the knobs (``count``, ``blocks``, ...) make
longer runs. :data:`IO_SCENARIOS` lists them; :data:`MEDIA_SCENARIOS` need a bench whose
backend can report media errors (``bench.media_faults``).
"""

import logging
import random

from nvmecore.layouts import CommandSpecificStatus, GenericStatus, MediaStatus, NvmOpcode
from nvmecore.nvm_layouts import (
    BROADCAST_NSID,
    DSM_MAX_RANGES,
    PAGE_BYTES,
    SECTOR_BYTES,
    SecureErase,
)
from nvmetb.bench.harness import Mismatch
from nvmetb.host import MAX_BLOCKS, IoCommand, NvmeHost, PrpLayout, Status, pattern
from nvmetb.host.prp import prp_pieces

__all__ = ["IO_SCENARIOS", "MEDIA_SCENARIOS", "expect", "io_bring_up"]

log = logging.getLogger("tb")

G, C, M = GenericStatus, CommandSpecificStatus, MediaStatus
M64 = (1 << 64) - 1


def expect(what, code, dnr=None, label=""):
    """``what`` (an :class:`IoCommand`, a CQE, or a Read's ``(cqe, data)``) completed
    with ``code`` (and DNR as given)."""
    if isinstance(what, tuple):
        what = what[0]
    cqe = what.cqe if isinstance(what, IoCommand) else what
    status = Status.of(cqe)
    if not status.is_(code, dnr=dnr):
        raise Mismatch(f"{label or what}: got {status}, expected {code.name}"
                       f"{'' if dnr is None else ' +DNR' if dnr else ' no DNR'}")


def _span(piece):
    """A PRP piece ``(address, length)`` as the ``(start, stop)`` fail_reads takes."""
    return piece[0], piece[0] + piece[1]


def check(condition, message):
    if not condition:
        raise Mismatch(message)


async def io_bring_up(host: NvmeHost, bench, *, entries=64, verify_io=False, shadow=True):
    """Every I/O queue pair of the build, ``entries`` deep (within CAP.MQES), then the
    namespace shadow."""
    n = bench.config.io_queues
    pairs = await host.bring_up(io_queues=n, queue_entries=entries, verify_io=verify_io)
    check(pairs == n, f"{pairs} I/O queue pairs created, {n} wanted")
    if shadow:
        host.track_namespace()
    return sorted(q for q in host.sqs if q)


def _long(host):
    """A time-out for commands that touch the whole namespace (Format NVM, Write Zeroes
    of everything): the backend moves it at one beat per cycle."""
    return 20 * host.command_timeout_us


# -- io_round_trip -----------------------------------------------------------------------

async def io_round_trip(host: NvmeHost, bench, *, blocks=8):
    """The bring-up's own check (a pattern written and read back through every I/O
    queue), then every queue's blocks read back through the next queue, with the data
    at another in-page offset: what one queue wrote, every queue reads."""
    qids = await io_bring_up(host, bench, verify_io=True)
    size = host.lba_bytes()
    writes = []
    for i, qid in enumerate(qids):
        data = pattern(("round trip", qid), blocks * size)
        writes.append(await host.submit_write(qid, i * blocks, data,
                                              layout=PrpLayout(offset=4 * i)))
    await host.io_wait_all(writes, check=True)
    reads = [await host.submit_read(qids[(i + 1) % len(qids)], i * blocks, blocks,
                                    layout=PrpLayout(offset=512 * (i % 8)))
             for i in range(len(qids))]
    for cmd, write in zip(await host.io_wait_all(reads, check=True), writes, strict=True):
        check(cmd.data == write.payload, f"{cmd}: data differs from {write}")


# -- io_status_paths ---------------------------------------------------------------------

async def io_status_paths(host: NvmeHost, bench):
    """Every error status of docs/io-commands.md that a bench without media faults can
    provoke: the gates in their order, MDTS, LBA range (overflow included), PSDT, FUSE,
    namespaces 0, 2 and FFFFFFFFh (Flush takes the last), Invalid PRP Offset at PRP1,
    PRP2, a list entry and a chain pointer, Data Transfer Error from a failing PRP list
    read and from a failing data read. A command that must fail uses buffers called
    "failing"; afterwards ordinary commands still work."""
    qids = await io_bring_up(host, bench)
    q = qids[0]
    size = host.lba_bytes()
    nsze = host.namespace_blocks()
    mdts_blocks = host.mdts_bytes // size
    fail = {"name": "failing"}

    # Namespaces. Flush bypasses every other gate and takes FFFFFFFFh.
    for nsid in (0, 2, BROADCAST_NSID):
        expect(await host.read(q, 0, 1, nsid=nsid, check=False, **fail), G.INVALID_NAMESPACE,
               True, f"Read NSID {nsid:#x}")
    for nsid in (0, 2):
        expect(await host.flush(q, nsid=nsid, check=False), G.INVALID_NAMESPACE, True,
               f"Flush NSID {nsid:#x}")
    expect(await host.flush(q, nsid=BROADCAST_NSID), G.SUCCESS, False, "Flush FFFFFFFFh")
    expect(await host.flush(q, fuse=1, check=False), G.SUCCESS, False, "Flush with FUSE")
    # The gates' order: NSID, (Format), FUSE, opcode, PSDT.
    expect(await host.read(q, 0, 1, nsid=0, fuse=1, psdt=1, check=False, **fail),
           G.INVALID_NAMESPACE, True, "NSID before FUSE")
    expect(await host.read(q, 0, 1, fuse=1, check=False, **fail), G.INVALID_FIELD, False,
           "FUSE")
    unknown = await host.io_submit(q, 0x7F, fuse=1)
    expect(await host.io_wait(unknown), G.INVALID_FIELD, False, "FUSE before the opcode")
    for opcode in (0x04, 0x0C, 0x7F, 0x81):          # Write Uncorrectable, Verify, ...
        assert opcode not in {op.value for op in NvmOpcode}
        cmd = await host.io_submit(q, opcode, psdt=1)
        expect(await host.io_wait(cmd), G.INVALID_OPCODE, True, f"opcode {opcode:#x}")
    # PSDT: refused for the commands that move data, ignored by the others.
    data = pattern("psdt", size)
    for label, submit in (
            ("Read", lambda: host.submit_read(q, 0, 1, psdt=1, **fail)),
            ("Write", lambda: host.submit_write(q, 0, data, psdt=1, **fail)),
            ("Compare", lambda: host.submit_compare(q, 0, data, psdt=1, **fail)),
            ("DSM AD", lambda: host.submit_dsm(q, [(0, 1)], psdt=1, **fail))):
        expect(await host.io_wait(await submit()), G.INVALID_FIELD, True,
               f"PSDT on {label}")
    expect(await host.write_zeroes(q, nsze - 1, 1, psdt=1), G.SUCCESS, False,
           "PSDT on Write Zeroes")
    expect(await host.flush(q, psdt=1), G.SUCCESS, False, "PSDT on Flush")
    # Dataset Management without AD succeeds at once and reads nothing: PRP1 points to
    # no buffer at all (host memory would report a read there).
    expect(await host.dataset_management(q, [(0, 1)], ad=False, prps=(PAGE_BYTES, 0)),
           G.SUCCESS, False, "DSM without AD")

    # MDTS, then the LBA range (MDTS is checked first).
    expect(await host.read(q, 0, mdts_blocks + 1, check=False, **fail), G.INVALID_FIELD,
           True, "Read beyond MDTS")
    expect(await host.write(q, nsze, bytes((mdts_blocks + 1) * size), check=False, **fail),
           G.INVALID_FIELD, True, "Write beyond MDTS and the namespace")
    for slba, blocks in ((nsze - 1, 2), (nsze, 1), (M64, 1), (M64, 2), (M64 - 7, 16),
                         (1 << 63, 1)):
        expect(await host.read(q, slba, blocks, check=False, **fail), G.LBA_OUT_OF_RANGE,
               True, f"Read LBA {slba:#x} +{blocks}")
    expect(await host.write(q, nsze - 1, bytes(2 * size), check=False, **fail),
           G.LBA_OUT_OF_RANGE, True, "Write past the end")
    expect(await host.compare(q, M64, bytes(2 * size), check=False, **fail),
           G.LBA_OUT_OF_RANGE, True, "Compare overflowing")
    expect(await host.write_zeroes(q, nsze - 1, 2, check=False), G.LBA_OUT_OF_RANGE, True,
           "Write Zeroes past the end")
    expect(await host.write_zeroes(q, M64, 2, deac=True, check=False), G.LBA_OUT_OF_RANGE,
           True, "Write Zeroes overflowing")
    # Write Zeroes has no MDTS: as many blocks as NLB holds, within the namespace.
    expect(await host.write_zeroes(q, 0, min(nsze, MAX_BLOCKS), timeout_us=_long(host)),
           G.SUCCESS, False, "Write Zeroes beyond MDTS")

    # Invalid PRP Offset, wherever it hides.
    pages = 3 * PAGE_BYTES // size
    chained = 6 * PAGE_BYTES // size              # 6 pages: PRP1 + a list of 5
    for label, blocks, layout in (
            ("PRP1 not DWORD aligned", 1, PrpLayout(bad_prp1=2)),
            ("PRP1 bit 0", 1, PrpLayout(offset=0x200, bad_prp1=1)),
            ("PRP2 data page not page aligned", 2 * PAGE_BYTES // size,
             PrpLayout(bad_prp2=8)),
            ("PRP2 list pointer not QWORD aligned", pages, PrpLayout(bad_prp2=4)),
            ("first list entry", pages, PrpLayout(bad_entry=0)),
            ("last list entry", pages, PrpLayout(offset=8, bad_entry=2)),
            ("entry after the chain", chained, PrpLayout(chain_after=2, bad_entry=3)),
            ("chain pointer", chained, PrpLayout(chain_after=2, bad_chain=True))):
        for op in ("read", "write"):
            if op == "read":
                cmd = await host.submit_read(q, 0, blocks, layout=layout, **fail)
            else:
                cmd = await host.submit_write(q, 0, pattern(label, blocks * size),
                                              layout=layout, **fail)
            expect(await host.io_wait(cmd), G.INVALID_PRP_OFFSET, True, f"{op}: {label}")
    cmd = await host.submit_dsm(q, [(i, 1) for i in range(DSM_MAX_RANGES)], layout=PrpLayout(
        offset=0x800, bad_prp2=0x10), name="failing")
    expect(await host.io_wait(cmd), G.INVALID_PRP_OFFSET, True, "DSM ranges PRP2")

    # Data Transfer Error: a PRP list page, then host data, that cannot be read. No DNR.
    await host.write(q, 0, pattern("before DTE", chained * size))
    for label, layout, failing in (
            ("PRP list", PrpLayout(), lambda prp: prp.list_range(0)),
            ("second PRP list", PrpLayout(chain_after=2), lambda prp: prp.list_range(1)),
            ("data page", PrpLayout(), lambda prp: _span(prp.pieces[2]))):
        for op in ("read", "write", "compare"):
            if label == "data page" and op == "read":
                continue                             # a Read only writes its data pages
            payload = pattern((label, op), chained * size)
            if op == "read":
                cmd = await host.submit_read(q, 0, chained, layout=layout, ring=False, **fail)
            elif op == "write":
                cmd = await host.submit_write(q, 0, payload, layout=layout, ring=False,
                                              **fail)
            else:
                cmd = await host.submit_compare(q, 0, payload, layout=layout, ring=False,
                                                **fail)
            bench.fail_reads(*failing(cmd.prp))
            await host.ring_sq(q)
            expect(await host.io_wait(cmd), G.DATA_TRANSFER_ERROR, False, f"{op}: {label}")
            bench.clear_faults()
    cmd = await host.submit_dsm(q, [(0, 1), (4, 2)], ring=False,
                                layout=PrpLayout(offset=PAGE_BYTES - 16))
    bench.fail_reads(*_span(cmd.prp.pieces[1]))
    await host.ring_sq(q)
    expect(await host.io_wait(cmd), G.DATA_TRANSFER_ERROR, False, "DSM ranges unreadable")
    bench.clear_faults()

    # Everything still works.
    data = pattern("after", 4 * size)
    await host.write(qids[-1], 8, data, layout=PrpLayout(offset=12))
    _, back = await host.read(q, 8, 4)
    check(back == data, "read after the error paths differs")


# -- prp_layouts ---------------------------------------------------------------------------

def _layout_cases(size, mdts):
    """(label, bytes, write layout, read layout): every PRP shape of the contract."""
    page = PAGE_BYTES
    cases = [
        ("one block at a DWORD offset", size, PrpLayout(offset=4),
         PrpLayout(offset=page - 4)),
        ("one page", page, PrpLayout(), PrpLayout(offset=page - 512)),
        ("two pages through PRP2", 2 * page, PrpLayout(), PrpLayout(offset=0x10)),
        ("PRP1 and PRP2, both partial", page, PrpLayout(offset=0x800), PrpLayout(offset=8)),
        ("list of two", 3 * page, PrpLayout(), PrpLayout(offset=0x300, contiguous=True)),
        ("list with an offset", 5 * page, PrpLayout(list_offset=0x7F0),
         PrpLayout(list_offset=8, shuffle=True)),
        ("list filling its page to the end", 4 * page, PrpLayout(list_offset=page - 24),
         PrpLayout(offset=4, list_offset=page - 32)),
        ("chained after one entry", 6 * page, PrpLayout(chain_after=1),
         PrpLayout(chain_after=4, offset=0x44)),
        ("chained, data and lists above 4 GiB", 9 * page,
         PrpLayout(chain_after=3, data_high=True, list_high=True),
         PrpLayout(chain_after=2, data_high="mixed", list_high=False, shuffle=True)),
        ("contiguous above 4 GiB", 3 * page + 512, PrpLayout(contiguous=True, data_high=True),
         PrpLayout(offset=0x200, data_high=False)),
        ("MDTS, full", mdts, PrpLayout(), PrpLayout(offset=0x100, chain_after=7)),
        ("MDTS from a DWORD offset, chained above 4 GiB", mdts,
         PrpLayout(offset=page - 4, chain_after=63, data_high="mixed", list_high=True,
                   shuffle=True), PrpLayout(contiguous=True)),
    ]
    return [(label, -(-n // size) * size, w, r) for label, n, w, r in cases]


async def prp_layouts(host: NvmeHost, bench, *, mdts=True, full=False):
    """Writes and reads across every PRP shape: DWORD offsets, PRP1 + PRP2, a list with
    an offset, a list to the end of its page, chained lists, data and lists above 4 GiB,
    contiguous and scattered pages, up to MDTS (512 KiB: one case, ``full`` two,
    ``mdts=False`` none). Each range is written with one layout through one queue and
    read back with another through the next."""
    qids = await io_bring_up(host, bench)
    size = host.lba_bytes()
    slba = 0
    cases = [c for c in _layout_cases(size, host.mdts_bytes)
             if ("MDTS" not in c[0] or mdts) and ("full" not in c[0] or full)]
    for i, (label, length, wlayout, rlayout) in enumerate(cases):
        blocks = length // size
        if slba + blocks > host.namespace_blocks():
            slba = 0
        data = pattern(("prp", label), length)
        await host.write(qids[i % len(qids)], slba, data, layout=wlayout)
        _, back = await host.read(qids[(i + 1) % len(qids)], slba, blocks, layout=rlayout)
        check(back == data, f"{label}: read back differs")
        slba += blocks
    log.info("prp_layouts: %d layouts, %d bytes each way", len(cases),
             host.io_stats.bytes_to_host)


# -- zeroes_and_dsm ------------------------------------------------------------------------

async def zeroes_and_dsm(host: NvmeHost, bench, *, blocks=64):
    """Write Zeroes with and without DEAC, Dataset Management with AD over several
    ranges (an empty one, one past the end, one overflowing: skipped, the command still
    succeeds), without AD (nothing happens), and with 256 ranges spread over two pages;
    every block read back against the shadow."""
    qids = await io_bring_up(host, bench)
    q, size, nsze = qids[0], host.lba_bytes(), host.namespace_blocks()
    blocks = min(blocks, nsze // 2, host.mdts_bytes // size)
    data = pattern("zeroes", blocks * size)
    await host.write(q, 0, data)
    await host.write_zeroes(qids[-1], 1, 2)
    await host.write_zeroes(q, blocks - 3, 2, deac=True)
    await host.dataset_management(q, [(8, 3), (20, 0), (nsze, 4), (M64 - 1, 4), (12, 1)],
                                  ad=True)
    await host.dataset_management(q, [(30, 4)], ad=False)           # a hint: no effect
    await host.dataset_management(q, [(blocks - 1, 1, 0xFFFF_FFFF)], idr=True, idw=True)
    await host.read(qids[-1], 0, blocks)
    # 256 ranges, PRP1 in the last 0x100 bytes of its page: the list goes on at PRP2.
    await host.write(q, 0, data)
    ranges = [(i, 1) for i in range(0, 2 * blocks, 2)]
    ranges = (ranges + [(0, 0)] * DSM_MAX_RANGES)[:DSM_MAX_RANGES]
    await host.dataset_management(q, ranges, layout=PrpLayout(offset=PAGE_BYTES - 0x100))
    _, back = await host.read(q, 0, blocks)
    want = bytearray(data)
    for i in range(0, blocks, 2):
        want[i * size:(i + 1) * size] = bytes(size)
    check(back == bytes(want), "DSM over 256 ranges: blocks not deallocated as asked")


# -- compare ---------------------------------------------------------------------------------

async def compare(host: NvmeHost, bench, *, blocks=16):
    """Compare that matches (one block, many pages, at an offset, against zeroes) and
    that does not (a byte in the last block, a byte in the first): Compare Failure,
    2/85h with DNR, nothing changed."""
    qids = await io_bring_up(host, bench)
    q, size = qids[0], host.lba_bytes()
    blocks = min(blocks, host.mdts_bytes // size)
    data = pattern("compare", blocks * size)
    await host.write(q, 0, data)
    await host.write_zeroes(q, blocks, blocks)
    for label, slba, payload, layout, same in (
            ("one block", 0, data[:size], PrpLayout(offset=4), True),
            ("all blocks", 0, data, PrpLayout(offset=0x204, chain_after=1), True),
            ("zeroes", blocks, bytes(blocks * size), PrpLayout(data_high=True), True),
            ("last byte differs", 0, data[:-1] + bytes([data[-1] ^ 1]), PrpLayout(), False),
            ("first byte differs", 0, bytes([data[0] ^ 0x80]) + data[1:],
             PrpLayout(shuffle=True), False),
            ("zeroes against data", 0, bytes(size), PrpLayout(), False)):
        cqe = await host.compare(qids[-1], slba, payload, layout=layout, check=False)
        if same:
            expect(cqe, G.SUCCESS, False, f"compare {label}")
        else:
            expect(cqe, M.COMPARE_FAILURE, True, f"compare {label}")
    _, back = await host.read(q, 0, blocks)
    check(back == data, "a Compare changed the blocks")


# -- format_nvm -------------------------------------------------------------------------------

async def format_nvm(host: NvmeHost, bench, *, race=True):
    """Format NVM's refusals (NSID, LBAF, PI, SES, in that order), then a format to the
    other LBA format: Identify Namespace follows (FLBAS, NSZE), the data reads as
    zeroes, I/O runs at the new LBA size up to the new last LBA; and back with SES 1 on
    NSID FFFFFFFFh. With ``race``, last: an I/O command submitted right behind a Format
    (Format In Progress or success, by timing; not compared)."""
    qids = await io_bring_up(host, bench)
    q = qids[0]
    first = host.lba_format()
    other = 1 - first
    for label, kwargs, code, dnr in (
            ("NSID 2", {"nsid": 2, "lbaf": 5, "pi": 1}, G.INVALID_NAMESPACE, True),
            ("NSID 0", {"nsid": 0}, G.INVALID_NAMESPACE, True),
            ("LBAF 2", {"lbaf": 2, "pi": 1, "ses": 7}, C.INVALID_FORMAT, True),
            ("PI 1", {"pi": 1, "ses": 7}, C.INVALID_FORMAT, True),
            ("SES cryptographic", {"ses": SecureErase.CRYPTOGRAPHIC.value}, G.INVALID_FIELD,
             True),
            ("SES 7", {"ses": 7}, G.INVALID_FIELD, True)):
        kwargs = {"lbaf": other, **kwargs}
        expect(await host.format_nvm(check=False, **kwargs), code, dnr, f"Format {label}")
    # Data somewhere, then the format.
    size, nsze = host.lba_bytes(), host.namespace_blocks()
    ns_bytes = size * nsze
    await host.write(q, 0, pattern("head", 8 * size))
    await host.write(q, nsze - 8, pattern("tail", 8 * size))
    await host.format_nvm(other, mset=1, pil=1, timeout_us=_long(host))   # no metadata
    new = host.namespace(1)
    size2 = host.lba_bytes()
    check(host.lba_format() == other and size2 != size, f"FLBAS {new.flbas} after the format")
    check(new.nsze == new.ncap == new.nuse == ns_bytes // size2,
          f"NSZE {new.nsze} NCAP {new.ncap} NUSE {new.nuse} for {ns_bytes} bytes")
    nsze2 = new.nsze
    span = max(1, 8 * size // size2)
    for slba in (0, nsze2 - span):
        _, back = await host.read(qids[-1], slba, span)
        check(back == bytes(span * size2), f"LBA {slba}: not zeroed by the format")
    data = pattern("new format", 2 * size2)
    await host.write(q, nsze2 - 2, data, layout=PrpLayout(offset=0x400))
    _, back = await host.read(qids[-1], nsze2 - 2, 2)
    check(back == data, "read back at the new LBA size differs")
    expect(await host.read(q, nsze2 - 1, 2, check=False, name="failing"),
           G.LBA_OUT_OF_RANGE, True, "past the new end")
    await host.format_nvm(first, nsid=BROADCAST_NSID, ses=SecureErase.USER_DATA_ERASE.value,
                          timeout_us=_long(host))
    check(host.lba_bytes() == size and host.namespace_blocks() == nsze,
          "the first format is not back")
    _, back = await host.read(q, nsze - 8, 8)
    check(back == bytes(8 * size), "not zeroed by the second format")
    if race:
        await bench.compare()                   # everything up to here, exactly
        cid = await host.format_nvm(first, wait=False)
        cmd = await host.submit_read(q, 0, 1, name="format-race")
        await host.io_wait(cmd, timeout_us=_long(host))
        check(cmd.ok or cmd.status.is_(G.FORMAT_IN_PROGRESS, dnr=False),
              f"{cmd} behind a Format: {cmd.status}")
        await host.format_done(cid, timeout_us=_long(host))
        await bench.wait(2)                     # the last MSI-X messages land
        bench.forget_io()


# -- smart_and_error_log ---------------------------------------------------------------------

def _units(sectors):
    """Data Units: thousands of 512-byte units, rounded up [NVMe 1.4 Figure 194]."""
    return -(-sectors // 1000)


async def smart_and_error_log(host: NvmeHost, bench):
    """SMART / Health counters from a fresh controller: Host Read Commands (Reads and
    matched Compares), Host Write Commands (Writes), Data Units Read / Written in
    thousands of 512-byte units rounded up (999 → 1, 1000 → 1, 1001 → 2); Write Zeroes,
    DSM, Flush and failed commands not counted. Error Information entries for I/O
    errors: SQID, CID, status, NSID, LBA = SLBA for Read, Write, Compare, Write Zeroes,
    newest first with counts going up; SMART's error count follows."""
    qids = await io_bring_up(host, bench)
    q, size = qids[0], host.lba_bytes()
    per = size // SECTOR_BYTES                # 512-byte units per block
    smart = await host.smart_log()
    check((smart.data_units_read, smart.data_units_written, smart.host_read_commands,
           smart.host_write_commands) == (0, 0, 0, 0), "SMART counters of a fresh "
          f"controller: {smart.data_units_read} {smart.data_units_written} "
          f"{smart.host_read_commands} {smart.host_write_commands}")
    first = -(-999 // per)                    # blocks making 999 units (or just over)
    written = read = 0
    await host.write(q, 0, pattern("smart", first * size))
    written += first * per
    await host.read(qids[-1], 0, first)
    read += first * per
    await host.compare(q, 0, pattern("smart", first * size)[:size])
    read += per
    await host.compare(q, 0, bytes(size), check=False)                       # not counted
    await host.write_zeroes(q, first, 4)
    await host.dataset_management(q, [(first, 2)])
    await host.flush(q)
    await host.read(q, host.namespace_blocks(), 1, check=False, name="failing")
    smart = await host.smart_log()
    want = (_units(read), _units(written), 2, 1)
    got = (smart.data_units_read, smart.data_units_written, smart.host_read_commands,
           smart.host_write_commands)
    check(got == want, f"SMART (units read, written, reads, writes) {got}, expected {want} "
          f"for {read} / {written} sectors")
    for _ in range(3):
        await host.write(q, 0, bytes(size))
        written += per
        smart = await host.smart_log()
        check(smart.data_units_written == _units(written),
              f"{written} sectors written: {smart.data_units_written} data units")

    # Error Information: one entry per failed I/O command.
    before = (await host.smart_log()).error_log_entries
    nsze = host.namespace_blocks()
    # One at a time: the log is in completion order, and commands in flight together
    # complete in any order.
    failing = []
    for submit, lba in (
            (lambda: host.submit_read(q, nsze + 5, 1, name="failing"), nsze + 5),
            (lambda: host.submit_write(qids[-1], nsze - 1, bytes(2 * size), name="failing"),
             nsze - 1),
            (lambda: host.submit_compare(q, 3, pattern("differs", size), name="failing"), 3),
            (lambda: host.submit_write_zeroes(q, M64, 2), M64),
            (lambda: host.submit_flush(q, nsid=2), 0),
            (lambda: host.submit_dsm(q, [(0, 1)], layout=PrpLayout(bad_prp1=2),
                                     name="failing"), 0)):
        cmd = await host.io_wait(await submit())
        check(not cmd.ok, f"{cmd} succeeded")
        failing.append((cmd, lba))
    entries = await host.error_log()
    for i, (cmd, lba) in enumerate(reversed(failing)):
        e = entries[i]
        got = (e.error_count, e.sqid, e.cid, Status.of(e), e.lba, e.nsid)
        want = (before + len(failing) - i, cmd.qid, cmd.cid, cmd.status, lba, cmd.nsid)
        check(got == want, f"error log entry {i} (count, SQID, CID, status, LBA, NSID) "
              f"{got}, expected {want} for {cmd}")
    smart = await host.smart_log()
    check(smart.error_log_entries == before + len(failing),
          f"SMART error count {smart.error_log_entries}, expected {before + len(failing)}")


# -- abort_io -----------------------------------------------------------------------------------

async def abort_io(host: NvmeHost, bench, *, reads=4, blocks=64):
    """Abort of I/O commands. A command already completed: "not aborted" (DW0 bit 0 = 1),
    compared. Then a race: ``reads`` large Reads in flight over the queues and an Abort
    of the last one; by timing either the Abort says DW0 = 0 and the Read completes with
    Abort Requested (0/07) leaving its buffer untouched, or DW0 bit 0 = 1 and it completes
    normally with the right data. Either is accepted and the outcome is then forgotten
    (``bench.forget_io(admin=True)``: the Abort's DW0 and the error log may differ from
    the model's, so nothing after reads the logs). The queues keep working."""
    qids = await io_bring_up(host, bench)
    size = host.lba_bytes()
    blocks = min(blocks, host.mdts_bytes // size, host.namespace_blocks() // (reads + 1))
    for i in range(reads):
        await host.write(qids[i % len(qids)], i * blocks, pattern(("abort", i),
                                                                  blocks * size))
    done = await host.submit_read(qids[0], 0, 1)
    await host.io_wait(done, check=True)
    cqe = await host.abort(done.qid, done.cid)
    check(cqe.dw0 & 1 == 1, f"Abort of a completed command: DW0 {cqe.dw0:#x}")
    await bench.compare()

    cmds = [await host.submit_read(qids[i % len(qids)], i * blocks, blocks,
                                   name="data" if i < reads - 1 else "abort-target")
            for i in range(reads)]
    target = cmds[-1]
    cqe = await host.abort(target.qid, target.cid)
    await host.io_wait_all(cmds)
    aborted = cqe.dw0 & 1 == 0
    if aborted:
        expect(target, G.ABORT_REQUESTED, None, "the aborted Read")
    else:
        expect(target, G.SUCCESS, False, "a Read the Abort did not stop")
    for cmd in cmds[:-1]:
        expect(cmd, G.SUCCESS, False, str(cmd))
    log.info("abort_io: the Read was %saborted", "" if aborted else "not ")
    await bench.wait(2)                         # the last MSI-X messages land
    bench.forget_io(admin=True)
    await host.verify_io(blocks=2, first_lba=reads * blocks)
    return aborted


# -- data_integrity ------------------------------------------------------------------------------

def _random_layout(rng: random.Random, length):
    """A random valid layout: PRP1 offset, contiguous or scattered (shuffled) pages, a
    list offset or a forced chain, data and lists above or below 4 GiB or mixed."""
    offset = 0 if rng.random() < 0.4 else 4 * rng.randrange(PAGE_BYTES // 4)
    kwargs = {
        "offset": offset,
        "contiguous": rng.random() < 0.25,
        "shuffle": rng.random() < 0.5,
        "data_high": rng.choice((None, True, False, "mixed")),
        "list_high": rng.choice((None, True, False)),
    }
    entries = len(prp_pieces(offset, length)) - 1
    if entries >= 3 and rng.random() < 0.4:
        kwargs["chain_after"] = rng.randint(1, entries - 2)
    elif entries >= 2 and rng.random() < 0.5:
        kwargs["list_offset"] = 8 * rng.randrange(PAGE_BYTES // 8)
    return PrpLayout(**kwargs)


def _random_blocks(rng, most):
    roll = rng.random()
    if roll < 0.5:
        return rng.randint(1, min(8, most))
    if roll < 0.8:
        return rng.randint(1, min(64, most))
    return rng.randint(1, most)


def _random_command(rng, ops, weights, qids, region, mdts_blocks, size):
    """(op, qid, slba, blocks, DSM ranges, namespace byte ranges, writes)."""
    op = rng.choices(ops, weights)[0]
    qid = rng.choice(qids)
    blocks = _random_blocks(rng, min(mdts_blocks, region))
    slba = rng.randrange(region - blocks + 1)
    ranges = [(slba * size, (slba + blocks) * size)]
    dsm = []
    if op == "dsm":
        dsm = [(s, n) for s, n in ((rng.randrange(region), rng.randint(1, 16))
                                   for _ in range(rng.randint(1, 4))) if s + n <= region]
        ranges = [(s * size, (s + n) * size) for s, n in dsm]
    return op, qid, slba, blocks, dsm, ranges, op in ("write", "zeroes", "dsm")


async def data_integrity(host: NvmeHost, bench, *, seed=1, count=32, in_flight=32,
                         region_blocks=None, sweep=True):
    """Seeded random traffic over every I/O queue: ``count`` commands, up to
    ``in_flight`` (≤ the build's I/O slots) at once; Reads, Writes, Write Zeroes (with and
    without DEAC), deallocating DSM, Compares and Flushes at random LBAs in the first
    ``region_blocks`` blocks (default: the whole namespace), lengths up to MDTS, random PRP
    layouts (offsets, lists crossing pages, chained lists, buffers and lists above
    4 GiB). No two commands whose blocks overlap, one writing, are in flight together.
    Every Read is checked against the host's shadow of the namespace; with ``sweep`` the
    whole region is read back at the end. Logs the bytes moved and the most commands in
    flight; returns the driver's :class:`~nvmetb.host.io.IoStats`."""
    rng = random.Random(seed)
    qids = await io_bring_up(host, bench, entries=64)
    size = host.lba_bytes()
    region = min(region_blocks or host.namespace_blocks(), host.namespace_blocks())
    mdts_blocks = host.mdts_bytes // size
    in_flight = min(in_flight, bench.config.io_slots)
    shadow = host.shadow
    # A known start: zeroes everywhere (Write Zeroes has no MDTS).
    for slba in range(0, region, MAX_BLOCKS):
        await host.write_zeroes(qids[0], slba, min(MAX_BLOCKS, region - slba),
                                timeout_us=_long(host))
    ops = ("read", "write", "zeroes", "dsm", "compare", "flush")
    weights = (40, 34, 8, 7, 8, 3)
    issued = {op: 0 for op in ops}
    pending, target = [], rng.randint(1, in_flight)
    submitted = 0
    while submitted < count or pending:
        choice = None
        if submitted < count and len(pending) < target:
            # A command that overlaps none in flight where one of them writes; after a
            # few tries, wait for one in the way to complete.
            for _ in range(8):
                choice = _random_command(rng, ops, weights, qids, region, mdts_blocks, size)
                op, _, _, _, _, ranges, writes = choice
                if op == "flush" or (ranges and not shadow.conflicts(ranges, writes)):
                    break
                choice = None
        if choice is None:
            for cmd in await host.io_reap():
                pending.remove(cmd)
                if not (cmd.ok or cmd.opcode == NvmOpcode.COMPARE.value
                        and cmd.status.is_(M.COMPARE_FAILURE)):
                    raise Mismatch(f"{cmd}: {cmd.status}")
            # Fill up to the limit half the time, to a random depth otherwise.
            target = in_flight if rng.random() < 0.5 else rng.randint(1, in_flight)
            continue
        op, qid, slba, blocks, dsm, _, _ = choice
        layout = _random_layout(rng, blocks * size)
        if op == "read":
            cmd = await host.submit_read(qid, slba, blocks, layout=layout, rng=rng)
        elif op == "write":
            cmd = await host.submit_write(qid, slba, rng.randbytes(blocks * size),
                                          layout=layout, rng=rng)
        elif op == "zeroes":
            cmd = await host.submit_write_zeroes(qid, slba, blocks, deac=rng.random() < 0.5)
        elif op == "dsm":
            cmd = await host.submit_dsm(qid, dsm, layout=_random_layout(rng, 16 * len(dsm)),
                                        rng=rng)
        elif op == "compare":
            # Against what the host knows (a match), or with one byte flipped.
            start = slba * size
            payload = bytes(shadow.image[start:start + blocks * size])
            if rng.random() < 0.3:
                at = rng.randrange(len(payload))
                payload = payload[:at] + bytes([payload[at] ^ 0x5A]) + payload[at + 1:]
            cmd = await host.submit_compare(qid, slba, payload, layout=layout, rng=rng)
        else:
            cmd = await host.submit_flush(qid)
        pending.append(cmd)
        issued[op] += 1
        submitted += 1
    if sweep:
        for slba in range(0, region, mdts_blocks):
            await host.read(rng.choice(qids), slba, min(mdts_blocks, region - slba))
    stats = host.io_stats
    log.info("data_integrity(seed=%d): %d commands (%s), %d bytes to the device, %d to the "
             "host, at most %d in flight", seed, submitted,
             ", ".join(f"{n} {op}" for op, n in issued.items()), stats.bytes_to_device,
             stats.bytes_to_host, stats.max_in_flight)
    return stats


# -- error_in_traffic -----------------------------------------------------------------------------

async def error_in_traffic(host: NvmeHost, bench, *, per_queue=3, blocks=16):
    """One Write's data page cannot be read (Data Transfer Error, no DNR) and one Read's
    PRP list cannot be read, while Reads and Writes run on every queue: every other
    command succeeds with the right data; the failed Write's blocks are undefined until
    written again."""
    qids = await io_bring_up(host, bench)
    size = host.lba_bytes()
    blocks = min(blocks, host.mdts_bytes // size,
                 host.namespace_blocks() // (len(qids) * per_queue + 2))
    n = len(qids) * per_queue
    base = [pattern(("traffic", i), blocks * size) for i in range(n + 2)]
    for i in range(n + 2):
        await host.write(qids[i % len(qids)], i * blocks, base[i])
    bad_write = await host.submit_write(qids[0], n * blocks, pattern("bad", blocks * size),
                                        ring=False, name="failing")
    bench.fail_reads(*_span(bad_write.prp.pieces[-1]))
    bad_read = await host.submit_read(qids[-1], (n + 1) * blocks, blocks, ring=False,
                                      layout=PrpLayout(offset=0x200, list_offset=0x100),
                                      name="failing")
    bench.fail_reads(*bad_read.prp.list_range(0))
    cmds = []
    for i in range(n):
        qid = qids[i % len(qids)]
        if i % 2:
            cmds.append(await host.submit_read(qid, i * blocks, blocks, ring=False,
                                               layout=PrpLayout(offset=4 * i)))
        else:
            base[i] = pattern(("traffic 2", i), blocks * size)
            cmds.append(await host.submit_write(qid, i * blocks, base[i], ring=False,
                                                layout=PrpLayout(chain_after=1)))
    for qid in qids:
        await host.ring_sq(qid)
    await host.io_wait_all([*cmds, bad_write, bad_read])
    expect(bad_write, G.DATA_TRANSFER_ERROR, False, "Write with an unreadable data page")
    expect(bad_read, G.DATA_TRANSFER_ERROR, False, "Read with an unreadable PRP list")
    for i, cmd in enumerate(cmds):
        expect(cmd, G.SUCCESS, False, str(cmd))
        if i % 2:
            check(cmd.data == base[i], f"{cmd}: wrong data beside the failure")
    bench.clear_faults()
    check(not host.shadow.is_known(n * blocks * size, blocks * size),
          "the failed Write's blocks should be undefined")
    for i in range(n + 2):
        # The failed Write's blocks are undefined: their read's buffer is not compared.
        _, back = await host.read(qids[(i + 1) % len(qids)], i * blocks, blocks,
                                  name="data" if i != n else "undefined")
        if i != n:
            check(back == base[i], f"blocks {i * blocks}: wrong data after the failure")
    await host.write(qids[0], n * blocks, base[n])
    _, back = await host.read(qids[-1], n * blocks, blocks)
    check(back == base[n], "the failed Write's blocks, written again")


# -- media errors (benches whose backend can fail) ------------------------------------------

async def media_errors(host: NvmeHost, bench):
    """A media fault on a range of the namespace: Read and Compare → Unrecovered Read
    Error (2/81h), Write and Write Zeroes → Write Fault (2/80h), Dataset Management →
    Internal Error (0/06h), all without DNR; a Read's buffer holds what the backend
    returned (not compared); commands beside the range are unaffected."""
    if not getattr(bench, "media_faults", False):
        raise NotImplementedError("media_errors needs a bench that injects media faults")
    qids = await io_bring_up(host, bench)
    q, size = qids[0], host.lba_bytes()
    data = pattern("media", 8 * size)
    await host.write(q, 0, data)
    await host.write(q, 8, data)
    bench.fail_namespace(8 * size, 9 * size)           # LBA 8 only
    for label, submit, code in (
            ("Read", lambda: host.submit_read(q, 7, 2, name="failing"),
             M.UNRECOVERED_READ_ERROR),
            ("Compare", lambda: host.submit_compare(q, 8, data[:size], name="failing"),
             M.UNRECOVERED_READ_ERROR),
            ("Write", lambda: host.submit_write(q, 8, data[:size], name="failing"),
             M.WRITE_FAULT),
            ("Write Zeroes", lambda: host.submit_write_zeroes(q, 6, 4), M.WRITE_FAULT),
            ("DSM", lambda: host.submit_dsm(q, [(0, 1), (8, 1)]), G.INTERNAL_ERROR)):
        expect(await host.io_wait(await submit()), code, False, f"{label} on a media fault")
    # LBAs 6..9 are undefined now (the failed Write Zeroes); 10..15 kept their data.
    _, back = await host.read(qids[-1], 10, 6)
    check(back == data[2 * size:], "blocks beside the fault changed")
    await host.write(q, 20, data)
    _, back = await host.read(q, 20, 8)
    check(back == data, "I/O beside the fault")


IO_SCENARIOS = {f.__name__: f for f in (
    io_round_trip, io_status_paths, prp_layouts, zeroes_and_dsm, compare, format_nvm,
    smart_and_error_log, abort_io, data_integrity, error_in_traffic,
)}
MEDIA_SCENARIOS = {f.__name__: f for f in (media_errors,)}
