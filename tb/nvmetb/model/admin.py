"""The admin command set [NVMe 1.4 §5], exactly as docs/admin-commands.md fixes it:
command gating, then each command's checks in the listed order, the first that applies
giving the status.

Each handler reads the SQE (an ``nvmecore.layouts.Sqe`` view), raises :class:`Refused`
for a failed check, and returns DW0 on success (or :data:`HELD` for an Asynchronous Event
Request). What a command does to the controller goes through the :class:`ControllerModel`
it belongs to: queues, features, events, the error log and host memory.
"""

from nvmecore.layouts import (
    AdminOpcode,
    AsyncEventType,
    CommandSpecificStatus,
    GenericStatus,
    LogPage,
)
from nvmecore.nvm_layouts import BROADCAST_NSID, FormatNvmDw10, SecureErase
from nvmecore.nvme import identify
from nvmecore.nvme.identify import CRITICAL_WARNING_TEMPERATURE, NLBAF, NN

from .commands import (
    AbortDw10,
    Cns,
    CreateCqDw11,
    CreateSqDw11,
    Done,
    FeatureDw10,
    FeatureId,
    GetLogPageDw10,
    GetLogPageDw11,
    IdentifyDw10,
    QueueIdSize,
    Refused,
    fields,
)
from .events import HeldRequest
from .io import MDTS_BYTES
from .queues import CQE_BYTES, SQE_BYTES

__all__ = ["Done", "HELD", "AdminCommandSet"]

#: The event type whose events reading a log page with RAE = 0 re-arms [NVMe 1.4 §5.2].
_LOG_EVENT_TYPE = {
    LogPage.ERROR_INFORMATION: AsyncEventType.ERROR,
    LogPage.SMART_HEALTH: AsyncEventType.SMART_HEALTH,
}


#: An Asynchronous Event Request was taken and is held: no completion now.
HELD = object()


def _log2(n):
    return n.bit_length() - 1


