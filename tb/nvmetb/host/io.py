"""The NVM command set from the host's side: Read, Write, Compare, Flush, Write Zeroes,
Dataset Management and Format NVM [NVMe 1.4 §6, §5.23].

:class:`NvmIo` is mixed into :class:`~nvmetb.host.driver.NvmeHost`. Each I/O command is
an :class:`IoCommand`, in one of two styles:

- one shot: ``cqe, data = await host.read(qid, slba, blocks)``,
  ``cqe = await host.write(qid, slba, data)``, ... (raise :class:`CommandError` unless
  the command succeeded, with ``check=True``, the default);
- many in flight: ``cmd = await host.submit_read(...)`` (or ``submit_write``, ...) places
  the command and rings the doorbell without waiting; ``await host.io_wait(cmd)``,
  ``await host.io_wait_all(cmds)`` or ``await host.io_reap()`` collect completions,
  from any queue, in whatever order they come.

Every command's data lives in host memory described by PRPs (:mod:`.prp`), laid out as
a :class:`~nvmetb.host.prp.PrpLayout` says. When a command completes the driver checks
what it can (on top of the CID, SQID, SQHD and phase checks of every completion): DW0
and DW1 are zero (reserved for NVM commands); a buffer the controller should only read
is unchanged; a Read that failed before moving data left its buffer as it was; and, with
a :class:`~nvmetb.host.shadow.NamespaceShadow` attached (:meth:`NvmIo.track_namespace`),
every Read returns what the host knows the blocks hold, every Compare's outcome agrees
with it, and no two commands whose blocks overlap, one writing, are ever in flight
together.

Command dwords come from :mod:`nvmecore.nvm_layouts`; the behaviour checked is
docs/io-commands.md.
"""

import logging
import random
from dataclasses import dataclass, field

from amaranth.lib import data

from nvmecore.admin_layouts import (
    Cns,
    ErrorLogEntry,
    IdentifyController,
    IdentifyNamespace,
    SmartHealthLog,
)
from nvmecore.layouts import (
    AdminOpcode,
    GenericStatus,
    LogPage,
    MediaStatus,
    NvmOpcode,
    StatusCodeType,
)
from nvmecore.nvm_layouts import (
    BROADCAST_NSID,
    DSM_MAX_RANGES,
    DSM_RANGE_BYTES,
    PAGE_BYTES,
    DsmDw10,
    DsmDw11,
    DsmRange,
    FormatNvmDw10,
    ReadWriteDw12,
    ReadWriteDw13,
    WriteZeroesDw12,
)

from .prp import PrpBuffers, PrpLayout, build_prps
from .shadow import NamespaceShadow
from .status import (
    CommandError,
    ControllerTimeout,
    DataMismatch,
    NvmeError,
    ProtocolError,
    Status,
)

__all__ = ["IoCommand", "IoStats", "NvmIo", "READ_FILL", "MAX_BLOCKS", "pattern"]

log = logging.getLogger("tb")

_M32 = 0xFFFF_FFFF
#: What a Read's buffer holds before the controller writes it: a Read that moved no data
#: must leave it so, and one that succeeded must overwrite all of it.
READ_FILL = 0xA5

#: Statuses that say the command was refused before it touched the namespace or moved
#: any data (docs/io-commands.md: every check comes before any data moves). A Read's
#: Data Transfer Error comes from a PRP list read, before any data moved, too.
_REFUSED = {(StatusCodeType.GENERIC.value, code.value) for code in (
    GenericStatus.INVALID_OPCODE, GenericStatus.INVALID_FIELD,
    GenericStatus.INVALID_NAMESPACE, GenericStatus.INVALID_PRP_OFFSET,
    GenericStatus.LBA_OUT_OF_RANGE, GenericStatus.FORMAT_IN_PROGRESS,
    GenericStatus.ABORT_REQUESTED)}
_DTE = (StatusCodeType.GENERIC.value, GenericStatus.DATA_TRANSFER_ERROR.value)

_OPCODE_NAMES = {op.value: op.name.lower() for op in NvmOpcode}
#: The most logical blocks one command names: NLB is a 16-bit 0's based field.
MAX_BLOCKS = 1 << data.Layout.cast(ReadWriteDw12)["nlb"].width
#: FLBAS bits 3:0 select the LBA format in use [NVMe 1.4 Figure 245, byte 26].
_FLBAS_FORMAT = 0xF


