"""The CUDA driver API through ctypes, as much as the judge itself needs: the facts of device 0 (for the
speed-of-light flags) and the names of error codes. Only libcuda.so.1 (installed with the driver) is needed, no
CuPy or torch. The judge creates no context and runs nothing on the GPU: candidates run in the CUDA cell
(cudacell.py, cell/cuda_cell.c), which also runs the judge's own PTX below.
"""
from __future__ import annotations

import ctypes
import os
import re
import subprocess

CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16
CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13                 # kHz
CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36          # kHz
CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37    # bits
CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76

# ckls_scribble fills every word of a block's dynamic shared memory with a pattern. Run over every
# multiprocessor before a candidate's launch, so a read of shared memory that nothing in the candidate wrote
# sees NaN, not zeros or the previous launch's leftovers. ckls_hold spins for a number of clock cycles.
# Hand-written PTX: no nvcc is needed where the judge runs.
_SCRIBBLE_PTX = b"""
.version 7.8
.target sm_75
.address_size 64
.extern .shared .align 16 .b8 ckls_smem[];
.visible .entry ckls_scribble(.param .u32 nwords, .param .u32 pattern)
{
    .reg .pred p;
    .reg .b32 r<8>;
    ld.param.u32 r1, [nwords];
    ld.param.u32 r2, [pattern];
    mov.u32 r3, %tid.x;
    mov.u32 r4, %ntid.x;
    mov.u32 r5, ckls_smem;
LOOP:
    setp.ge.u32 p, r3, r1;
    @p bra DONE;
    shl.b32 r6, r3, 2;
    add.u32 r7, r5, r6;
    st.shared.u32 [r7], r2;
    add.u32 r3, r3, r4;
    bra LOOP;
DONE:
    ret;
}
.visible .entry ckls_hold(.param .u64 cycles)
{
    .reg .pred p;
    .reg .b64 rd<4>;
    ld.param.u64 rd1, [cycles];
    mov.u64 rd2, %clock64;
SPIN:
    mov.u64 rd3, %clock64;
    sub.s64 rd3, rd3, rd2;
    setp.lt.s64 p, rd3, rd1;
    @p bra SPIN;
    ret;
}
\x00"""



class CudaError(RuntimeError):
    def __init__(self, what: str, code: int, name: str, msg: str = ""):
        super().__init__(f"{what}: {name} ({code})" + (f": {msg}" if msg else ""))
        self.code, self.name = code, name


# Host calls whose error means the context is gone (a sticky error): the cell must be restarted.
STICKY = {700, 701, 702, 710, 713, 714, 715, 716, 717, 718, 719, 720}
# Names of the codes a candidate's call can end in (the cell's answer carries the number only).
ERROR_NAMES = {
    1: "CUDA_ERROR_INVALID_VALUE", 2: "CUDA_ERROR_OUT_OF_MEMORY", 3: "CUDA_ERROR_NOT_INITIALIZED",
    4: "CUDA_ERROR_DEINITIALIZED", 100: "CUDA_ERROR_NO_DEVICE", 101: "CUDA_ERROR_INVALID_DEVICE",
    200: "CUDA_ERROR_INVALID_IMAGE", 201: "CUDA_ERROR_INVALID_CONTEXT", 209: "CUDA_ERROR_NO_BINARY_FOR_GPU",
    218: "CUDA_ERROR_INVALID_PTX", 400: "CUDA_ERROR_INVALID_HANDLE", 500: "CUDA_ERROR_NOT_FOUND",
    600: "CUDA_ERROR_NOT_READY", 700: "CUDA_ERROR_ILLEGAL_ADDRESS", 701: "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
    702: "CUDA_ERROR_LAUNCH_TIMEOUT", 710: "CUDA_ERROR_ASSERT", 713: "CUDA_ERROR_HARDWARE_STACK_ERROR",
    714: "CUDA_ERROR_ILLEGAL_INSTRUCTION", 715: "CUDA_ERROR_MISALIGNED_ADDRESS",
    716: "CUDA_ERROR_INVALID_ADDRESS_SPACE", 717: "CUDA_ERROR_INVALID_PC", 718: "CUDA_ERROR_LAUNCH_FAILED",
    719: "CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE", 720: "CUDA_ERROR_TENSOR_MEMORY_LEAK",
    999: "CUDA_ERROR_UNKNOWN",
}


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"CUresult {code}")


# ---- where the driver is ------------------------------------------------------------------------------------
_DRIVER_DIRS = ("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64",
                "/usr/lib/aarch64-linux-gnu", "/usr/lib/wsl/lib", "/usr/lib")


def driver_library() -> str | None:
    """Path of libcuda.so.1 as the dynamic loader would find it (LD_LIBRARY_PATH, the ld.so cache, the usual
    folders), or None. The CUDA cell loads it from there and its folder is mounted read-only in the jail."""
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=20).stdout
        dirs += [os.path.dirname(m) for m in re.findall(r"libcuda\.so\.1 \(.*?\) => (\S+)", out)]
    except (OSError, subprocess.TimeoutExpired):
        pass
    for d in dirs + list(_DRIVER_DIRS):
        p = os.path.join(d, "libcuda.so.1")
        if os.path.exists(p) and "/stubs" not in p and "/compat" not in p:
            return os.path.abspath(p)
    return None


_lib = None


def _cuda():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(driver_library() or "libcuda.so.1")
    return _lib


def available() -> bool:
    """True when the driver loads and sees at least one device."""
    try:
        lib = _cuda()
    except OSError:
        return False
    n = ctypes.c_int(0)
    return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(n)) == 0 and n.value > 0


def device_info() -> dict:
    """Name, multiprocessors, compute capability, peak DRAM bandwidth and clock of device 0, from the driver in
    this process (no context is created: nothing runs on the GPU here). The cell's word is not taken for these:
    they bound what a candidate's time may be."""
    lib = _cuda()
    rc = lib.cuInit(0)
    if rc:
        raise CudaError("cuInit", rc, error_name(rc))
    dev = ctypes.c_int()
    rc = lib.cuDeviceGet(ctypes.byref(dev), 0)
    if rc:
        raise CudaError("cuDeviceGet", rc, error_name(rc))

    def attr(a: int) -> int:
        v = ctypes.c_int()
        r = lib.cuDeviceGetAttribute(ctypes.byref(v), a, dev)
        if r:
            raise CudaError("cuDeviceGetAttribute", r, error_name(r))
        return v.value

    name = ctypes.create_string_buffer(256)
    lib.cuDeviceGetName(name, 256, dev)
    return {"name": name.value.decode(errors="replace"), "sms": attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
            "cc": [attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                   attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)],
            # double data rate x bus width
            "peak_bytes_per_s": 2.0 * attr(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE) * 1e3 *
            attr(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH) / 8,
            "clock_hz": attr(CU_DEVICE_ATTRIBUTE_CLOCK_RATE) * 1e3,
            "l2_bytes": attr(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)}
