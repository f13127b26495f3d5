"""The reference model on its own, checked against the NVMe and PCIe specifications
directly (the RTL is compared with the model elsewhere)."""

import pytest
from amaranth.lib import data

from nvmecore import CoreConfig
from nvmecore.layouts import (
    CAP_AMS_WRR_URGENT,
    DOORBELL_BASE,
    MSIX_PBA_BASE,
    MSIX_TABLE_BASE,
    ArbitrationMechanism,
    AsyncEvent,
    AsyncEventInfoError,
    Cap,
    Cc,
    Reg,
)
from nvmetb.model import ControllerModel, DmaWrite, DoorbellWrite, split_access

pytestmark = pytest.mark.quick


def enabled_model(**cc):
    model = ControllerModel(CoreConfig(io_queues=2))
    model.write(Reg.AQA, 0x000F_0007)
    model.write(Reg.ASQ, 0x1000, 8)
    model.write(Reg.ACQ, 0x2000, 8)
    model.write(Reg.CC, Cc.const({"en": 1, "iosqes": 6, "iocqes": 4, **cc}).as_bits())
    return model


def test_split_access():
    assert split_access(0x14, 4, 0xAB) == (0x10, 0xF0, 0xAB << 32)
    assert split_access(0x28, 8, 1) == (0x28, 0xFF, 1)
    with pytest.raises(ValueError):
        split_access(0x13, 4)


def test_cap_and_version():
    model = ControllerModel()
    cap = model.read(Reg.CAP, 8)
    assert cap == 0x0000_0020_0F03_0FFF      # CSS=NVM, TO=15, AMS=WRR, CQR, MQES=4095
    assert model.read(Reg.VS) == 0x0001_0400


def test_enable_and_admin_doorbells():
    model = enabled_model()
    assert model.read(Reg.CSTS) == 1
    model.write(DOORBELL_BASE, 7)
    model.write(DOORBELL_BASE, 8)
    model.write(DOORBELL_BASE + 4, 15)
    assert model.doorbells == [DoorbellWrite(0, False, 7), DoorbellWrite(0, True, 15)]
    info = [data.Layout.cast(AsyncEvent).from_bits(e).info for e in model.events]
    assert info == [AsyncEventInfoError.INVALID_DOORBELL_WRITE_VALUE.value]


@pytest.mark.parametrize("cc", [{"mps": 1}, {"css": 1}, {"ams": 0b010}, {"ams": 0b111}])
def test_enable_refused(cc):
    assert enabled_model(**cc).read(Reg.CSTS) == 2        # CFS, not RDY


def test_enable_weighted_round_robin():
    """CAP.AMS offers weighted round robin with urgent class; CC.AMS = 001b enables."""
    model = ControllerModel()
    assert data.Layout.cast(Cap).from_bits(model.read(Reg.CAP, 8)).ams == CAP_AMS_WRR_URGENT
    assert enabled_model(ams=ArbitrationMechanism.WRR_URGENT.value).read(Reg.CSTS) == 1


def test_intms_intmc():
    model = ControllerModel()
    model.write(Reg.INTMS, 0b1010)
    model.write(Reg.INTMC, 0b0010)
    assert model.read(Reg.INTMS) == model.read(Reg.INTMC) == 0b1000


def test_msix_mask_pba_and_unmask():
    model = ControllerModel(CoreConfig(io_queues=2))
    model.write(MSIX_TABLE_BASE + 16, 0xFEE0_0010, 8)
    model.write(MSIX_TABLE_BASE + 24, 0x0000_0001_0000_0042, 8)      # masked, data 0x42
    model.set_cfg(msix_enable=True)
    model.irq(1)
    assert model.dma_writes == [] and model.read(MSIX_PBA_BASE) == 0b10
    model.write(MSIX_TABLE_BASE + 28, 0)                               # unmask
    assert model.dma_writes == [DmaWrite(0xFEE0_0010, b"\x42\0\0\0")]
    assert model.read(MSIX_PBA_BASE) == 0


def test_intx_follows_intms():
    model = ControllerModel()
    model.irq(0)
    assert model.intx
    model.write(Reg.INTMS, 1)
    assert not model.intx
    model.write(Reg.INTMC, 1)
    model.irq(0, deassert=True)
    assert not model.intx


def test_controller_reset_keeps_admin_registers_and_msix():
    model = enabled_model()
    model.write(MSIX_TABLE_BASE, 0xFEE0_0000, 8)
    model.set_queue(1, False, 16)
    model.write(Reg.CC, 0)
    assert model.read(Reg.CSTS) == 0 and model.read(Reg.ASQ, 8) == 0x1000
    assert model.read(MSIX_TABLE_BASE, 8) == 0xFEE0_0000
    model.write(DOORBELL_BASE + 8, 1)
    assert model.doorbells == []                 # queue 1 is gone
    model.bus_reset()
    assert model.read(MSIX_TABLE_BASE, 8) == 0 and model.read(Reg.ASQ, 8) == 0
