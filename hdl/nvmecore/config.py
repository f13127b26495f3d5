"""Build-time configuration shared by the gateware and the reference model."""

from dataclasses import dataclass, fields

from .layouts import BAR0_SIZE, DOORBELL_BASE, MSIX_ENTRY_BYTES, MSIX_PBA_BASE, MSIX_TABLE_BASE

__all__ = ["CoreConfig", "ConfigError", "DATA_WIDTHS", "BACKENDS"]

DATA_WIDTHS = (64, 128, 256, 512)
#: Where the namespace's data lives (``CoreConfig.backend``).
BACKENDS = ("ramdisk", "axi", "external")
#: Both LBA formats (512 B and 4 KiB) must divide the namespace, so Format NVM can
#: switch between them.
NAMESPACE_GRANULE = 4096

# The doorbells of queue pair y occupy 0x1000 + 8y .. 0x1000 + 8y + 7, below the MSI-X
# table at 0x2000; the table's 16-byte entries must end before the PBA at 0x3000.
MAX_QUEUE_PAIRS_IN_BAR0 = (MSIX_TABLE_BASE - DOORBELL_BASE) // 8       # admin + 511 I/O
MAX_VECTORS_IN_BAR0 = min((MSIX_PBA_BASE - MSIX_TABLE_BASE) // MSIX_ENTRY_BYTES,
                          (BAR0_SIZE - MSIX_PBA_BASE) * 8, 256)


class ConfigError(ValueError):
    """A CoreConfig that cannot be built."""


