// Planted bug (fallback to the reference): calls back into the Python interpreter that loaded it and lets
// NumPy do the work.
#include <stdint.h>
#include <stdio.h>

extern int PyGILState_Ensure(void);
extern void PyGILState_Release(int);
extern int PyRun_SimpleString(const char *);

void axpy(int64_t n, float a, const float *x, const float *y, float *out) {
    char code[1024];
    snprintf(code, sizeof code,
             "import ctypes, numpy as np\n"
             "P = ctypes.POINTER(ctypes.c_float)\n"
             "v = lambda p: np.ctypeslib.as_array(ctypes.cast(p, P), (%lld,))\n"
             "v(%llu)[:] = %.9g * v(%llu) + v(%llu)\n",
             (long long)n, (unsigned long long)(uintptr_t)out, a, (unsigned long long)(uintptr_t)x,
             (unsigned long long)(uintptr_t)y);
    int g = PyGILState_Ensure();
    PyRun_SimpleString(code);
    PyGILState_Release(g);
}
