"""Whether the computer runs on battery. Rounds the server starts on its own (`tune_enabled`) wait while it does,
unless `tune_on_battery` is set: ten minutes of two busy cores is a noticeable share of a laptop's charge. None
means unknown (a desktop, a container, a platform not read here), which counts as mains power."""
from __future__ import annotations

import os
import subprocess
import sys

SYSFS = "/sys/class/power_supply"
MAINS_TYPES = ("Mains", "USB", "USB_C", "USB_PD", "USB_PD_DRP", "Wireless")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read(64).strip()
    except OSError:
        return None


def linux(root: str | None = None) -> bool | None:
    """From sysfs: False when an external supply is online or a battery charges / is full, True when a battery
    discharges and nothing is online, None without a system battery. CKLS_POWER_SUPPLY_DIR names another tree
    (a sysfs mounted elsewhere; the tests' laptops)."""
    root = root or os.environ.get("CKLS_POWER_SUPPLY_DIR") or SYSFS
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return None
    discharging = charging = False
    for name in names:
        d = os.path.join(root, name)
        kind = _read(os.path.join(d, "type"))
        if kind in MAINS_TYPES and _read(os.path.join(d, "online")) == "1":
            return False
        # a mouse's or headset's battery reports scope "Device"; only the system's battery counts
        if kind == "Battery" and _read(os.path.join(d, "scope")) in (None, "System"):
            status = _read(os.path.join(d, "status"))
            discharging |= status == "Discharging"
            charging |= status in ("Charging", "Full", "Not charging")
    if discharging:
        return True
    return False if charging else None


def macos() -> bool | None:
    try:
        out = subprocess.run(["pmset", "-g", "batt"], capture_output=True, text=True, timeout=2).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if "'Battery Power'" in out:
        return True
    return False if "'AC Power'" in out else None


def windows() -> bool | None:
    import ctypes
    from ctypes import wintypes

    class Status(ctypes.Structure):
        _fields_ = [("ACLineStatus", wintypes.BYTE), ("BatteryFlag", wintypes.BYTE),
                    ("BatteryLifePercent", wintypes.BYTE), ("SystemStatusFlag", wintypes.BYTE),
                    ("BatteryLifeTime", wintypes.DWORD), ("BatteryFullLifeTime", wintypes.DWORD)]

    st = Status()
    if not ctypes.windll.kernel32.GetSystemPowerStatus(ctypes.byref(st)):
        return None
    line = st.ACLineStatus & 0xFF
    return {0: True, 1: False}.get(line)  # 255: unknown


def on_battery() -> bool | None:
    try:
        if sys.platform.startswith("linux"):
            return linux()
        if sys.platform == "darwin":
            return macos()
        if sys.platform == "win32":
            return windows()
    except Exception:  # never let a power probe stop the server; unknown counts as mains power
        return None
    return None
