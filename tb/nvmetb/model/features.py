"""Features: their current values and the Set Features / Get Features rules
[NVMe 1.4 §5.13, §5.21], as docs/admin-commands.md ("Features") fixes them.

Every supported feature either acts or is refused with Invalid Field (DESIGN.md §11).
Nothing is saveable, so values are not persistent across reset events: a controller
reset restores the defaults [NVMe 1.4 §5.21, SV] (QEMU keeps them; the spec decides).
Values are kept in their CDW11 format, reserved bits cleared; Get returns them in DW0.
"""

from nvmecore.admin_layouts import QueuePriority
from nvmecore.config import CoreConfig
from nvmecore.layouts import GenericStatus
from nvmecore.nvme.identify import WCTEMP_K

from .commands import (
    Arbitration,
    AsyncEventConfig,
    ErrorRecovery,
    FeatureId,
    InterruptCoalescing,
    InterruptVectorConfig,
    NumberOfQueues,
    PowerManagement,
    Refused,
    TemperatureThreshold,
    ThresholdType,
    WriteAtomicityNormal,
    encode,
    fields,
    writable_bits,
)

__all__ = ["Features"]

#: Features kept as one CDW11-format value, with their defaults.
_STORED = {
    FeatureId.ARBITRATION:            (Arbitration, {"ab": 0b111}),   # no burst limit
    FeatureId.POWER_MANAGEMENT:       (PowerManagement, {}),
    FeatureId.ERROR_RECOVERY:         (ErrorRecovery, {}),
    FeatureId.INTERRUPT_COALESCING:   (InterruptCoalescing, {}),
    FeatureId.WRITE_ATOMICITY_NORMAL: (WriteAtomicityNormal, {}),
    FeatureId.ASYNC_EVENT_CONFIG:     (AsyncEventConfig, {}),
}


def _invalid_field():
    return Refused(GenericStatus.INVALID_FIELD, dnr=True)


class Features:
    def __init__(self, config: CoreConfig):
        self.config = config
        self.reset()

    def reset(self):
        self.values = {fid: encode(layout, default) for fid, (layout, default) in
                       _STORED.items()}
        # Temperature Threshold: over = WCTEMP, under = 0 [NVMe 1.4 §5.21.1.4].
        self.threshold = {ThresholdType.OVER: WCTEMP_K, ThresholdType.UNDER: 0}
        # Coalescing Disable per vector. Vector 0 serves the admin CQ, which is never
        # coalesced, and may not have CD cleared (Set: IV = 0 without CD is refused).
        self.coalescing_disabled = [v == 0 for v in range(self.config.msix_vectors)]

    # -- What the rest of the controller reads ------------------------------------------

    def value(self, fid):
        return fields(_STORED[fid][0], self.values[fid])

    @property
    def arbitration_burst(self):
        """AB: 2^AB entries per fetch, 111b = no limit."""
        return self.value(FeatureId.ARBITRATION).ab

    @property
    def arbitration_weights(self):
        """HPW + 1, MPW + 1, LPW + 1 (0's based in the feature) by class."""
        v = self.value(FeatureId.ARBITRATION)
        return {QueuePriority.HIGH: v.hpw + 1, QueuePriority.MEDIUM: v.mpw + 1,
                QueuePriority.LOW: v.lpw + 1}

    @property
    def aggregation(self):
        """(THR, TIME) of Interrupt Coalescing."""
        v = self.value(FeatureId.INTERRUPT_COALESCING)
        return v.thr, v.time

    @property
    def smart_events(self):
        """Asynchronous Event Configuration bits 7:0: which SMART critical warnings
        raise an event."""
        return self.value(FeatureId.ASYNC_EVENT_CONFIG).smart

    # -- Set Features [NVMe 1.4 §5.21] ---------------------------------------------------

    def set(self, fid, cdw11, io_queues_exist):
        """Apply Set Features; returns DW0. The checks common to every feature (SV, an
        unknown FID) are the caller's."""
        match fid:
            case FeatureId.POWER_MANAGEMENT:
                if fields(PowerManagement, cdw11).ps != 0:       # NPSS = 0: one state
                    raise _invalid_field()
            case FeatureId.TEMPERATURE_THRESHOLD:
                v = self._threshold_select(cdw11)
                self.threshold[ThresholdType(v.thsel)] = v.tmpth
                return 0
            case FeatureId.ERROR_RECOVERY:
                if fields(ErrorRecovery, cdw11).dulbe:            # no deallocated blocks
                    raise _invalid_field()
            case FeatureId.VOLATILE_WRITE_CACHE:
                raise _invalid_field()                            # VWC = 0
            case FeatureId.NUMBER_OF_QUEUES:
                # [NVMe 1.4 §5.21.1.7]: only before any I/O queue is created.
                if io_queues_exist:
                    raise Refused(GenericStatus.COMMAND_SEQUENCE_ERROR, dnr=True)
                v = fields(NumberOfQueues, cdw11)
                if 0xFFFF in (v.nsq, v.ncq):                      # 65536 is invalid
                    raise _invalid_field()
                return self._queues_allocated()
            case FeatureId.INTERRUPT_VECTOR_CONFIG:
                v = fields(InterruptVectorConfig, cdw11)
                if v.iv >= self.config.msix_vectors or (v.iv == 0 and not v.cd):
                    raise _invalid_field()
                self.coalescing_disabled[v.iv] = bool(v.cd)
                return 0
        layout = _STORED[fid][0]
        self.values[fid] = cdw11 & writable_bits(layout)
        return 0

    # -- Get Features [NVMe 1.4 §5.13] ---------------------------------------------------

    def get(self, fid, cdw11):
        """Current value of a feature (DW0)."""
        match fid:
            case FeatureId.TEMPERATURE_THRESHOLD:
                v = self._threshold_select(cdw11)
                return self.threshold[ThresholdType(v.thsel)]     # TMPTH, as QEMU
            case FeatureId.VOLATILE_WRITE_CACHE:
                raise _invalid_field()
            case FeatureId.NUMBER_OF_QUEUES:
                return self._queues_allocated()
            case FeatureId.INTERRUPT_VECTOR_CONFIG:
                iv = fields(InterruptVectorConfig, cdw11).iv
                if iv >= self.config.msix_vectors:
                    raise _invalid_field()
                return encode(InterruptVectorConfig,
                              {"iv": iv, "cd": int(self.coalescing_disabled[iv])})
        return self.values[fid]

    # -- Helpers ---------------------------------------------------------------------------

    @staticmethod
    def _threshold_select(cdw11):
        """The composite temperature's over or under threshold, else Invalid Field."""
        v = fields(TemperatureThreshold, cdw11)
        if v.tmpsel != 0 or v.thsel not in {t.value for t in ThresholdType}:
            raise _invalid_field()
        return v

    def _queues_allocated(self):
        """DW0 of Number of Queues: all I/O queues, whatever was asked (0's based)."""
        n = self.config.io_queues - 1
        return encode(NumberOfQueues, {"nsq": n, "ncq": n})

