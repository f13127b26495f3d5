"""Data sources for the admin engine's host writer: Identify pages and log pages.

One synchronous read interface (``beat`` + ``en`` → ``data`` the next cycle) over: the
Identify ROM (CNS 00h/01h/02h/03h; Identify Namespace in the current LBA format), the
Error Information log (a memory of 64-byte entries, newest first), the SMART / Health log
(built from live values, the I/O engine's counters among them) and the Firmware Slot log
(constant). Beats past the end of a structure read 0.
"""

from amaranth import Const, Module, Mux, Signal
from amaranth.lib import data, enum, memory, wiring
from amaranth.lib.wiring import In, Out

from ..admin_layouts import ErrorLogEntry, FirmwareSlotLog, SmartHealthLog
from ..config import CoreConfig
from .identify import (
    AVAILABLE_SPARE,
    AVAILABLE_SPARE_THRESHOLD,
    ERROR_LOG_ENTRIES,
    IdentifyRom,
    firmware_slot_log,
)
from .io_slots import SmartCounters

__all__ = ["DataSource", "Source"]

PAGE = 4096


class Source(enum.Enum, shape=3):
    IDENTIFY_NS        = 0
    IDENTIFY_CTRL      = 1
    IDENTIFY_NS_LIST   = 2
    IDENTIFY_NS_DESC   = 3
    LOG_ERROR          = 4
    LOG_SMART          = 5
    LOG_FIRMWARE       = 6
    ZERO               = 7      # an empty structure (e.g. no active NSID above the one given)


class DataSource(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        width = config.data_width
        beats = PAGE * 8 // width
        super().__init__({
            "select":      In(Source),
            "beat":        In(range(2 * beats + 2)),
            "en":          In(1),
            "data":        Out(width),
            "device_id":   In(64),
            # Error log: one entry written per error completion
            "error_entry": In(data.StructLayout({"valid": 1, "entry": ErrorLogEntry})),
            "error_count": Out(64),
            # SMART / Health values
            "temperature": In(16),
            "critical_warning": In(8),
            "io_counters": In(SmartCounters),
            "lba_format":  In(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        width = config.data_width
        nbytes = width // 8
        beats = PAGE // nbytes
        bw = (beats - 1).bit_length()

        m.submodules.rom = rom = IdentifyRom(config)
        pages = {Source.IDENTIFY_NS: 1, Source.IDENTIFY_CTRL: 0, Source.IDENTIFY_NS_LIST: 2,
                 Source.IDENTIFY_NS_DESC: 3}
        in_range = self.beat < beats
        m.d.comb += [
            rom.device_id.eq(self.device_id),
            rom.beat.eq(self.beat[:bw]),
            rom.en.eq(self.en),
            rom.lba_format.eq(self.lba_format),
        ]
        with m.Switch(self.select):
            for source, page in pages.items():
                with m.Case(source):
                    m.d.comb += rom.page.eq(page)

        # -- Error Information log: a ring of 64 entries, read newest first ------------------
        m.submodules.errors = errors = memory.Memory(shape=ErrorLogEntry,
                                                     depth=ERROR_LOG_ENTRIES, init=[])
        err_wr = errors.write_port()
        err_rd = errors.read_port()
        newest = Signal(range(ERROR_LOG_ENTRIES))
        count = Signal(64)
        m.d.comb += self.error_count.eq(count)
        with m.If(self.error_entry.valid):
            m.d.sync += [count.eq(count + 1), newest.eq(newest + 1)]
            m.d.comb += [
                err_wr.addr.eq(newest + 1),
                err_wr.data.eq(self.error_entry.entry),
                err_wr.data.error_count.eq(count + 1),
                err_wr.en.eq(1),
            ]
        entry_beats = max(1, 64 // nbytes)
        eb = (entry_beats - 1).bit_length()
        index = self.beat // entry_beats          # entry, newest first
        m.d.comb += [err_rd.addr.eq(newest - index), err_rd.en.eq(self.en)]
        err_part = Signal(max(1, eb))
        err_valid = Signal()

        # -- SMART / Health [NVMe 1.4 Figure 194] ---------------------------------------------
        smart = Signal(SmartHealthLog)
        m.d.comb += [
            smart.critical_warning.eq(self.critical_warning),
            smart.composite_temperature.eq(self.temperature),
            smart.available_spare.eq(AVAILABLE_SPARE),
            smart.available_spare_threshold.eq(AVAILABLE_SPARE_THRESHOLD),
            smart.error_log_entries.eq(count),
            smart.data_units_read.eq(self.io_counters.data_units_read),
            smart.data_units_written.eq(self.io_counters.data_units_written),
            smart.host_read_commands.eq(self.io_counters.host_read_commands),
            smart.host_write_commands.eq(self.io_counters.host_write_commands),
        ]
        firmware = Const(int.from_bytes(firmware_slot_log(config), "little"),
                         data.Layout.cast(FirmwareSlotLog).size)

        # -- Output, one cycle after en ------------------------------------------------------------
        select = Signal(Source)
        beat = Signal.like(self.beat)
        small = Signal(width)          # SMART or firmware beat
        with m.If(self.en):
            m.d.sync += [select.eq(self.select), beat.eq(self.beat),
                         err_part.eq(self.beat[:eb] if eb else 0),
                         err_valid.eq(in_range & (index < count))]
            small_beats = 512 // nbytes
            with m.If(self.beat < small_beats):
                part = self.beat[:max(1, (small_beats - 1).bit_length())]
                m.d.sync += small.eq(Mux(self.select == Source.LOG_SMART,
                                         smart.as_value().word_select(part, width),
                                         firmware.word_select(part, width)))
            with m.Else():
                m.d.sync += small.eq(0)

        with m.Switch(select):
            with m.Case(Source.LOG_ERROR):
                entry_bits = err_rd.data.as_value()
                word = entry_bits.word_select(err_part, width) if entry_beats > 1 \
                    else entry_bits
                m.d.comb += self.data.eq(Mux(err_valid, word, 0))
            with m.Case(Source.LOG_SMART, Source.LOG_FIRMWARE):
                m.d.comb += self.data.eq(small)
            with m.Case(Source.ZERO):
                m.d.comb += self.data.eq(0)
            with m.Default():
                m.d.comb += self.data.eq(Mux(beat < beats, rom.data, 0))
        return m