@dataclass(frozen=True)
class CoreConfig:
    """One nvmecore build. The same object builds the gateware and the reference model.

    The defaults are the ones DESIGN.md §5 and §11 give; every field is validated when
    the object is made, so a bad combination fails here with a clear message rather than
    deep inside elaboration.
    """

    #: I/O queue pairs (SQ + CQ) besides the admin pair.
    io_queues: int = 16
    #: Entries per queue supported (CAP.MQES + 1), 2..65536.
    max_queue_entries: int = 4096
    #: MSI-X vectors; ``None`` means one per queue pair (``io_queues + 1``).
    msix_vectors: int | None = None
    #: DMA datapath width in bits.
    data_width: int = 256
    #: CAP.TO, in 500 ms units. Linux waits (TO + 1) / 2 seconds for CSTS.RDY.
    ready_timeout: int = 0x0F
    #: CAP.MPSMIN / CAP.MPSMAX: memory page size 2^(12 + n). Only 4 KiB pages (0) are
    #: supported: the PRP engine and the admin data path assume them.
    mps_min: int = 0
    mps_max: int = 0
    #: The SQ fetch engine's backstop time-out: an SQ entry read fails (CSTS.CFS) when it
    #: is outstanding and no data at all moves on the DMA read port for this many cycles
    #: (50 ms at 250 MHz; reads come back in order, so a read queued behind others is
    #: not late while theirs moves). A PCIe adapter's own completion time-out ends a read
    #: first; this catches a port that never answers.
    dma_read_timeout: int = 12_500_000
    #: Cycles a PCIe adapter waits for a read's completions before it fails the read with
    #: an error (completion time-out; 50 ms at 250 MHz).
    completion_timeout: int = 12_500_000
    #: PCI identity (the hard IP's defaults); Identify VID / SSVID equal these.
    pci_vendor_id: int = 0x10EE
    pci_device_id: int = 0x9038
    pci_subsystem_vendor_id: int = 0x10EE
    pci_subsystem_id: int = 0x0007
    #: Identify strings (ASCII): model number (≤ 40), firmware revision (≤ 8).
    model_number: str = "nvmecore NVMe controller"
    firmware_revision: str = "0.1.0"
    #: Serial number = prefix + 16 hex digits of the ``device_id`` input (≤ 4 characters).
    serial_prefix: str = "NVC"
    #: Subsystem NQN = base + ":sn." + serial number.
    subnqn_base: str = "nqn.2026-11.org.nvmecore"
    #: NGUID = these 8 bytes + the 8 bytes of ``device_id``; EUI-64 = OUI + low 40 bits.
    nguid_prefix: int = 0x6E76_6D65_636F_7265      # "nvmecore"
    ieee_oui: int = 0x000A35
    #: The namespace: size in bytes and the formatted LBA size (index into the two LBA
    #: formats, 0: 512 B, 1: 4 KiB).
    namespace_bytes: int = 1 << 20
    lba_format: int = 0
    #: I/O commands in flight at once over all I/O queues (each holds a slot from fetch
    #: to completion).
    io_slots: int = 32
    #: SQ entry reads (each up to max read request size, 8 entries at 512 B) in flight at
    #: once. Size it for the host's memory latency: a fetch per SQ round trip each, so
    #: commands per round trip <= reads x entries per read (and <= ``io_slots``);
    #: docs/benchmark.md measures 4 and 16 at 1 us.
    sq_fetch_reads: int = 4
    #: Where the namespace's data lives: "ramdisk" (on-chip block RAM of
    #: ``namespace_bytes``), "axi" (an AXI4 master port to memory, DDR4 or HBM on a
    #: board) or "external" (the backend interface on the core's boundary;
    #: docs/backend.md).
    backend: str = "ramdisk"
    #: AXI4 backend: address width, where the namespace starts in the AXI address space,
    #: ID width and the ID every transaction carries, and the transactions in flight per
    #: direction (bursts are up to 4 KiB, never crossing a 4 KiB boundary).
    axi_addr_width: int = 64
    axi_base: int = 0
    axi_id_width: int = 1
    axi_id: int = 0
    axi_outstanding: int = 8
    #: Test-only ports (queue set-up, interrupt requests, event tap). Off in the default
    #: Verilog; the core-level bench builds with it on.
    debug: bool = False

    def __post_init__(self):
        if self.msix_vectors is None and isinstance(self.io_queues, int):
            object.__setattr__(self, "msix_vectors", self.io_queues + 1)
        self._check()

    def _check(self):
        def need(cond, message):
            if not cond:
                raise ConfigError(message)

        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "debug":
                need(isinstance(value, bool), "debug must be True or False")
            elif f.type is str or f.type == "str":
                need(isinstance(value, str) and value.isascii() and value.isprintable(),
                     f"{f.name} must be printable ASCII, not {value!r}")
            else:
                need(isinstance(value, int) and not isinstance(value, bool),
                     f"{f.name} must be an integer, not {value!r}")
        need(1 <= self.io_queues <= MAX_QUEUE_PAIRS_IN_BAR0 - 1,
             f"io_queues={self.io_queues}: a 16 KiB BAR0 has doorbells for 1 to "
             f"{MAX_QUEUE_PAIRS_IN_BAR0 - 1} I/O queue pairs")
        need(2 <= self.max_queue_entries <= 65536,
             f"max_queue_entries={self.max_queue_entries}: must be 2..65536 (CAP.MQES + 1)")
        need(1 <= self.msix_vectors <= MAX_VECTORS_IN_BAR0,
             f"msix_vectors={self.msix_vectors}: a 16 KiB BAR0 holds 1 to "
             f"{MAX_VECTORS_IN_BAR0} MSI-X vectors")
        need(self.data_width in DATA_WIDTHS,
             f"data_width={self.data_width}: must be one of {', '.join(map(str, DATA_WIDTHS))}")
        need(0 <= self.ready_timeout <= 0xFF, "ready_timeout (CAP.TO) must fit in 8 bits")
        need(0 <= self.mps_min <= self.mps_max <= 15,
             f"mps_min={self.mps_min}, mps_max={self.mps_max}: need 0 <= min <= max <= 15")
        need(self.mps_max == 0,
             f"mps_max={self.mps_max}: only 4 KiB host memory pages (CC.MPS = 0) are "
             f"supported")
        need(self.dma_read_timeout >= 16, "dma_read_timeout must be at least 16 cycles")
        need(self.completion_timeout >= 16, "completion_timeout must be at least 16 cycles")
        for name in ("pci_vendor_id", "pci_device_id", "pci_subsystem_vendor_id",
                     "pci_subsystem_id"):
            need(0 <= getattr(self, name) <= 0xFFFF, f"{name} must fit in 16 bits")

        need(len(self.model_number) <= 40, "model_number: at most 40 characters")
        need(len(self.firmware_revision) <= 8, "firmware_revision: at most 8 characters")
        need(len(self.serial_prefix) <= 4, "serial_prefix: at most 4 characters (SN is 20)")
        need(len(self.subnqn_base) + 4 + 20 <= 223,
             "subnqn_base too long: the subsystem NQN holds at most 223 bytes")
        need(0 <= self.nguid_prefix < 1 << 64, "nguid_prefix must fit in 8 bytes")
        need(0 <= self.ieee_oui < 1 << 24, "ieee_oui must fit in 24 bits")
        need(self.lba_format in (0, 1), "lba_format: 0 (512 B) or 1 (4 KiB)")
        need(self.namespace_bytes > 0 and self.namespace_bytes % NAMESPACE_GRANULE == 0,
             f"namespace_bytes={self.namespace_bytes}: must be a positive multiple of "
             f"{NAMESPACE_GRANULE} (both LBA formats divide it)")
        need(2 <= self.io_slots <= 256,
             f"io_slots={self.io_slots}: 2 to 256 I/O commands in flight")
        need(1 <= self.sq_fetch_reads <= 64,
             f"sq_fetch_reads={self.sq_fetch_reads}: 1 to 64 SQ reads in flight")
        need(self.backend in BACKENDS,
             f"backend={self.backend!r}: one of {', '.join(map(repr, BACKENDS))}")
        need(self.namespace_addr_width <= 48, "namespace_bytes: at most 2^48 bytes")
        need(12 <= self.axi_addr_width <= 64, "axi_addr_width must be 12..64")
        need(0 <= self.axi_base and self.axi_base % NAMESPACE_GRANULE == 0
             and self.axi_base + self.namespace_bytes <= 1 << self.axi_addr_width,
             f"axi_base={self.axi_base:#x}: 4 KiB aligned, and the namespace must fit in "
             f"{self.axi_addr_width}-bit AXI addresses")
        need(1 <= self.axi_id_width <= 16 and 0 <= self.axi_id < 1 << self.axi_id_width,
             f"axi_id={self.axi_id} must fit in axi_id_width={self.axi_id_width} bits (1..16)")
        need(1 <= self.axi_outstanding <= 64, "axi_outstanding must be 1..64")

    @property
    def lba_size(self):
        return (512, 4096)[self.lba_format] if self.lba_format in (0, 1) else 512

    @property
    def namespace_addr_width(self):
        """Bits of a byte address in the namespace (the backend interface's ``addr``)."""
        return max(1, (self.namespace_bytes - 1).bit_length())

    @property
    def io_slot_width(self):
        return max(1, (self.io_slots - 1).bit_length())

    @property
    def queue_pairs(self):
        """Queue pairs including the admin pair (queue IDs 0 .. io_queues)."""
        return self.io_queues + 1

    @property
    def qid_width(self):
        return max(1, (self.queue_pairs - 1).bit_length())

    @property
    def vector_width(self):
        return max(1, (self.msix_vectors - 1).bit_length())

    @property
    def cap_mqes(self):
        return self.max_queue_entries - 1
