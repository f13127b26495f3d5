"""Admin engine: the admin command set in gateware (docs/admin-commands.md).

One admin command at a time: gate the opcode, run its checks in the contract's order,
act (queue set-up, a data transfer through the host writer, a feature), then complete.
It also owns what the admin commands report on: features, the asynchronous event state
(held Asynchronous Event Requests, pending and masked events) and the completion path,
where every completion (admin and I/O) passes and every error is logged.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..admin_layouts import Arbitration, AsyncEventInfoSmart, ErrorLogEntry, FeatureId
from ..bus import strobe
from ..config import CoreConfig
from ..layouts import (
    AdminOpcode,
    AsyncEvent,
    AsyncEventInfoError,
    AsyncEventType,
    Cc,
    CommandSpecificStatus,
    Completion,
    GenericStatus,
    LogPage,
    QueueSizeUpdate,
    StatusCodeType,
)
from ..nvm_layouts import BROADCAST_NSID, FormatNvmDw10, SecureErase
from ..bitmap import onehot, with_bits
from .host_writer import HostWriteRequest
from .identify import AERL, MDTS, NLBAF, WCTEMP_K
from .io_engine import FormatRequest
from .io_layouts import IoStatus
from .io_slots import AbortRequest
from .log_source import Source
from .queue_state import AdminLookup, QueueSetup
from .sq_fetch import FetchedCommand

__all__ = ["AdminEngine", "CoalescingConfig"]

PAGE = 4096
AER_SLOTS = AERL + 1


class CoalescingConfig(data.Struct):
    thr:  8
    time: 8


def _status(sct, sc, dnr):
    return sct.value << 9 | sc.value << 1 | int(dnr)


G, C = StatusCodeType.GENERIC, StatusCodeType.COMMAND_SPECIFIC
SUCCESS = _status(G, GenericStatus.SUCCESS, False)
INVALID_OPCODE = _status(G, GenericStatus.INVALID_OPCODE, True)
INVALID_FIELD = _status(G, GenericStatus.INVALID_FIELD, True)
INVALID_FIELD_RETRY = _status(G, GenericStatus.INVALID_FIELD, False)
INVALID_NAMESPACE = _status(G, GenericStatus.INVALID_NAMESPACE, True)
INVALID_PRP_OFFSET = _status(G, GenericStatus.INVALID_PRP_OFFSET, True)
SEQUENCE_ERROR = _status(G, GenericStatus.COMMAND_SEQUENCE_ERROR, True)
ABORT_REQUESTED = _status(G, GenericStatus.ABORT_REQUESTED, False)
CQ_INVALID = _status(C, CommandSpecificStatus.COMPLETION_QUEUE_INVALID, True)
INVALID_QID = _status(C, CommandSpecificStatus.INVALID_QUEUE_IDENTIFIER, True)
INVALID_QSIZE = _status(C, CommandSpecificStatus.INVALID_QUEUE_SIZE, True)
INVALID_VECTOR = _status(C, CommandSpecificStatus.INVALID_INTERRUPT_VECTOR, True)
INVALID_LOG_PAGE = _status(C, CommandSpecificStatus.INVALID_LOG_PAGE, True)
INVALID_DELETION = _status(C, CommandSpecificStatus.INVALID_QUEUE_DELETION, False)
AER_LIMIT = _status(C, CommandSpecificStatus.AER_LIMIT_EXCEEDED, False)
NOT_SAVEABLE = _status(C, CommandSpecificStatus.FEATURE_NOT_SAVEABLE, True)
INVALID_FORMAT = _status(C, CommandSpecificStatus.INVALID_FORMAT, True)

LOG_SIZES = {LogPage.ERROR_INFORMATION: 4096, LogPage.SMART_HEALTH: 512,
             LogPage.FIRMWARE_SLOT: 512}


class AdminEngine(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        # Number of Queues, DW0: the queues allocated, whatever was asked [NVMe 1.4 §5.21.1.7]
        self._queues_dw0 = (config.io_queues - 1) << 16 | (config.io_queues - 1)
        qw = config.qid_width
        super().__init__({
            "cmd":        In(stream.Signature(FetchedCommand(config))),
            "io_completion": In(stream.Signature(Completion)),
            "completion": Out(stream.Signature(Completion)),
            "setup":      Out(strobe(QueueSetup)),
            "doorbell_queue": Out(stream.Signature(QueueSizeUpdate)),
            "writer":     Out(stream.Signature(HostWriteRequest)),
            "writer_idle": In(1),
            "source":     Out(Source),
            "error_entry": Out(data.StructLayout({"valid": 1, "entry": ErrorLogEntry})),
            "critical_warning": Out(8),
            "events":     In(stream.Signature(AsyncEvent)),
            "temperature": In(16),
            # controller
            "cc":         In(Cc),
            "admin_create": In(1),
            "asq":        In(64),
            "acq":        In(64),
            "admin_sq_size": In(13),
            "admin_cq_size": In(13),
            "ctrl_reset": In(1),
            "msix_enable": In(1),
            # Held AERs complete only while the controller runs (CSTS.RDY, no CFS, no
            # shutdown) and may write memory (bus mastering): as the reference model.
            "event_enable": In(1),
            "queues":     Out(AdminLookup(config)),
            # Delete I/O SQ waits for its CQ's commands: fetch nothing more for that CQ
            "hold_cq":    Out(data.StructLayout({"valid": 1, "qid": qw})),
            "reserve":    Out(1),
            "reserve_ack": In(1),
            # features that act elsewhere
            "burst_log2": Out(3),
            "arbitration": Out(Arbitration),   # the feature's value: weights for the arbiter
            "coalescing": Out(CoalescingConfig),
            "no_coalescing": Out(config.msix_vectors),
            # the I/O engine: Format NVM, and Abort of an I/O command
            "format":     Out(stream.Signature(FormatRequest)),
            "format_status": In(IoStatus),
            "io_abort":   Out(stream.Signature(AbortRequest)),
            "io_abort_hit": In(1),
            "idle":       Out(1),
        })

    def elaborate(self, platform):  # noqa: C901 (one state machine, read top to bottom)
        m = Module()
        config = self._config
        n = config.queue_pairs
        qw = config.qid_width
        qs = self.queues
        max_qid = config.io_queues
        mqes = config.cap_mqes
        vectors = config.msix_vectors

        cmd = Signal(FetchedCommand(config))
        sqe = cmd.sqe
        opc = sqe.cdw0.opc
        cdw10, cdw11, cdw12, cdw13 = sqe.cdw10, sqe.cdw11, sqe.cdw12, sqe.cdw13
        nsid = sqe.nsid
        prp1, prp2 = sqe.prp1, sqe.prp2

        # -- Completion path: admin completions first, then I/O; errors are logged. ---------
        own = Signal(Completion)
        own_valid = Signal()
        out = self.completion
        take_own = own_valid
        m.d.comb += [
            out.valid.eq(own_valid | self.io_completion.valid),
            out.p.eq(Mux(take_own, own, self.io_completion.p)),
            self.io_completion.ready.eq(out.ready & ~take_own),
        ]
        with m.If(out.valid & out.ready & take_own):
            m.d.sync += own_valid.eq(0)
        sent = out.valid & out.ready
        m.d.comb += [
            self.error_entry.valid.eq(sent & ((out.p.sc != 0) | (out.p.sct != 0))),
            self.error_entry.entry.sqid.eq(out.p.sqid),
            self.error_entry.entry.cid.eq(out.p.cid),
            self.error_entry.entry.status.sc.eq(out.p.sc),
            self.error_entry.entry.status.sct.eq(out.p.sct),
            self.error_entry.entry.status.dnr.eq(out.p.dnr),
            self.error_entry.entry.param_error_loc.eq(0xFFFF),
            self.error_entry.entry.nsid.eq(out.p.nsid),
            self.error_entry.entry.lba.eq(out.p.lba),
        ]

        def complete(status, dw0=0, cid=None):
            """Hand a completion to the poster (the caller waits for ``own_valid`` low).
            ``status`` is DNR in bit 0, SC in bits 8:1, SCT in bits 11:9 — or an
            :class:`~.io_layouts.IoStatus` value."""
            if isinstance(status, int):
                sc, sct, dnr = status >> 1 & 0xFF, status >> 9 & 0x7, status & 1
            else:
                sc, sct, dnr = status.sc, status.sct, status.dnr
            m.d.sync += [
                own_valid.eq(1),
                own.dw0.eq(dw0),
                own.nsid.eq(nsid),
                own.sqid.eq(0),
                own.cqid.eq(0),
                own.cid.eq(sqe.cdw0.cid if cid is None else cid),
                own.sc.eq(sc),
                own.sct.eq(sct),
                own.dnr.eq(dnr),
            ]

        # -- Features (defaults per docs/admin-commands.md) -------------------------------------
        arb = Signal(32, init=0x7)             # AB = 111b: no limit
        power_wh = Signal(3)
        temp_over = Signal(16, init=WCTEMP_K)
        temp_under = Signal(16, init=0)
        tler = Signal(16)
        coalescing = Signal(CoalescingConfig)
        no_coalescing = Signal(vectors, init=1)     # vector 0: the admin CQ's
        # Set Features Interrupt Vector Configuration writes one vector's bit: a one-hot
        # mask and the value (bitmap.py: no case over every vector)
        nc_mask = Signal(vectors)
        nc_value = Signal()
        m.d.sync += no_coalescing.eq(with_bits(no_coalescing, clear=nc_mask,
                                               set=Mux(nc_value, nc_mask, 0)))
        wan = Signal()
        aec = Signal(8)
        m.d.comb += [
            self.burst_log2.eq(arb[:3]),
            self.arbitration.eq(arb),
            self.coalescing.eq(coalescing),
            self.no_coalescing.eq(no_coalescing),
        ]

        # -- Asynchronous events -----------------------------------------------------------------
        held = Signal(range(AER_SLOTS + 1))
        held_cid = [Signal(16, name=f"held_cid{i}") for i in range(AER_SLOTS)]
        pend_db_reg = Signal()       # error: invalid doorbell register
        pend_db_val = Signal()       # error: invalid doorbell write value
        pend_temp = Signal()         # SMART: temperature threshold
        mask_error = Signal()
        mask_smart = Signal()
        m.d.comb += self.events.ready.eq(1)
        with m.If(self.events.valid):
            with m.If(self.events.p.info == AsyncEventInfoError.INVALID_DOORBELL_REGISTER.value):
                m.d.sync += pend_db_reg.eq(1)
            with m.Else():
                m.d.sync += pend_db_val.eq(1)
        too_hot = Signal()
        # At or over the over-temperature threshold, at or under the under one [NVMe 1.4
        # §5.21.1.4].
        m.d.comb += too_hot.eq((self.temperature >= temp_over)
                               | (self.temperature <= temp_under))
        too_hot_r = Signal()
        m.d.sync += too_hot_r.eq(too_hot)
        with m.If(too_hot & ~too_hot_r & aec[1]):
            m.d.sync += pend_temp.eq(1)
        m.d.comb += self.critical_warning.eq(too_hot << 1)

        event_ready = Signal()
        event_dw0 = Signal(32)
        m.d.comb += event_ready.eq((held != 0) & ((~mask_error & (pend_db_reg | pend_db_val))
                                                 | (~mask_smart & pend_temp)))
        with m.If(~mask_error & pend_db_reg):
            m.d.comb += event_dw0.eq(AsyncEvent.const({
                "type": AsyncEventType.ERROR, "lid": LogPage.ERROR_INFORMATION.value,
                "info": AsyncEventInfoError.INVALID_DOORBELL_REGISTER.value}).as_bits())
        with m.Elif(~mask_error & pend_db_val):
            m.d.comb += event_dw0.eq(AsyncEvent.const({
                "type": AsyncEventType.ERROR, "lid": LogPage.ERROR_INFORMATION.value,
                "info": AsyncEventInfoError.INVALID_DOORBELL_WRITE_VALUE.value}).as_bits())
        with m.Else():
            m.d.comb += event_dw0.eq(AsyncEvent.const({
                "type": AsyncEventType.SMART_HEALTH, "lid": LogPage.SMART_HEALTH.value,
                "info": AsyncEventInfoSmart.TEMPERATURE_THRESHOLD.value}).as_bits())

        # -- Decoding helpers ---------------------------------------------------------------------
        qid = cdw10[:16]
        qsize = cdw10[16:32]
        io_qid_ok = (qid != 0) & (qid <= max_qid)
        sq_exists = Signal()
        cq_exists = Signal()
        m.d.comb += [
            sq_exists.eq(io_qid_ok & qs.sq_valid.bit_select(qid[:qw], 1)),
            cq_exists.eq(io_qid_ok & qs.cq_valid.bit_select(qid[:qw], 1)),
        ]
        page_misaligned = prp1[:12] != 0
        any_io_queue = (qs.sq_valid[1:] | qs.cq_valid[1:]).any() if n > 1 else Const(0)

        src_offset = Signal(13)
        length = Signal(13)            # bytes to transfer, latched when the command starts
        delete_cq = Signal(qw)

        fid = cdw10[:8]
        log_lid = cdw10[:8]
        rae = cdw10[15]
        log_offset = Cat(cdw12, cdw13)

        def transfer_checks(sqe):
            """The data transfer checks of Identify and Get Log Page, from ``sqe`` alone:
            worked out on the command as it is taken and registered beside it, so that
            the decision in DECODE starts from their results (their adds and compares
            are not on its path)."""
            c10, offset = sqe.cdw10, Cat(sqe.cdw12, sqe.cdw13)
            size = Signal(13, name="log_size")
            with m.Switch(c10[:8]):
                for lid, nbytes in LOG_SIZES.items():
                    with m.Case(lid.value):
                        m.d.comb += size.eq(nbytes)
            numd = Signal(33, name="log_numd")
            m.d.comb += numd.eq(Cat(c10[16:32], sqe.cdw11[:16]) + 1)
            total = Signal(34, name="log_total")
            m.d.comb += total.eq(numd << 2)
            remaining = Signal(14, name="log_remaining")
            m.d.comb += remaining.eq(size - offset[:13])
            xfer = Signal(13, name="log_xfer")
            m.d.comb += xfer.eq(Mux(total < remaining, total, remaining))

            def prp_bad(xfer_len):
                p1, p2 = sqe.prp1, sqe.prp2
                return (p1[:2] != 0) | (((p1[:12] + xfer_len) > PAGE) & (p2[:12] != 0))
            return {"page_prp_bad": prp_bad(PAGE), "log_prp_bad": prp_bad(xfer),
                    "log_xfer": xfer, "log_too_long": total > (PAGE << MDTS),
                    "log_size_zero": size == 0, "log_past_end": offset >= size}
        incoming_checks = transfer_checks(self.cmd.p.sqe)
        checks = {name: Signal(value.shape(), name=f"{name}_r")
                  for name, value in incoming_checks.items()}

        queues_dw0 = self._queues_dw0

        def get_feature_dw0(selector):
            value = Signal(32, name="feature_dw0")
            with m.Switch(selector):
                with m.Case(FeatureId.ARBITRATION.value):
                    m.d.comb += value.eq(arb)
                with m.Case(FeatureId.POWER_MANAGEMENT.value):
                    m.d.comb += value.eq(power_wh << 5)
                with m.Case(FeatureId.TEMPERATURE_THRESHOLD.value):
                    m.d.comb += value.eq(Mux(cdw11[20:22] == 0, temp_over, temp_under))
                with m.Case(FeatureId.ERROR_RECOVERY.value):
                    m.d.comb += value.eq(tler)
                with m.Case(FeatureId.NUMBER_OF_QUEUES.value):
                    m.d.comb += value.eq(queues_dw0)
                with m.Case(FeatureId.INTERRUPT_COALESCING.value):
                    m.d.comb += value.eq(coalescing.as_value())
                with m.Case(FeatureId.INTERRUPT_VECTOR_CONFIG.value):
                    m.d.comb += value.eq(Cat(cdw11[:16], no_coalescing.bit_select(
                        cdw11[:max(1, (vectors - 1).bit_length())], 1)))
                with m.Case(FeatureId.WRITE_ATOMICITY_NORMAL.value):
                    m.d.comb += value.eq(wan)
                with m.Case(FeatureId.ASYNC_EVENT_CONFIG.value):
                    m.d.comb += value.eq(aec)
            return value

        feature_dw0 = get_feature_dw0(fid)
        iv_ok = cdw11[:16] < vectors

        # -- The state machine -------------------------------------------------------------------
        setup = self.setup
        db = self.doorbell_queue
        pending_create = Signal()
        with m.If(self.admin_create):
            m.d.sync += pending_create.eq(1)

        abort_target = Signal(range(AER_SLOTS))
        abort_hit = Signal()
        for i in reversed(range(AER_SLOTS)):
            with m.If((i < held) & (held_cid[i] == cdw10[16:32])):
                m.d.comb += [abort_target.eq(i), abort_hit.eq(1)]

        m.d.comb += [qs.cq.eq(delete_cq), qs.sq.eq(qid[:qw]), qs.users_cq.eq(qid[:qw])]
        with m.FSM(name="admin"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(~own_valid)
                with m.If(pending_create):
                    m.d.sync += pending_create.eq(0)
                    m.next = "ADMIN_SQ"
                with m.Elif(event_ready & ~own_valid & self.event_enable):
                    m.d.comb += self.reserve.eq(1)
                    with m.If(self.reserve_ack):
                        # Complete the oldest held AER with the event, mask its type.
                        m.d.sync += [
                            own_valid.eq(1), own.dw0.eq(event_dw0), own.nsid.eq(0),
                            own.sqid.eq(0), own.cqid.eq(0), own.cid.eq(held_cid[0]),
                            own.sc.eq(0), own.sct.eq(0),
                            own.dnr.eq(0), held.eq(held - 1),
                        ]
                        for i in range(AER_SLOTS - 1):
                            m.d.sync += held_cid[i].eq(held_cid[i + 1])
                        with m.If(~mask_error & pend_db_reg):
                            m.d.sync += [pend_db_reg.eq(0), mask_error.eq(1)]
                        with m.Elif(~mask_error & pend_db_val):
                            m.d.sync += [pend_db_val.eq(0), mask_error.eq(1)]
                        with m.Else():
                            m.d.sync += [pend_temp.eq(0), mask_smart.eq(1)]
                with m.Elif(self.cmd.valid & ~own_valid):
                    m.d.comb += self.cmd.ready.eq(1)
                    m.d.sync += cmd.eq(self.cmd.p)
                    m.d.sync += [checks[k].eq(v) for k, v in incoming_checks.items()]
                    m.next = "DECODE"

            # Admin queue pair at CC.EN 0→1: queue 0, vector 0, interrupts on.
            with m.State("ADMIN_SQ"):
                m.d.comb += [
                    setup.valid.eq(1), setup.qid.eq(0), setup.cq.eq(0), setup.create.eq(1),
                    setup.base.eq(self.asq[12:]), setup.size_m1.eq(self.admin_sq_size - 1),
                    setup.cqid.eq(0),
                ]
                m.next = "ADMIN_CQ"
            with m.State("ADMIN_CQ"):
                m.d.comb += [
                    setup.valid.eq(1), setup.qid.eq(0), setup.cq.eq(1), setup.create.eq(1),
                    setup.base.eq(self.acq[12:]), setup.size_m1.eq(self.admin_cq_size - 1),
                    setup.iv.eq(0), setup.ien.eq(1),
                ]
                m.next = "IDLE"

            with m.State("DECODE"):
                # Every path completes at once and returns to IDLE, unless it moves on.
                m.next = "IDLE"
                # Gating [docs/admin-commands.md, "Command gating"]
                known = Cat(*(opc == op.value for op in AdminOpcode)).any()
                with m.If(~known):
                    complete(INVALID_OPCODE)
                with m.Elif(sqe.cdw0.psdt != 0):
                    complete(INVALID_FIELD)
                with m.Elif(sqe.cdw0.fuse != 0):
                    complete(INVALID_FIELD_RETRY)
                with m.Else():
                    with m.Switch(opc):
                        with m.Case(AdminOpcode.CREATE_IO_CQ.value):
                            iv = cdw11[16:32]
                            with m.If((self.cc.iosqes != 6) | (self.cc.iocqes != 4)):
                                complete(INVALID_QSIZE)
                            with m.Elif(~io_qid_ok | cq_exists):
                                complete(INVALID_QID)
                            with m.Elif((qsize == 0) | (qsize > mqes)):
                                complete(INVALID_QSIZE)
                            with m.Elif(page_misaligned):
                                complete(INVALID_PRP_OFFSET)
                            with m.Elif((iv >= vectors) | ((iv != 0) & ~self.msix_enable)):
                                complete(INVALID_VECTOR)
                            with m.Elif(cdw11[0] == 0):
                                complete(INVALID_FIELD)
                            with m.Else():
                                m.next = "CREATE"
                        with m.Case(AdminOpcode.CREATE_IO_SQ.value):
                            cqid = cdw11[16:32]
                            cq_ok = (cqid != 0) & (cqid <= max_qid) & \
                                qs.cq_valid.bit_select(cqid[:qw], 1)
                            with m.If(~cq_ok):
                                complete(CQ_INVALID)
                            with m.Elif(~io_qid_ok | sq_exists):
                                complete(INVALID_QID)
                            with m.Elif((qsize == 0) | (qsize > mqes)):
                                complete(INVALID_QSIZE)
                            with m.Elif(page_misaligned):
                                complete(INVALID_PRP_OFFSET)
                            with m.Elif(cdw11[0] == 0):
                                complete(INVALID_FIELD)
                            with m.Else():
                                m.next = "CREATE"
                        with m.Case(AdminOpcode.DELETE_IO_SQ.value):
                            with m.If(~sq_exists):
                                complete(INVALID_QID)
                            with m.Else():
                                m.next = "DELETE"
                        with m.Case(AdminOpcode.DELETE_IO_CQ.value):
                            with m.If(~cq_exists):
                                complete(INVALID_QID)
                            with m.Elif(qs.cq_users):
                                complete(INVALID_DELETION)
                            with m.Else():
                                m.next = "DELETE"
                        with m.Case(AdminOpcode.IDENTIFY.value):
                            cns = cdw10[:8]
                            ns_ok = nsid == 1
                            with m.If(cns == 0x00):
                                m.d.sync += self.source.eq(Source.IDENTIFY_NS)
                            with m.Elif(cns == 0x01):
                                m.d.sync += self.source.eq(Source.IDENTIFY_CTRL)
                            with m.Elif(cns == 0x02):
                                m.d.sync += self.source.eq(Source.IDENTIFY_NS_LIST)
                            with m.Else():
                                m.d.sync += self.source.eq(Source.IDENTIFY_NS_DESC)
                            with m.If((cns != 0x00) & (cns != 0x01) & (cns != 0x02)
                                      & (cns != 0x03)):
                                complete(INVALID_FIELD)
                            with m.Elif(((cns == 0x00) | (cns == 0x03)) & ~ns_ok):
                                complete(INVALID_NAMESPACE)
                            with m.Elif((cns == 0x02) & (nsid >= 0xFFFF_FFFE)):
                                complete(INVALID_NAMESPACE)
                            with m.Elif(checks["page_prp_bad"]):
                                complete(INVALID_PRP_OFFSET)
                            with m.Else():
                                with m.If((cns == 0x02) & (nsid != 0)):
                                    # No active namespace above NSID 1: an empty list.
                                    m.d.sync += self.source.eq(Source.ZERO)
                                m.d.sync += [src_offset.eq(0), length.eq(PAGE)]
                                m.next = "WRITE"
                        with m.Case(AdminOpcode.GET_LOG_PAGE.value):
                            with m.Switch(log_lid):
                                with m.Case(LogPage.ERROR_INFORMATION.value):
                                    m.d.sync += self.source.eq(Source.LOG_ERROR)
                                with m.Case(LogPage.SMART_HEALTH.value):
                                    m.d.sync += self.source.eq(Source.LOG_SMART)
                                with m.Default():
                                    m.d.sync += self.source.eq(Source.LOG_FIRMWARE)
                            with m.If(log_offset[:2] != 0):
                                complete(INVALID_FIELD)
                            with m.Elif(checks["log_too_long"]):
                                complete(INVALID_FIELD)
                            with m.Elif(checks["log_size_zero"]):
                                complete(INVALID_LOG_PAGE)
                            with m.Elif(checks["log_past_end"]):
                                complete(INVALID_FIELD)
                            with m.Elif(checks["log_prp_bad"]):
                                complete(INVALID_PRP_OFFSET)
                            with m.Else():
                                m.d.sync += [src_offset.eq(log_offset[:13]),
                                             length.eq(checks["log_xfer"])]
                                with m.If(~rae):
                                    with m.If(log_lid == LogPage.ERROR_INFORMATION.value):
                                        m.d.sync += mask_error.eq(0)
                                    with m.If(log_lid == LogPage.SMART_HEALTH.value):
                                        m.d.sync += mask_smart.eq(0)
                                m.next = "WRITE"
                        with m.Case(AdminOpcode.SET_FEATURES.value):
                            self.set_features(m, complete, fid, cdw10, cdw11, any_io_queue,
                                              iv_ok, {
                                                  "arb": arb, "power_wh": power_wh,
                                                  "temp_over": temp_over,
                                                  "temp_under": temp_under, "tler": tler,
                                                  "coalescing": coalescing,
                                                  "nc_mask": nc_mask, "nc_value": nc_value,
                                                  "wan": wan, "aec": aec})
                        with m.Case(AdminOpcode.GET_FEATURES.value):
                            known_fid = Cat(*(fid == f.value for f in FeatureId
                                              if f is not FeatureId.VOLATILE_WRITE_CACHE)).any()
                            with m.If(cdw10[8:11] != 0):
                                complete(INVALID_FIELD)
                            with m.Elif(~known_fid):
                                complete(INVALID_FIELD)
                            with m.Elif((fid == FeatureId.INTERRUPT_VECTOR_CONFIG.value) & ~iv_ok):
                                complete(INVALID_FIELD)
                            with m.Elif((fid == FeatureId.TEMPERATURE_THRESHOLD.value)
                                        & ((cdw11[16:20] != 0) | cdw11[21])):
                                complete(INVALID_FIELD)
                            with m.Else():
                                complete(SUCCESS, dw0=feature_dw0)
                        with m.Case(AdminOpcode.ASYNC_EVENT_REQ.value):
                            with m.If(held == AER_SLOTS):
                                complete(AER_LIMIT)
                            with m.Else():
                                # Held: it gives back the CQ slot reserved when fetched.
                                m.d.comb += [qs.release.valid.eq(1),
                                             qs.release.qid.eq(0)]
                                for i in range(AER_SLOTS):
                                    with m.If(held == i):
                                        m.d.sync += held_cid[i].eq(sqe.cdw0.cid)
                                m.d.sync += held.eq(held + 1)
                        with m.Case(AdminOpcode.ABORT.value):
                            sqid = cdw10[:16]
                            sq_ok = (sqid <= max_qid) & qs.sq_valid.bit_select(sqid[:qw], 1)
                            with m.If(~sq_ok):
                                complete(INVALID_FIELD_RETRY)
                            with m.Elif((sqid == 0) & abort_hit):
                                m.next = "ABORT_AER"
                            with m.Elif(sqid != 0):
                                m.next = "ABORT_IO"
                            with m.Else():
                                complete(SUCCESS, dw0=1)
                        with m.Case(AdminOpcode.FORMAT_NVM.value):
                            # [NVMe 1.4 §5.23; docs/io-commands.md] no metadata, no PI
                            dw10 = data.View(FormatNvmDw10, cdw10)
                            with m.If((nsid != 1) & (nsid != BROADCAST_NSID)):
                                complete(INVALID_NAMESPACE)
                            with m.Elif(dw10.lbaf > NLBAF):
                                complete(INVALID_FORMAT)
                            with m.Elif(dw10.pi != 0):
                                complete(INVALID_FORMAT)
                            with m.Elif((dw10.ses != SecureErase.NONE.value)
                                        & (dw10.ses != SecureErase.USER_DATA_ERASE.value)):
                                complete(INVALID_FIELD)
                            with m.Else():
                                m.next = "FORMAT"

            with m.State("CREATE"):
                is_cq = opc == AdminOpcode.CREATE_IO_CQ.value
                m.d.comb += [
                    db.valid.eq(1), db.p.qid.eq(qid), db.p.cq.eq(is_cq), db.p.valid.eq(1),
                    db.p.size.eq(qsize + 1),
                ]
                with m.If(db.ready):
                    m.d.comb += [
                        setup.valid.eq(1), setup.qid.eq(qid), setup.cq.eq(is_cq),
                        setup.create.eq(1), setup.base.eq(prp1[12:]), setup.size_m1.eq(qsize),
                        setup.cqid.eq(cdw11[16:32]), setup.prio.eq(cdw11[1:3]),
                        setup.iv.eq(cdw11[16:32]), setup.ien.eq(cdw11[1]),
                    ]
                    complete(SUCCESS)
                    m.next = "IDLE"
            with m.State("DELETE"):
                is_cq = opc == AdminOpcode.DELETE_IO_CQ.value
                m.d.comb += [
                    db.valid.eq(1), db.p.qid.eq(qid), db.p.cq.eq(is_cq), db.p.valid.eq(0),
                ]
                # The SQ's CQ: its commands in flight are on the port from the next cycle.
                m.d.comb += qs.cq.eq(qs.sq_cqid)
                with m.If(db.ready):
                    m.d.comb += [
                        setup.valid.eq(1), setup.qid.eq(qid), setup.cq.eq(is_cq),
                        setup.create.eq(0),
                    ]
                    m.d.sync += delete_cq.eq(qs.sq_cqid)
                    with m.If(is_cq):
                        complete(SUCCESS)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                # Commands already fetched from the deleted SQ complete first; so do those
                # of its CQ's other SQs, which are not fetched from meanwhile (hold_cq).
                m.d.comb += [self.hold_cq.valid.eq(1), self.hold_cq.qid.eq(delete_cq)]
                with m.If(qs.cq_inflight == 0):
                    complete(SUCCESS)
                    m.next = "IDLE"
            with m.State("WRITE"):
                m.d.comb += [
                    self.writer.valid.eq(1),
                    self.writer.p.prp1.eq(prp1), self.writer.p.prp2.eq(prp2),
                    self.writer.p.length.eq(length), self.writer.p.offset.eq(src_offset),
                ]
                with m.If(self.writer.ready):
                    m.next = "WRITING"
            with m.State("WRITING"):
                with m.If(self.writer_idle):
                    complete(SUCCESS)
                    m.next = "IDLE"
            with m.State("FORMAT"):
                # The I/O engine drains its commands, zeroes the namespace, switches FLBAS.
                m.d.comb += [self.format.valid.eq(1),
                             self.format.p.lbaf.eq(data.View(FormatNvmDw10, cdw10).lbaf)]
                with m.If(self.format.ready):
                    complete(self.format_status)
                    m.next = "IDLE"
            with m.State("ABORT_IO"):
                # An I/O command not started yet is aborted (it completes with Abort
                # Requested by its mover); otherwise "not aborted" (DW0 bit 0 = 1).
                m.d.comb += [self.io_abort.valid.eq(1),
                             self.io_abort.p.sqid.eq(cdw10[:16]),
                             self.io_abort.p.cid.eq(cdw10[16:32])]
                with m.If(self.io_abort.ready):
                    complete(SUCCESS, dw0=~self.io_abort_hit)
                    m.next = "IDLE"
            with m.State("ABORT_AER"):
                # The aborted AER needs a CQ slot of its own.
                m.d.comb += self.reserve.eq(1)
                with m.If(self.reserve_ack):
                    complete(ABORT_REQUESTED, cid=held_cid[0])
                    m.next = "ABORT_DONE"
            with m.State("ABORT_DONE"):
                with m.If(~own_valid):
                    complete(SUCCESS, dw0=0)
                    m.next = "IDLE"

        # Features go back to their defaults on a controller reset; the Error Information
        # log and its count are kept (they are the controller's history).
        with m.If(self.ctrl_reset):
            m.d.sync += [held.eq(0), pend_db_reg.eq(0), pend_db_val.eq(0), pend_temp.eq(0),
                         mask_error.eq(0), mask_smart.eq(0), arb.eq(0x7), power_wh.eq(0),
                         temp_over.eq(WCTEMP_K), temp_under.eq(0), tler.eq(0),
                         coalescing.eq(0), no_coalescing.eq(1), wan.eq(0), aec.eq(0)]
        return m

    def set_features(self, m, complete, fid, cdw10, cdw11, any_io_queue, iv_ok, f):
        """Set Features [NVMe 1.4 §5.21]: check, store, complete (docs/admin-commands.md)."""
        queues_dw0 = self._queues_dw0
        vectors = self._config.msix_vectors
        vw = max(1, (vectors - 1).bit_length())
        with m.If(cdw10[31]):
            complete(NOT_SAVEABLE)
        with m.Else():
            with m.Switch(fid):
                with m.Case(FeatureId.ARBITRATION.value):
                    m.d.sync += f["arb"].eq(Cat(cdw11[:3], Const(0, 5), cdw11[8:32]))
                    complete(SUCCESS)
                with m.Case(FeatureId.POWER_MANAGEMENT.value):
                    with m.If(cdw11[:5] != 0):
                        complete(INVALID_FIELD)
                    with m.Else():
                        m.d.sync += f["power_wh"].eq(cdw11[5:8])
                        complete(SUCCESS)
                with m.Case(FeatureId.TEMPERATURE_THRESHOLD.value):
                    with m.If((cdw11[16:20] != 0) | cdw11[21]):
                        complete(INVALID_FIELD)
                    with m.Else():
                        with m.If(cdw11[20]):
                            m.d.sync += f["temp_under"].eq(cdw11[:16])
                        with m.Else():
                            m.d.sync += f["temp_over"].eq(cdw11[:16])
                        complete(SUCCESS)
                with m.Case(FeatureId.ERROR_RECOVERY.value):
                    with m.If(cdw11[16]):
                        complete(INVALID_FIELD)
                    with m.Else():
                        m.d.sync += f["tler"].eq(cdw11[:16])
                        complete(SUCCESS)
                with m.Case(FeatureId.NUMBER_OF_QUEUES.value):
                    with m.If(any_io_queue):
                        complete(SEQUENCE_ERROR)
                    with m.Elif((cdw11[:16] == 0xFFFF) | (cdw11[16:32] == 0xFFFF)):
                        complete(INVALID_FIELD)
                    with m.Else():
                        complete(SUCCESS, dw0=queues_dw0)
                with m.Case(FeatureId.INTERRUPT_COALESCING.value):
                    m.d.sync += f["coalescing"].eq(cdw11[:16])
                    complete(SUCCESS)
                with m.Case(FeatureId.INTERRUPT_VECTOR_CONFIG.value):
                    with m.If(~iv_ok | ((cdw11[:16] == 0) & ~cdw11[16])):
                        complete(INVALID_FIELD)
                    with m.Else():
                        m.d.comb += [f["nc_mask"].eq(onehot(cdw11[:vw], 1, len(f["nc_mask"]))),
                                     f["nc_value"].eq(cdw11[16])]
                        complete(SUCCESS)
                with m.Case(FeatureId.WRITE_ATOMICITY_NORMAL.value):
                    m.d.sync += f["wan"].eq(cdw11[0])
                    complete(SUCCESS)
                with m.Case(FeatureId.ASYNC_EVENT_CONFIG.value):
                    m.d.sync += f["aec"].eq(cdw11[:8])
                    complete(SUCCESS)
                with m.Default():
                    complete(INVALID_FIELD)
