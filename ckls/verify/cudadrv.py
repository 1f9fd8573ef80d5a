"""The CUDA driver API through ctypes, as much as the judge needs: device memory, copies, events, and a
shared-memory scribbler. Only libcuda.so.1 (installed with the driver) is needed, no CuPy or torch.

The judge works in the device's primary context, the one the CUDA runtime that a candidate links with also
uses, so device pointers and the legacy default stream (stream 0) are shared between judge and candidate.
"""
from __future__ import annotations

import ctypes

CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16
CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13                 # kHz
CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36          # kHz
CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37    # bits
CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97
CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39
CU_STREAM_NON_BLOCKING = 1
CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8
CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT = 9

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
    def __init__(self, what: str, code: int, name: str, msg: str):
        super().__init__(f"{what}: {name} ({code}): {msg}")
        self.code, self.name = code, name


_lib = None


def _cuda():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL("libcuda.so.1")
    return _lib


def available() -> bool:
    """True when the driver loads and sees at least one device."""
    try:
        lib = _cuda()
    except OSError:
        return False
    n = ctypes.c_int(0)
    return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(n)) == 0 and n.value > 0


class Device:
    """Device 0's primary context, made current on the calling thread."""

    def __init__(self):
        self.lib = lib = _cuda()
        self._check("cuInit", lib.cuInit(0))
        dev = ctypes.c_int()
        self._check("cuDeviceGet", lib.cuDeviceGet(ctypes.byref(dev), 0))
        self.dev = dev.value
        ctx = ctypes.c_void_p()
        self._check("cuDevicePrimaryCtxRetain", lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), self.dev))
        self._check("cuCtxSetCurrent", lib.cuCtxSetCurrent(ctx))
        self.ctx = ctx
        name = ctypes.create_string_buffer(256)
        lib.cuDeviceGetName(name, 256, self.dev)
        self.name = name.value.decode(errors="replace")
        self.sms = self.attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
        self.cc = (self.attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                   self.attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR))
        self.l2_bytes = self.attr(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)
        # Peak DRAM bandwidth: double data rate x bus width.
        self.peak_bytes_per_s = 2.0 * self.attr(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE) * 1e3 * \
            self.attr(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH) / 8
        self.clock_hz = self.attr(CU_DEVICE_ATTRIBUTE_CLOCK_RATE) * 1e3
        self._scribble = None
        self._hold = None
        self._flush = None

    # ---- errors --------------------------------------------------------------------------------------
    def _check(self, what: str, rc: int) -> None:
        if rc != 0:
            raise self.error(what, rc)

    def error(self, what: str, rc: int) -> CudaError:
        name, msg = ctypes.c_char_p(), ctypes.c_char_p()
        self.lib.cuGetErrorName(rc, ctypes.byref(name))
        self.lib.cuGetErrorString(rc, ctypes.byref(msg))
        return CudaError(what, rc, (name.value or b"?").decode(), (msg.value or b"?").decode())

    def attr(self, a: int) -> int:
        v = ctypes.c_int()
        self._check("cuDeviceGetAttribute", self.lib.cuDeviceGetAttribute(ctypes.byref(v), a, self.dev))
        return v.value

    # ---- memory --------------------------------------------------------------------------------------
    def alloc(self, nbytes: int) -> int:
        p = ctypes.c_uint64()
        self._check("cuMemAlloc", self.lib.cuMemAlloc_v2(ctypes.byref(p), ctypes.c_size_t(max(int(nbytes), 1))))
        return p.value

    def free(self, ptr: int) -> None:
        self.lib.cuMemFree_v2(ctypes.c_uint64(ptr))  # best effort: after a sticky error this fails too

    def htod(self, dst: int, host_ptr: int, nbytes: int) -> None:
        if nbytes:
            self._check("cuMemcpyHtoD", self.lib.cuMemcpyHtoD_v2(ctypes.c_uint64(dst), ctypes.c_void_p(host_ptr),
                                                                 ctypes.c_size_t(nbytes)))

    def dtoh(self, host_ptr: int, src: int, nbytes: int) -> None:
        """Synchronous on the legacy default stream: waits for work queued there (and on blocking streams)."""
        if nbytes:
            self._check("cuMemcpyDtoH", self.lib.cuMemcpyDtoH_v2(ctypes.c_void_p(host_ptr), ctypes.c_uint64(src),
                                                                 ctypes.c_size_t(nbytes)))

    def synchronize(self) -> None:
        self._check("cuCtxSynchronize", self.lib.cuCtxSynchronize())

    # ---- events (legacy default stream) --------------------------------------------------------------
    def event(self) -> ctypes.c_void_p:
        e = ctypes.c_void_p()
        self._check("cuEventCreate", self.lib.cuEventCreate(ctypes.byref(e), 0))
        return e

    def record(self, ev) -> None:
        self._check("cuEventRecord", self.lib.cuEventRecord(ev, None))

    def elapsed_s(self, start, end) -> float:
        self._check("cuEventSynchronize", self.lib.cuEventSynchronize(end))
        ms = ctypes.c_float()
        self._check("cuEventElapsedTime", self.lib.cuEventElapsedTime(ctypes.byref(ms), start, end))
        return ms.value * 1e-3

    # ---- shared-memory scribbler and L2 flush --------------------------------------------------------
    def scribble_shared(self, pattern: int = 0x7FC0A5A5) -> None:
        """Fill the shared memory of every multiprocessor with `pattern` (a NaN by default)."""
        lib = self.lib
        if self._scribble is None:
            mod, fn = self._module(), ctypes.c_void_p()
            self._check("cuModuleGetFunction", lib.cuModuleGetFunction(ctypes.byref(fn), mod, b"ckls_scribble"))
            smem = self.attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
            self._check("cuFuncSetAttribute", lib.cuFuncSetAttribute(
                fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem))
            lib.cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT, 100)
            self._scribble = (mod, fn, smem)
        _, fn, smem = self._scribble
        nwords, pat = ctypes.c_uint32(smem // 4), ctypes.c_uint32(pattern)
        params = (ctypes.c_void_p * 2)(ctypes.cast(ctypes.byref(nwords), ctypes.c_void_p),
                                       ctypes.cast(ctypes.byref(pat), ctypes.c_void_p))
        # One 1024-thread block per multiprocessor (each takes all its shared memory, so they spread out).
        self._check("cuLaunchKernel", lib.cuLaunchKernel(fn, self.sms, 1, 1, 1024, 1, 1, smem, None, params, None))

    def hold(self, seconds: float) -> None:
        """Occupy every thread slot of every multiprocessor for about `seconds`, from a stream of the judge
        that nothing waits for. A candidate's kernels queue behind it; a copy on stream 0 does not, so a
        launcher that returns with its work still pending on a stream stream 0 does not wait for is seen
        (its outputs are read before the held-up kernel runs)."""
        lib = self.lib
        if self._hold is None:
            self._module()
            fn, st = ctypes.c_void_p(), ctypes.c_void_p()
            self._check("cuModuleGetFunction", lib.cuModuleGetFunction(ctypes.byref(fn), self._mod, b"ckls_hold"))
            self._check("cuStreamCreate", lib.cuStreamCreate(ctypes.byref(st), CU_STREAM_NON_BLOCKING))
            per_sm = max(1, self.attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR) // 1024)
            self._hold = (fn, st, per_sm)
        fn, st, per_sm = self._hold
        cycles = ctypes.c_uint64(int(seconds * self.clock_hz))
        params = (ctypes.c_void_p * 1)(ctypes.cast(ctypes.byref(cycles), ctypes.c_void_p))
        self._check("cuLaunchKernel", lib.cuLaunchKernel(fn, self.sms * per_sm, 1, 1, 1024, 1, 1, 0, st, params,
                                                         None))

    def _module(self):
        if getattr(self, "_mod", None) is None:
            mod = ctypes.c_void_p()
            self._check("cuModuleLoadData", self.lib.cuModuleLoadData(ctypes.byref(mod), _SCRIBBLE_PTX))
            self._mod = mod
        return self._mod

    def flush_l2(self) -> None:
        """Overwrite twice the L2 size on stream 0, so timed runs start with the candidate's data in DRAM."""
        n = max(2 * self.l2_bytes, 1 << 20)
        if self._flush is None:
            self._flush = self.alloc(n)
        self._check("cuMemsetD8", self.lib.cuMemsetD8Async(ctypes.c_uint64(self._flush), 0x5A, ctypes.c_size_t(n),
                                                            None))


# Host calls whose error means the context is gone (a sticky error): the process must be restarted.
STICKY = {700, 701, 702, 710, 713, 714, 715, 716, 717, 718, 719, 720}