def _encode(shape, fields):
    return data.Layout.cast(shape).const(fields).as_bits()


def _decode(shape, raw: bytes):
    return data.Layout.cast(shape).from_bits(int.from_bytes(raw, "little"))


def pattern(seed, length) -> bytes:
    """``length`` bytes no other ``seed`` gives (a seeded random stream)."""
    return random.Random(str(seed)).randbytes(length)


@dataclass(eq=False)
class IoCommand:
    """One I/O command, from submission to completion.

    ``blocks`` is the number of logical blocks (1's based; the command's NLB field is
    ``blocks`` − 1), ``lba_bytes`` the LBA size when it was submitted. ``payload``: what
    the host sent (Write and Compare data, the Dataset Management ranges). After
    completion: ``cqe``, ``status`` and, for a Read that succeeded, ``data``.
    """
    qid: int
    opcode: int
    nsid: int
    slba: int = 0
    blocks: int = 0
    lba_bytes: int = 512
    ranges: list = field(default_factory=list)     # Dataset Management (slba, blocks)
    deallocate: bool = False                        # DSM AD / Write Zeroes DEAC
    prp: PrpBuffers | None = None
    payload: bytes | None = None
    cid: int | None = None
    cqe: object = None
    status: Status | None = None
    data: bytes | None = None
    key: tuple | None = None                        # its entry in the shadow's in-flight

    @property
    def name(self):
        return _OPCODE_NAMES.get(self.opcode, f"opcode {self.opcode:#04x}")

    @property
    def done(self):
        return self.cqe is not None

    @property
    def ok(self):
        return self.status is not None and self.status.ok

    @property
    def byte_ranges(self):
        """The namespace bytes it reads or writes, as ``(start, stop)`` pairs."""
        if self.opcode == NvmOpcode.DSM.value:
            return [(s * self.lba_bytes, (s + n) * self.lba_bytes) for s, n in self.ranges
                    if n]
        if self.blocks:
            return [(self.slba * self.lba_bytes, (self.slba + self.blocks) * self.lba_bytes)]
        return []

    @property
    def writes(self):
        """Whether it changes the namespace."""
        return self.opcode in (NvmOpcode.WRITE.value, NvmOpcode.WRITE_ZEROES.value) or (
            self.opcode == NvmOpcode.DSM.value and self.deallocate)

    def __str__(self):
        where = f" LBA {self.slba} +{self.blocks}" if self.blocks else ""
        return f"{self.name} on SQ {self.qid} CID {self.cid}{where}"


@dataclass
class IoStats:
    """What the I/O commands moved: bytes from the host (writes, compares, ranges) and
    to the host (reads), commands completed, and the most in flight at once."""
    commands: int = 0
    errors: int = 0
    bytes_to_device: int = 0
    bytes_to_host: int = 0
    max_in_flight: int = 0
    largest: int = 0                  # bytes of the largest successful transfer


