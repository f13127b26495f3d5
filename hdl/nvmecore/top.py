"""Board-level top: NvmeCore behind the UltraScale+ PCIe adapter (DESIGN.md §10).

:class:`UspTop` has the hard IP's own port names (PG213), so an instance of
``pcie4_uscale_plus`` (Gen3) or ``pcie4c_uscale_plus`` (Gen4) connects port for port:
``.s_axis_rq_tdata(s_axis_rq_tdata)``, ``.m_axis_rc_tready(m_axis_rc_tready)``, ...
Inputs of the hard IP that the core has no use for are driven with the values PG213
recommends (tie-offs), so none is left floating. The IP settings the core expects are in
``docs/pcie-ultrascale-plus.md``; ``tb/tests/fixtures/pcie4_uscale_plus_ports.json`` lists
the hard IP's ports, and a test checks this top against it.

Clock and reset: everything runs on ``user_clk`` (250 MHz); ``user_reset`` or link down
(``user_lnk_up`` low) resets the whole core (queues, registers, MSI-X table and PBA), one
cycle later, through a register. Every hard-IP input the top drives comes from a
register or is a constant.
``device_id`` personalises the identity (a device DNA or straps); ``temperature`` is in
kelvin (tie to 313 without a sensor).
"""

from amaranth import ClockDomain, ClockSignal, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import CoreConfig
from .core import NvmeCore
from .pcie.usp import UspAdapter
from .pcie.usp_layouts import Axis

__all__ = ["UspTop", "usp_ports"]

# Hard-IP inputs this top drives with fixed values [PG213 "Port Descriptions"]:
# name → (width, value).
TIE_OFFS = {
    "cfg_config_space_enable":            (1, 1),
    "cfg_mgmt_function_number":           (8, 0),
    "cfg_mgmt_write":                     (1, 0),
    "cfg_mgmt_write_data":                (32, 0),
    "cfg_mgmt_byte_enable":               (4, 0),
    "cfg_mgmt_debug_access":              (1, 0),
    "cfg_link_training_enable":           (1, 1),
    "cfg_hot_reset_in":                   (1, 0),
    "cfg_req_pm_transition_l23_ready":    (1, 0),
    "cfg_pm_aspm_l1_entry_reject":        (1, 0),
    "cfg_pm_aspm_tx_l0s_entry_disable":   (1, 0),
    "cfg_fc_sel":                         (3, 0),
    "cfg_msg_transmit":                   (1, 0),
    "cfg_msg_transmit_type":              (3, 0),
    "cfg_msg_transmit_data":              (32, 0),
    "cfg_vf_flr_done":                    (1, 0),
    "cfg_vf_flr_func_num":                (8, 0),
    "cfg_ds_port_number":                 (8, 0),
    "cfg_ds_bus_number":                  (8, 0),
    "cfg_ds_device_number":               (5, 0),
    "cfg_interrupt_msi_int":              (32, 0),
    "cfg_interrupt_msi_select":           (2, 0),
    "cfg_interrupt_msi_pending_status":   (32, 0),
    "cfg_interrupt_msi_pending_status_data_enable": (1, 0),
    "cfg_interrupt_msi_pending_status_function_num": (2, 0),
    "cfg_interrupt_msi_attr":             (3, 0),
    "cfg_interrupt_msi_tph_present":      (1, 0),
    "cfg_interrupt_msi_tph_type":         (2, 0),
    "cfg_interrupt_msi_tph_st_tag":       (8, 0),
    "cfg_interrupt_msi_function_number":  (8, 0),
    "cfg_interrupt_msix_int":             (1, 0),
    "cfg_interrupt_msix_address":         (64, 0),
    "cfg_interrupt_msix_data":            (32, 0),
    "cfg_interrupt_msix_vec_pending":     (2, 0),
}

