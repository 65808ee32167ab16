"""What this machine offers for running a model: CPU, RAM, GPUs, llama.cpp backends, disk."""

from __future__ import annotations

from app.hardware.detect import apple_working_set_estimate, detect_hardware
from app.hardware.info import BackendDevice, BackendInfo, GPUInfo, HardwareInfo
from app.hardware.profiles import PROFILE_NAMES, builtin_profile

__all__ = [
    "PROFILE_NAMES", "BackendDevice", "BackendInfo", "GPUInfo", "HardwareInfo",
    "apple_working_set_estimate", "builtin_profile", "detect_hardware",
]