class NvmIo:
    """The I/O half of :class:`~nvmetb.host.driver.NvmeHost` (a mixin: it uses the
    driver's ``t``, ``submit``, ``process_completions``, ``admin``, ``identify``,
    ``get_log_page``, ``sqs``, ``completions`` and ``poll_us``)."""

    # The driver's __init__ sets io_pending ((sqid, cid) -> IoCommand in flight),
    # io_stats (an IoStats) and shadow (None until track_namespace).

    def _forget_io(self):
        """The queues are gone (controller reset): commands in flight are lost, and what
        the writes among them did is unknown."""
        for cmd in self.io_pending.values():
            if self.shadow is not None:
                self.shadow.end(cmd.key)
                if cmd.writes:
                    for start, stop in cmd.byte_ranges:
                        if stop <= self.shadow.size:
                            self.shadow.forget(start, stop - start)
        self.io_pending.clear()

    # -- What the controller reported --------------------------------------------------

    @property
    def mdts_bytes(self) -> int | None:
        """Maximum data transfer size in bytes (Identify Controller MDTS, in units of
        the minimum page size CAP.MPSMIN), or None for no limit."""
        mdts = _decode(IdentifyController, self.id_ctrl).mdts
        return (PAGE_BYTES << self.cap.mpsmin) << mdts if mdts else None

    def namespace(self, nsid=1):
        """Identify Namespace of ``nsid`` as a view of :class:`IdentifyNamespace`."""
        return _decode(IdentifyNamespace, self.id_ns[nsid])

    def lba_bytes(self, nsid=1) -> int:
        """The LBA data size of the format in use (FLBAS) [NVMe 1.4 Figure 245]; for an
        NSID that is not a namespace, that of the first one."""
        ns = self.namespace(nsid if nsid in self.id_ns else min(self.id_ns))
        return 1 << ns.lbaf[ns.flbas & _FLBAS_FORMAT].lbads

    def lba_format(self, nsid=1) -> int:
        """The LBA format in use (FLBAS bits 3:0), an index into the LBAF list."""
        return self.namespace(nsid).flbas & _FLBAS_FORMAT

    def namespace_blocks(self, nsid=1) -> int:
        """NSZE, in logical blocks."""
        return self.namespace(nsid).nsze

    def track_namespace(self, *, zeroed=False) -> NamespaceShadow:
        """Keep a host-side image of namespace 1 from now on and check every Read and
        Compare against it (``zeroed``: it is known to hold zeroes now)."""
        self.shadow = NamespaceShadow(self.namespace_blocks() * self.lba_bytes(),
                                      zeroed=zeroed)
        return self.shadow

    # -- Submission ------------------------------------------------------------------

    async def io_submit(self, qid, opcode, *, nsid=1, slba=0, blocks=0, cdw12=0, cdw13=0,
                        cdw10=None, cdw11=None, length=0, payload=None, layout=None,
                        name="data", prps=None, fuse=0, psdt=0, ring=True, ranges=(),
                        deallocate=False, rng=None) -> IoCommand:
        """Place one I/O command on SQ ``qid`` (and ring its doorbell unless ``ring`` is
        False); returns it, not yet completed.

        CDW10 / CDW11 carry ``slba`` unless given. With ``length`` bytes of data (or a
        ``payload``, written to the host buffer), host memory is laid out by ``layout``
        (a :class:`PrpLayout`) and called ``name``; ``prps`` = (PRP1, PRP2) instead uses
        the caller's. A Read's buffer starts as :data:`READ_FILL` bytes.
        """
        pending = self.io_pending
        opcode = int(getattr(opcode, "value", opcode))
        cmd = IoCommand(qid, opcode, nsid, slba, blocks, self.lba_bytes(nsid),
                        ranges=list(ranges), deallocate=deallocate, payload=payload)
        if payload is not None:
            length = len(payload)
        prp1 = prp2 = 0
        if prps is not None:
            prp1, prp2 = prps
        elif length:
            cmd.prp = build_prps(self.t, length, layout or PrpLayout(), name=name, rng=rng)
            if payload is not None:
                cmd.prp.write(self.t, payload)
            else:
                cmd.prp.fill(self.t, READ_FILL)
            prp1, prp2 = cmd.prp.prp1, cmd.prp.prp2
        if self.shadow is not None:
            cmd.key = (qid, id(cmd))
            self.shadow.begin(cmd.key, cmd.byte_ranges, cmd.writes)
        try:
            cmd.cid = await self.submit(qid, {
                "cdw0": {"opc": opcode, "fuse": fuse, "psdt": psdt}, "nsid": nsid,
                "prp1": prp1, "prp2": prp2,
                "cdw10": slba & _M32 if cdw10 is None else cdw10,
                "cdw11": slba >> 32 & _M32 if cdw11 is None else cdw11,
                "cdw12": cdw12, "cdw13": cdw13}, ring=ring)
        except Exception:
            if self.shadow is not None:
                self.shadow.end(cmd.key)
            if cmd.prp is not None:
                cmd.prp.free(self.t)
            raise
        pending[(qid, cmd.cid)] = cmd
        self.io_stats.max_in_flight = max(self.io_stats.max_in_flight, len(pending))
        return cmd

    @staticmethod
    def _nlb(blocks):
        if not 1 <= blocks <= MAX_BLOCKS:
            raise ValueError(f"{blocks} blocks: NLB holds 1 to {MAX_BLOCKS}")
        return blocks - 1

    @classmethod
    def _rw_dw12(cls, blocks, fua=False, lr=False):
        return _encode(ReadWriteDw12, {"nlb": cls._nlb(blocks), "fua": int(fua),
                                       "lr": int(lr)})

    async def submit_read(self, qid, slba, blocks, *, layout=None, nsid=1, name="data",
                          fua=False, lr=False, dsm=0, **kwargs) -> IoCommand:
        """Read ``blocks`` logical blocks from ``slba`` (opcode 02h)."""
        return await self.io_submit(
            qid, NvmOpcode.READ, nsid=nsid, slba=slba, blocks=blocks,
            cdw12=self._rw_dw12(blocks, fua, lr), cdw13=_encode(ReadWriteDw13, {"dsm": dsm}),
            length=blocks * self.lba_bytes(nsid), layout=layout, name=name, **kwargs)

    async def submit_write(self, qid, slba, data_out: bytes, *, layout=None, nsid=1,
                           name="data", fua=False, lr=False, dsm=0, **kwargs) -> IoCommand:
        """Write ``data_out`` (whole logical blocks) at ``slba`` (opcode 01h)."""
        blocks = self._blocks_of(data_out, nsid)
        return await self.io_submit(
            qid, NvmOpcode.WRITE, nsid=nsid, slba=slba, blocks=blocks,
            cdw12=self._rw_dw12(blocks, fua, lr), cdw13=_encode(ReadWriteDw13, {"dsm": dsm}),
            payload=bytes(data_out), layout=layout, name=name, **kwargs)

    async def submit_compare(self, qid, slba, data_out: bytes, *, layout=None, nsid=1,
                             name="data", **kwargs) -> IoCommand:
        """Compare the blocks at ``slba`` with ``data_out`` (opcode 05h)."""
        blocks = self._blocks_of(data_out, nsid)
        return await self.io_submit(
            qid, NvmOpcode.COMPARE, nsid=nsid, slba=slba, blocks=blocks,
            cdw12=self._rw_dw12(blocks), payload=bytes(data_out), layout=layout, name=name,
            **kwargs)

    async def submit_flush(self, qid, *, nsid=1, **kwargs) -> IoCommand:
        """Flush (opcode 00h)."""
        return await self.io_submit(qid, NvmOpcode.FLUSH, nsid=nsid, cdw10=0, cdw11=0,
                                    **kwargs)

    async def submit_write_zeroes(self, qid, slba, blocks, *, deac=False, nsid=1,
                                  **kwargs) -> IoCommand:
        """Write Zeroes over ``blocks`` blocks from ``slba`` (opcode 08h); ``deac``
        deallocates them as well."""
        return await self.io_submit(
            qid, NvmOpcode.WRITE_ZEROES, nsid=nsid, slba=slba, blocks=blocks,
            cdw12=_encode(WriteZeroesDw12, {"nlb": self._nlb(blocks), "deac": int(deac)}),
            deallocate=deac, **kwargs)

    async def submit_dsm(self, qid, ranges, *, ad=True, idr=False, idw=False, nsid=1,
                         layout=None, name="dsm-ranges", **kwargs) -> IoCommand:
        """Dataset Management (opcode 09h) over ``ranges``: ``(slba, blocks)`` or
        ``(slba, blocks, context attributes)`` each (1 to 256); ``ad`` deallocates."""
        ranges = [tuple(r) + (0,) * (3 - len(r)) for r in ranges]
        if not 1 <= len(ranges) <= DSM_MAX_RANGES:
            raise ValueError(f"{len(ranges)} ranges: Dataset Management takes 1 to "
                             f"{DSM_MAX_RANGES}")
        raw = b"".join(_encode(DsmRange, {"cattr": cattr, "nlb": n, "slba": s})
                       .to_bytes(DSM_RANGE_BYTES, "little") for s, n, cattr in ranges)
        return await self.io_submit(
            qid, NvmOpcode.DSM, nsid=nsid, cdw10=_encode(DsmDw10, {"nr": len(ranges) - 1}),
            cdw11=_encode(DsmDw11, {"ad": int(ad), "idr": int(idr), "idw": int(idw)}),
            payload=raw, layout=layout, name=name, ranges=[(s, n) for s, n, _ in ranges],
            deallocate=ad, **kwargs)

    def _blocks_of(self, data_out, nsid):
        size = self.lba_bytes(nsid)
        if not data_out or len(data_out) % size:
            raise ValueError(f"{len(data_out)} bytes are not whole {size}-byte blocks")
        return len(data_out) // size

    # -- Completion -----------------------------------------------------------------------

    async def io_reap(self, timeout_us=None) -> list[IoCommand]:
        """Wait until at least one I/O command in flight completes (none in flight:
        return at once); every command that has completed by then, checked."""
        pending = self.io_pending
        if timeout_us is None:
            timeout_us = self.command_timeout_us + sum(self._data_us(c) for c in pending.values())
        waited = 0.0
        while pending:
            for cqid in sorted({self.sqs[qid].cqid for qid, _ in pending
                                if qid in self.sqs}):
                await self.process_completions(cqid)
            done = self._collect()
            if done:
                return done
            if waited >= timeout_us:
                raise ControllerTimeout(
                    f"no I/O completion within {timeout_us} us; in flight: "
                    + ", ".join(str(c) for c in pending.values()))
            await self.t.wait(self.poll_us)
            waited += self.poll_us
        return []

    def _data_us(self, cmd):
        """The time allowance for ``cmd``'s data (see ``us_per_kib``)."""
        return self.us_per_kib * cmd.blocks * cmd.lba_bytes / 1024

    def _collect(self):
        done = []
        for key, cmd in list(self.io_pending.items()):
            if key in self.completions:
                del self.io_pending[key]
                self._finish(cmd, self.completions.pop(key))
                done.append(cmd)
        return done

    async def io_wait(self, cmd: IoCommand, *, check=False, timeout_us=None) -> IoCommand:
        """Wait for ``cmd`` to complete (collecting others on the way); with ``check``,
        raise :class:`CommandError` unless it succeeded. By default it may take
        ``command_timeout_us`` plus ``us_per_kib`` for each KiB that it, and every command
        in flight with it, moves."""
        if timeout_us is None:
            timeout_us = self.command_timeout_us + sum(
                self._data_us(c) for c in self.io_pending.values())
        waited = 0.0
        while not cmd.done:
            if self._collect():
                continue
            if (cmd.qid, cmd.cid) not in self.io_pending:
                raise NvmeError(f"{cmd} is not in flight")
            await self.process_completions(self.sqs[cmd.qid].cqid)
            if self._collect():
                continue
            if waited >= timeout_us:
                raise ControllerTimeout(f"{cmd}: no completion within {timeout_us} us")
            await self.t.wait(self.poll_us)
            waited += self.poll_us
        if check and not cmd.ok:
            raise CommandError(str(cmd), cmd.cqe)
        return cmd

    async def io_wait_all(self, cmds, *, check=False, timeout_us=None) -> list[IoCommand]:
        for cmd in cmds:
            await self.io_wait(cmd, check=check, timeout_us=timeout_us)
        return list(cmds)

    def _finish(self, cmd: IoCommand, cqe):
        """Everything the host can check about a completed command, then the shadow."""
        cmd.cqe, cmd.status = cqe, Status.of(cqe)
        status = cmd.status
        stats = self.io_stats
        stats.commands += 1
        stats.errors += not status.ok
        if cqe.dw0 or cqe.dw1:
            raise ProtocolError(f"{cmd}: DW0 {cqe.dw0:#x} DW1 {cqe.dw1:#x}, reserved for "
                                f"NVM commands")
        refused = (status.sct, status.sc) in _REFUSED
        reads = cmd.opcode == NvmOpcode.READ.value
        if cmd.prp is not None:
            got = cmd.prp.read(self.t)
            if reads:
                if status.ok:
                    cmd.data = got
                    stats.bytes_to_host += len(got)
                    stats.largest = max(stats.largest, len(got))
                elif (refused or (status.sct, status.sc) == _DTE) and got != bytes(
                        [READ_FILL]) * len(got):
                    raise ProtocolError(f"{cmd} failed with {status} but wrote its buffer")
            else:
                if got != cmd.payload:
                    raise ProtocolError(f"{cmd}: the controller changed a buffer it should "
                                        f"only read")
                if status.ok:
                    stats.bytes_to_device += len(got)
                    stats.largest = max(stats.largest, len(got))
            cmd.prp.free(self.t)
        log.debug("nvme host: %s: %s", cmd, status)
        shadow = self.shadow
        if shadow is None:
            return
        shadow.end(cmd.key)
        if cmd.nsid not in (1, BROADCAST_NSID) or refused:
            return
        self._shadow_update(cmd, status)

    def _shadow_update(self, cmd, status):
        shadow, op = self.shadow, cmd.opcode
        start = cmd.slba * cmd.lba_bytes
        length = cmd.blocks * cmd.lba_bytes
        inside = cmd.blocks and start + length <= shadow.size
        if op == NvmOpcode.READ.value and status.ok and inside:
            at = shadow.mismatch(start, cmd.data)
            if at is not None:
                raise DataMismatch(
                    f"{cmd}: byte {at} (LBA {cmd.slba + at // cmd.lba_bytes} + "
                    f"{at % cmd.lba_bytes}) reads {cmd.data[at:at + 16].hex()}, the host "
                    f"wrote {bytes(shadow.image[start + at:start + at + 16]).hex()}")
        elif op == NvmOpcode.COMPARE.value and inside and shadow.is_known(start, length):
            same = shadow.mismatch(start, cmd.payload) is None
            if (status.ok and not same) or (status.is_(MediaStatus.COMPARE_FAILURE) and same):
                raise DataMismatch(f"{cmd}: {status}, but the data "
                                   f"{'matches' if same else 'differs'}")
        elif op in (NvmOpcode.WRITE.value, NvmOpcode.WRITE_ZEROES.value) and inside:
            if status.ok:
                if op == NvmOpcode.WRITE.value:
                    shadow.write(start, cmd.payload)
                else:
                    shadow.zero(start, length)
            else:
                shadow.forget(start, length)
        elif op == NvmOpcode.DSM.value and cmd.deallocate:
            for slba, blocks in cmd.ranges:
                lo, n = slba * cmd.lba_bytes, blocks * cmd.lba_bytes
                if blocks and lo + n <= shadow.size:
                    (shadow.zero if status.ok else shadow.forget)(lo, n)

    # -- One shot ---------------------------------------------------------------------

    async def _one_shot(self, cmd, check, timeout_us):
        await self.io_wait(cmd, check=check, timeout_us=timeout_us)
        return cmd.cqe

    async def read(self, qid, slba, blocks, *, check=True, timeout_us=None, **kwargs):
        """Read: ``(cqe, data)`` (``data`` empty unless it succeeded)."""
        cmd = await self.submit_read(qid, slba, blocks, **kwargs)
        cqe = await self._one_shot(cmd, check, timeout_us)
        return cqe, cmd.data or b""

    async def write(self, qid, slba, data_out, *, check=True, timeout_us=None, **kwargs):
        return await self._one_shot(await self.submit_write(qid, slba, data_out, **kwargs),
                                    check, timeout_us)

    async def compare(self, qid, slba, data_out, *, check=True, timeout_us=None, **kwargs):
        """Compare: its CQE (Compare Failure, 2/85h, when the data differs; ``check``
        raises for that too)."""
        return await self._one_shot(await self.submit_compare(qid, slba, data_out, **kwargs),
                                    check, timeout_us)

    async def flush(self, qid, *, check=True, timeout_us=None, **kwargs):
        return await self._one_shot(await self.submit_flush(qid, **kwargs), check,
                                    timeout_us)

    async def write_zeroes(self, qid, slba, blocks, *, deac=False, check=True,
                           timeout_us=None, **kwargs):
        return await self._one_shot(
            await self.submit_write_zeroes(qid, slba, blocks, deac=deac, **kwargs), check,
            timeout_us)

    async def dataset_management(self, qid, ranges, *, ad=True, check=True, timeout_us=None,
                                 **kwargs):
        return await self._one_shot(await self.submit_dsm(qid, ranges, ad=ad, **kwargs),
                                    check, timeout_us)

    # -- Admin commands of the NVM command set --------------------------------------------

    async def format_nvm(self, lbaf, *, nsid=1, ses=0, pi=0, mset=0, pil=0, check=True,
                         timeout_us=None, wait=True):
        """Format NVM (admin 80h) to LBA format ``lbaf``. On success Identify Namespace
        is read again (the LBA size and NSZE follow) and the shadow, if any, is all
        zeroes. With ``wait=False`` it is only submitted: returns its CID (finish with
        :meth:`format_done`)."""
        fields = {"cdw0": {"opc": AdminOpcode.FORMAT_NVM.value}, "nsid": nsid,
                  "cdw10": _encode(FormatNvmDw10, {"lbaf": lbaf, "mset": mset, "pi": pi,
                                                   "pil": pil, "ses": ses})}
        cid = await self.submit(0, fields)
        if not wait:
            return cid
        return await self.format_done(cid, check=check, timeout_us=timeout_us)

    async def format_done(self, cid, *, check=True, timeout_us=None):
        """The completion of the Format NVM ``cid``; on success the namespace is read
        again and the shadow zeroed."""
        cqe = await self.wait_completion(0, cid, timeout_us)
        if Status.of(cqe).ok:
            for nsid in self.nsids:
                _, self.id_ns[nsid] = await self.identify(Cns.NAMESPACE, nsid=nsid)
            if self.shadow is not None:
                in_flight = self.shadow.in_flight
                self.track_namespace(zeroed=True)        # the new size, all zeroes
                self.shadow.in_flight = in_flight
        elif check:
            raise CommandError("Format NVM", cqe)
        return cqe

    async def smart_log(self):
        """SMART / Health Information (log 02h), as a view of :class:`SmartHealthLog`."""
        size = data.Layout.cast(SmartHealthLog).size // 8
        _, raw = await self.get_log_page(LogPage.SMART_HEALTH.value, size // 4)
        return _decode(SmartHealthLog, raw)

    async def error_log(self, entries=None):
        """Error Information log (log 01h): the used entries, newest first, as views of
        :class:`ErrorLogEntry` (``entries``: how many to read, by default ELPE + 1)."""
        size = data.Layout.cast(ErrorLogEntry).size // 8
        count = entries or _decode(IdentifyController, self.id_ctrl).elpe + 1
        _, raw = await self.get_log_page(LogPage.ERROR_INFORMATION.value,
                                         count * size // 4)
        out = [_decode(ErrorLogEntry, raw[i:i + size]) for i in range(0, len(raw), size)]
        return [e for e in out if e.error_count]

    # -- Bring-up check -----------------------------------------------------------------------

    async def verify_io(self, blocks=8, first_lba=0):
        """Write a pattern of its own through every I/O queue (``blocks`` blocks per
        queue, consecutive ranges from ``first_lba``), all in flight together, then read
        each back through the same queue and compare bit for bit. Raises
        :class:`DataMismatch` on a difference."""
        size = self.lba_bytes()
        qids = sorted(q for q in self.sqs if q)
        if not qids:
            raise NvmeError("no I/O queues to verify")
        patterns = {qid: pattern(("verify_io", qid), blocks * size) for qid in qids}
        slba = {qid: first_lba + i * blocks for i, qid in enumerate(qids)}
        writes = [await self.submit_write(qid, slba[qid], patterns[qid]) for qid in qids]
        await self.io_wait_all(writes, check=True)
        reads = [await self.submit_read(qid, slba[qid], blocks) for qid in qids]
        for qid, cmd in zip(qids, await self.io_wait_all(reads, check=True), strict=True):
            if cmd.data != patterns[qid]:
                at = next(i for i, (a, b) in enumerate(zip(cmd.data, patterns[qid],
                                                           strict=True)) if a != b)
                raise DataMismatch(f"verify_io: SQ {qid} reads byte {at} of LBA "
                                   f"{slba[qid]} as {cmd.data[at]:#04x}, wrote "
                                   f"{patterns[qid][at]:#04x}")
        log.info("nvme host: I/O verified on %d queues, %d blocks each", len(qids), blocks)