# AXI4-Stream interfaces: (IP prefix, adapter member, IP direction of tdata, tready width).
# The hard IP's s_axis_*_tready outputs are 4 identical bits; the top takes one (connect
# bit 0, or let Vivado truncate), as cocotbext-pcie's model drives a 1-bit tready. Its
# m_axis_*_tready inputs are 22 bits, all driven with the same value [PG213].
STREAMS = (
    ("s_axis_rq", "rq", "in", 1),
    ("m_axis_rc", "rc", "out", 22),
    ("m_axis_cq", "cq", "out", 22),
    ("s_axis_cc", "cc", "in", 1),
)

# cfg_* ports the adapter reads (hard-IP outputs) and drives (hard-IP inputs).
CFG_FROM_IP = {
    "cfg_max_payload": 2, "cfg_max_read_req": 3, "cfg_rcb_status": 4,
    "cfg_function_status": 16,
    "cfg_interrupt_msix_enable": 4, "cfg_interrupt_msix_mask": 4,
    "cfg_flr_in_process": 4, "cfg_mgmt_read_data": 32, "cfg_mgmt_read_write_done": 1,
    "cfg_interrupt_sent": 1, "cfg_power_state_change_interrupt": 1,
    "pcie_cq_np_req_count": 6, "pcie_tfc_nph_av": 4,
}
CFG_TO_IP = {
    "pcie_cq_np_req": 2, "cfg_flr_done": 4, "cfg_interrupt_int": 4,
    "cfg_interrupt_pending": 4, "cfg_mgmt_addr": 10, "cfg_mgmt_read": 1, "cfg_dsn": 64,
    "cfg_power_state_change_ack": 1, "cfg_err_cor_in": 1, "cfg_err_uncor_in": 1,
}