class AdminCommandSet:
    def __init__(self, ctrl):
        self.ctrl = ctrl
        self.config = ctrl.config
        self._handlers = {
            AdminOpcode.DELETE_IO_SQ:    self.delete_io_sq,
            AdminOpcode.CREATE_IO_SQ:    self.create_io_sq,
            AdminOpcode.GET_LOG_PAGE:    self.get_log_page,
            AdminOpcode.DELETE_IO_CQ:    self.delete_io_cq,
            AdminOpcode.CREATE_IO_CQ:    self.create_io_cq,
            AdminOpcode.IDENTIFY:        self.identify,
            AdminOpcode.ABORT:           self.abort,
            AdminOpcode.SET_FEATURES:    self.set_features,
            AdminOpcode.GET_FEATURES:    self.get_features,
            AdminOpcode.ASYNC_EVENT_REQ: self.async_event_request,
            AdminOpcode.FORMAT_NVM:      self.format_nvm,
        }

    def execute(self, sqe):
        """Run one admin command: :class:`Done` or :data:`HELD`."""
        try:
            # Command gating, in this order [docs/admin-commands.md; QEMU nvme_admin_cmd].
            try:
                handler = self._handlers[AdminOpcode(sqe.cdw0.opc)]
            except ValueError:
                raise Refused(GenericStatus.INVALID_OPCODE, dnr=True) from None
            if sqe.cdw0.psdt != 0:                  # SGLs are not supported (SGLS = 0)
                raise Refused(GenericStatus.INVALID_FIELD, dnr=True)
            if sqe.cdw0.fuse != 0:                  # no fused operations (FUSES = 0)
                raise Refused(GenericStatus.INVALID_FIELD)
            result = handler(sqe)
        except Refused as refused:
            return Done(status=refused.status)
        return result if result is HELD else Done(dw0=result)

    # -- Queue management [NVMe 1.4 §5.3 - §5.6] ------------------------------------------

    def _io_qid(self, qid):
        """An I/O queue ID: 1 .. io_queues."""
        return 1 <= qid <= self.config.io_queues

    def _queue_size_ok(self, qsize):
        """QSIZE (0's based): at least 2 entries, at most CAP.MQES + 1."""
        return 1 <= qsize <= self.config.cap_mqes

    def delete_io_sq(self, sqe):
        qid = fields(QueueIdSize, sqe.cdw10).qid
        if not self._io_qid(qid) or qid not in self.ctrl.sqs:
            raise Refused(CommandSpecificStatus.INVALID_QUEUE_IDENTIFIER, dnr=True)
        # Commands of the SQ fetched before this one have all completed: the model
        # runs every fetched command to completion before it fetches again.
        self.ctrl.delete_sq(qid)
        return 0

    def create_io_sq(self, sqe):
        dw10, dw11 = fields(QueueIdSize, sqe.cdw10), fields(CreateSqDw11, sqe.cdw11)
        # CQ 0 is the admin CQ: an I/O SQ cannot use it.
        if dw11.cqid == 0 or dw11.cqid not in self.ctrl.cqs:
            raise Refused(CommandSpecificStatus.COMPLETION_QUEUE_INVALID, dnr=True)
        if not self._io_qid(dw10.qid) or dw10.qid in self.ctrl.sqs:
            raise Refused(CommandSpecificStatus.INVALID_QUEUE_IDENTIFIER, dnr=True)
        if not self._queue_size_ok(dw10.qsize):
            raise Refused(CommandSpecificStatus.INVALID_QUEUE_SIZE, dnr=True)
        if sqe.prp1 % self.ctrl.page_bytes:
            raise Refused(GenericStatus.INVALID_PRP_OFFSET, dnr=True)
        if not dw11.pc:                             # CAP.CQR = 1
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True)
        self.ctrl.create_sq(dw10.qid, base=sqe.prp1, size=dw10.qsize + 1, cqid=dw11.cqid,
                            qprio=dw11.qprio)
        return 0

    def delete_io_cq(self, sqe):
        qid = fields(QueueIdSize, sqe.cdw10).qid
        # The spec's Invalid Queue Identifier (QEMU: Completion Queue Invalid).
        if not self._io_qid(qid) or qid not in self.ctrl.cqs:
            raise Refused(CommandSpecificStatus.INVALID_QUEUE_IDENTIFIER, dnr=True)
        if any(sq.cqid == qid for sq in self.ctrl.sqs.values()):
            raise Refused(CommandSpecificStatus.INVALID_QUEUE_DELETION)
        self.ctrl.delete_cq(qid)
        return 0

    def create_io_cq(self, sqe):
        dw10, dw11 = fields(QueueIdSize, sqe.cdw10), fields(CreateCqDw11, sqe.cdw11)
        cc = self.ctrl.cc_fields
        if cc.iosqes != _log2(SQE_BYTES) or cc.iocqes != _log2(CQE_BYTES):
            raise Refused(CommandSpecificStatus.INVALID_QUEUE_SIZE, dnr=True)
        if not self._io_qid(dw10.qid) or dw10.qid in self.ctrl.cqs:
            raise Refused(CommandSpecificStatus.INVALID_QUEUE_IDENTIFIER, dnr=True)
        if not self._queue_size_ok(dw10.qsize):
            raise Refused(CommandSpecificStatus.INVALID_QUEUE_SIZE, dnr=True)
        if sqe.prp1 % self.ctrl.page_bytes:
            raise Refused(GenericStatus.INVALID_PRP_OFFSET, dnr=True)
        if dw11.iv >= self.config.msix_vectors or (dw11.iv != 0 and not self.ctrl.msix_enable):
            raise Refused(CommandSpecificStatus.INVALID_INTERRUPT_VECTOR, dnr=True)
        if not dw11.pc:
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True)
        self.ctrl.create_cq(dw10.qid, base=sqe.prp1, size=dw10.qsize + 1, vector=dw11.iv,
                            ien=bool(dw11.ien))
        return 0

    # -- Identify [NVMe 1.4 §5.15] ---------------------------------------------------------

    @staticmethod
    def _check_nsid(nsid):
        """NSID 1 is the only namespace; 0, FFFFFFFFh and above NN are invalid here."""
        if nsid == 0 or nsid == BROADCAST_NSID or nsid > NN:
            raise Refused(GenericStatus.INVALID_NAMESPACE, dnr=True)

    def identify(self, sqe):
        config, device_id = self.config, self.ctrl.device_id
        try:
            cns = Cns(fields(IdentifyDw10, sqe.cdw10).cns)
        except ValueError:                          # not a CNS value at all
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True) from None
        match cns:
            case Cns.NAMESPACE:
                self._check_nsid(sqe.nsid)
                page = identify.identify_namespace(config, device_id, self.ctrl.lba_format)
            case Cns.CONTROLLER:
                page = identify.identify_controller(config, device_id)
            case Cns.ACTIVE_NSID_LIST:
                if sqe.nsid >= 0xFFFF_FFFE:
                    raise Refused(GenericStatus.INVALID_NAMESPACE, dnr=True)
                page = identify.active_namespace_list(config, sqe.nsid)
            case Cns.NS_DESCRIPTORS:
                self._check_nsid(sqe.nsid)
                page = identify.namespace_descriptors(config, device_id)
            case _:                                 # 06h, 08h: not supported
                raise Refused(GenericStatus.INVALID_FIELD, dnr=True)
        self.ctrl.to_host(sqe, page)
        return 0

    # -- Get Log Page [NVMe 1.4 §5.14] -----------------------------------------------------

    def _log_page(self, lid):
        ctrl = self.ctrl
        match lid:
            case LogPage.ERROR_INFORMATION:
                return ctrl.error_log.page()
            case LogPage.SMART_HEALTH:
                return identify.smart_log(
                    temperature=ctrl.temperature,
                    critical_warning=CRITICAL_WARNING_TEMPERATURE if ctrl.temperature_alarm
                    else 0,
                    error_log_entries=ctrl.error_log.count,
                    **ctrl.health.smart_fields())
            case LogPage.FIRMWARE_SLOT:
                return identify.firmware_slot_log(self.config)

    def get_log_page(self, sqe):
        dw10, dw11 = fields(GetLogPageDw10, sqe.cdw10), fields(GetLogPageDw11, sqe.cdw11)
        dwords = (dw11.numdu << 16 | dw10.numdl) + 1
        offset = sqe.cdw13 << 32 | sqe.cdw12
        if offset % 4:
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True)
        if 4 * dwords > MDTS_BYTES:                 # the transfer asked for, as QEMU checks
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True)
        try:
            lid = LogPage(dw10.lid)
        except ValueError:                          # the spec's status (QEMU: Invalid Field)
            raise Refused(CommandSpecificStatus.INVALID_LOG_PAGE, dnr=True) from None
        page = self._log_page(lid)
        if offset >= len(page):
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True)
        self.ctrl.to_host(sqe, page[offset:offset + 4 * dwords])
        if not dw10.rae and lid in _LOG_EVENT_TYPE:
            self.ctrl.aer.rearm(_LOG_EVENT_TYPE[lid])
        return 0

    # -- Features [NVMe 1.4 §5.13, §5.21] ----------------------------------------------

    @staticmethod
    def _feature_id(fid):
        try:
            return FeatureId(fid)
        except ValueError:
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True) from None

    def set_features(self, sqe):
        dw10 = fields(FeatureDw10, sqe.cdw10)
        if dw10.sv:                                 # nothing is saveable
            raise Refused(CommandSpecificStatus.FEATURE_NOT_SAVEABLE, dnr=True)
        fid = self._feature_id(dw10.fid)
        dw0 = self.ctrl.features.set(fid, sqe.cdw11, io_queues_exist=self.ctrl.io_queues_exist)
        if fid == FeatureId.TEMPERATURE_THRESHOLD:
            self.ctrl.check_temperature()
        return dw0

    def get_features(self, sqe):
        dw10 = fields(FeatureDw10, sqe.cdw10)
        if dw10.sel != 0:                           # ONCS.Save = 0: current values only
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True)
        return self.ctrl.features.get(self._feature_id(dw10.fid), sqe.cdw11)

    # -- Abort and Asynchronous Event Request [NVMe 1.4 §5.1, §5.2] ------------------------

    def abort(self, sqe):
        dw10 = fields(AbortDw10, sqe.cdw10)
        if dw10.sqid > self.config.io_queues or dw10.sqid not in self.ctrl.sqs:
            raise Refused(GenericStatus.INVALID_FIELD)
        # A held Asynchronous Event Request can be aborted; every other command named has
        # already been fetched and, in the model, run to completion: "not aborted"
        # (DW0 bit 0 = 1). The RTL may abort an I/O command it fetched but has not
        # started yet (0/07 for it, DW0 = 0 for the Abort; docs/io-commands.md): the
        # benches take either outcome, which depends on timing.
        if dw10.sqid == 0 and self.ctrl.aer.abort(dw10.cid):
            return 0
        return 1

    def async_event_request(self, sqe):
        if not self.ctrl.aer.hold(HeldRequest(cid=sqe.cdw0.cid, nsid=sqe.nsid)):
            raise Refused(CommandSpecificStatus.AER_LIMIT_EXCEEDED)
        return HELD

    # -- Format NVM [NVMe 1.4 §5.23] ---------------------------------------------------------

    def format_nvm(self, sqe):
        """docs/io-commands.md "Admin commands the I/O path adds": the checks in order,
        then the whole namespace zeroed (SES 0 and 1 alike) and FLBAS = LBAF. MSET and
        PIL are ignored (no metadata); PRPs are not used. I/O commands in flight would
        be waited for, and new ones refused with Format In Progress: nothing is in
        flight in the model, and the format is done at once."""
        dw10 = fields(FormatNvmDw10, sqe.cdw10)
        if not (sqe.nsid == BROADCAST_NSID or 1 <= sqe.nsid <= NN):
            raise Refused(GenericStatus.INVALID_NAMESPACE, dnr=True)
        if dw10.lbaf > NLBAF:
            raise Refused(CommandSpecificStatus.INVALID_FORMAT, dnr=True)
        if dw10.pi != 0:                            # no metadata, so no protection info
            raise Refused(CommandSpecificStatus.INVALID_FORMAT, dnr=True)
        if dw10.ses not in (SecureErase.NONE.value, SecureErase.USER_DATA_ERASE.value):
            raise Refused(GenericStatus.INVALID_FIELD, dnr=True)   # FNA.crypto = 0
        store = self.ctrl.store
        if not store.zero(0, store.size):
            # A media error while zeroing: Internal Error (docs/backend.md rule 6); the
            # namespace is undefined and keeps its format.
            raise Refused(GenericStatus.INTERNAL_ERROR)
        store.lba_format = dw10.lbaf
        return 0
