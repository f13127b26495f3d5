from .controller import ControllerModel, DmaWrite, DoorbellWrite, split_access

__all__ = ["ControllerModel", "DmaWrite", "DoorbellWrite", "split_access"]