def usp_ports(width):
    """The top's hard-IP-facing ports: name → (direction seen from the hard IP, width)."""
    ports = {"user_clk": ("out", 1), "user_reset": ("out", 1), "user_lnk_up": ("out", 1)}
    for prefix, member, data_dir, ready_width in STREAMS:
        axis = Axis(member, width)
        ports[f"{prefix}_tdata"] = (data_dir, width)
        ports[f"{prefix}_tkeep"] = (data_dir, width // 32)
        ports[f"{prefix}_tlast"] = (data_dir, 1)
        ports[f"{prefix}_tuser"] = (data_dir, axis.tuser_layout.size)
        ports[f"{prefix}_tvalid"] = (data_dir, 1)
        ports[f"{prefix}_tready"] = ("in" if data_dir == "out" else "out", ready_width)
    ports.update({name: ("out", w) for name, w in CFG_FROM_IP.items()})
    ports.update({name: ("in", w) for name, w in CFG_TO_IP.items()})
    ports.update({name: ("in", w) for name, (w, _) in TIE_OFFS.items()})
    return ports


#: The core's test-only ports (CoreConfig.debug), passed through by the top.
DEBUG_PORTS = ("dbg_queue", "dbg_irq", "dbg_doorbell", "dbg_event", "dbg_namespace")


class UspTop(wiring.Component):
    """NvmeCore + UspAdapter with PG213 port names. ``rq_straddle`` (default: on at 512
    bits) must match the hard IP's RQ straddle setting."""

    def __init__(self, config: CoreConfig = CoreConfig(), *, rq_straddle=None):
        if rq_straddle is None:
            rq_straddle = config.data_width == 512
        try:
            UspAdapter.check(config, rq_straddle)
        except ValueError:
            self._MustUse__silence = True        # refused, not forgotten
            raise
        self.config = config
        self.rq_straddle = rq_straddle
        # The adapter's read engine flags every beat of a failed read (test_usp_read).
        self.core = NvmeCore(config, error_on_every_beat=True)
        self.adapter = UspAdapter(config, rq_straddle=rq_straddle)
        members = {}
        for name, (ip_dir, w) in usp_ports(config.data_width).items():
            members[name] = In(w) if ip_dir == "out" else Out(w)
        members["device_id"] = In(64)
        members["temperature"] = In(16)
        for name in ("err_unsupported", "err_refused", "err_unexpected"):
            members[name] = Out(1)
        # The backend: an AXI4 master as m_axi_* (the names Xilinx's memory controllers
        # use), or the backend interface itself (docs/backend.md).
        core_members = self.core.signature.members
        if config.backend == "axi":
            for name, member in core_members["axi"].signature.members.items():
                members[f"m_axi_{name}"] = member
        elif config.backend == "external":
            members["backend"] = core_members["backend"]
        # Test-only ports of the core pass through (CoreConfig.debug).
        for name in DEBUG_PORTS:
            if name in core_members:
                members[name] = core_members[name]
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.adapter = adapter = self.adapter

        m.domains.sync = ClockDomain("sync")
        # user_reset, or the link going down: a full reset [DESIGN.md §11], distributed
        # from a register (clocked by user_clk, itself never reset).
        m.domains.ip = ClockDomain("ip", reset_less=True, local=True)
        reset = Signal(init=1)
        m.d.ip += reset.eq(self.user_reset | ~self.user_lnk_up)
        m.d.comb += [
            ClockSignal("sync").eq(self.user_clk),
            ClockSignal("ip").eq(self.user_clk),
            ResetSignal("sync").eq(reset),
        ]

        # Hard-IP streams.
        for prefix, member, data_dir, _ in STREAMS:
            axis = getattr(adapter, member)
            if data_dir == "in":           # adapter → hard IP
                for field in ("tdata", "tkeep", "tlast", "tuser", "tvalid"):
                    m.d.comb += getattr(self, f"{prefix}_{field}").eq(getattr(axis, field))
                m.d.comb += axis.tready.eq(getattr(self, f"{prefix}_tready"))
            else:                          # hard IP → adapter
                for field in ("tdata", "tkeep", "tlast", "tuser", "tvalid"):
                    m.d.comb += getattr(axis, field).eq(getattr(self, f"{prefix}_{field}"))
                ready = getattr(self, f"{prefix}_tready")
                m.d.comb += ready.eq(axis.tready.replicate(len(ready)))

        # Configuration: the adapter's ports of the same name (the rest are used below or
        # unused).
        for name in CFG_FROM_IP:
            if name in adapter.signature.members:
                m.d.comb += getattr(adapter, name).eq(getattr(self, name))
        for name in CFG_TO_IP:
            if name in adapter.signature.members:
                m.d.comb += getattr(self, name).eq(getattr(adapter, name))
        m.d.comb += [
            self.cfg_dsn.eq(self.device_id),           # Device Serial Number capability
        ]
        # One power state: acknowledge every change at once [PG213], from a register.
        m.d.sync += self.cfg_power_state_change_ack.eq(self.cfg_power_state_change_interrupt)
        for name, (_, value) in TIE_OFFS.items():
            m.d.comb += getattr(self, name).eq(value)

        # Core.
        wiring.connect(m, adapter.regs, core.regs)
        wiring.connect(m, core.dma_rd, adapter.dma_rd)
        wiring.connect(m, core.dma_wr, adapter.dma_wr)
        wiring.connect(m, adapter.core_cfg, core.cfg)
        m.d.comb += [
            adapter.intx.eq(core.intx),
            core.device_id.eq(self.device_id),
            core.temperature.eq(self.temperature),
            self.err_unsupported.eq(adapter.err_unsupported),
            self.err_refused.eq(adapter.err_refused),
            self.err_unexpected.eq(adapter.err_unexpected),
        ]
        if self.config.backend == "axi":
            for name, member in core.axi.signature.members.items():
                ours, theirs = getattr(self, f"m_axi_{name}"), getattr(core.axi, name)
                m.d.comb += (ours.eq(theirs) if member.flow == Out else theirs.eq(ours))
        elif self.config.backend == "external":
            wiring.connect(m, core.backend, wiring.flipped(self.backend))
        for name in ("dbg_queue", "dbg_irq", "dbg_namespace"):
            if name in self.signature.members:
                wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(core, name))
        for name in ("dbg_doorbell", "dbg_event"):
            if name in self.signature.members:
                m.d.comb += getattr(self, name).eq(getattr(core, name))
        return m
