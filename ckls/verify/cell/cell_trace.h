/* The CUDA cell's diagnostic builds (bench/cuda_survey.py only; never a verdict), for a GPU machine that has no
 * strace. x86-64 only.
 *
 * Survey (-DCELL_SURVEY=1): the judge's own three filters, but a call they trap is logged (with the stage, and paths
 * by name) and answered EPERM instead of ending the cell: one run lists every such call the driver makes. (Calls the
 * filters answer with an error themselves never reach the handler: the trace shows those.)
 *
 * Trace (-DCELL_SURVEY=2): an strace of the cell from the driver's start on. The judge's filters are not installed;
 * one filter traps every system call except those made from one instruction (trace_syscall's) and the few that
 * cannot be made from a signal handler (clone: the new thread would return onto the handler's stack; clone3 answers
 * ENOSYS as in the judge's filters; rt_sigreturn, exit). The SIGSYS handler logs the call, makes it from that
 * instruction and hands the result back. */
#ifndef CKLS_CELL_TRACE_H
#define CKLS_CELL_TRACE_H

#include <linux/audit.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static volatile int cell_stage;

long trace_syscall(long nr, long a, long b, long c, long d, long e, long f);
extern const char trace_syscall_ret[];
__asm__(".text\n"
        ".globl trace_syscall\n"
        "trace_syscall:\n"
        "  mov %rdi, %rax\n"
        "  mov %rsi, %rdi\n"
        "  mov %rdx, %rsi\n"
        "  mov %rcx, %rdx\n"
        "  mov %r8, %r10\n"
        "  mov %r9, %r8\n"
        "  mov 8(%rsp), %r9\n"
        "  syscall\n"
        ".globl trace_syscall_ret\n"
        "trace_syscall_ret:\n"
        "  ret\n");

static void trace_write(const char *s, size_t n) { trace_syscall(SYS_write, 2, (long)s, (long)n, 0, 0, 0); }

/* the argument positions that hold a path (bit i: argument i), per call */
static int trace_paths(long nr) {
    switch (nr) {
    case SYS_open: case SYS_stat: case SYS_lstat: case SYS_access: case SYS_readlink: case SYS_unlink:
    case SYS_mkdir: case SYS_rmdir: case SYS_memfd_create: case SYS_chmod: case SYS_statfs: case SYS_chdir:
        return 1;
    case SYS_openat: case SYS_newfstatat: case SYS_faccessat: case SYS_faccessat2: case SYS_readlinkat:
    case SYS_unlinkat: case SYS_mkdirat: case SYS_statx:
        return 2;
    case SYS_symlink: case SYS_rename: case SYS_link:
        return 3;
    case SYS_symlinkat:
        return 5;
    default:
        return 0;
    }
}

/* "ckls-cell: WHAT: stage S call NR (a0, a1, a2) "path"..." into line; its length */
static int trace_describe(char *line, size_t size, const char *what, long nr, const long *arg) {
    int k = snprintf(line, size, "ckls-cell: %s: stage %d call %ld (%#lx, %#lx, %#lx)", what, cell_stage, nr,
                     (unsigned long)arg[0], (unsigned long)arg[1], (unsigned long)arg[2]);
    int paths = trace_paths(nr);
    for (int i = 0; i < 6 && k < (int)size - 200; i++)
        if (paths & (1 << i) && arg[i]) k += snprintf(line + k, size - k, " \"%.160s\"", (const char *)arg[i]);
    if ((nr == SYS_connect || nr == SYS_bind) && arg[1] && ((const struct sockaddr *)arg[1])->sa_family == AF_UNIX) {
        const struct sockaddr_un *u = (const struct sockaddr_un *)arg[1];
        k += snprintf(line + k, size - k, " unix \"%.100s\"", u->sun_path[0] ? u->sun_path : u->sun_path + 1);
    }
    return k;
}

/* A trapped call, logged as WHAT with its result: made from trace_syscall's instruction (trace), or refused
 * with EPERM (survey). The result is what the caller sees. */
static void trace_answer(siginfo_t *si, void *ctx, const char *what, int make) {
    greg_t *r = ((ucontext_t *)ctx)->uc_mcontext.gregs;
    long nr = si->si_syscall, arg[6] = {r[REG_RDI], r[REG_RSI], r[REG_RDX], r[REG_R10], r[REG_R8], r[REG_R9]};
    char line[640];
    int k = trace_describe(line, sizeof line - 40, what, nr, arg);
    long ret = make ? trace_syscall(nr, arg[0], arg[1], arg[2], arg[3], arg[4], arg[5]) : -EPERM;
    k += snprintf(line + k, sizeof line - k, make ? " = %ld\n" : " refused %ld\n", ret);
    trace_write(line, (size_t)k);
    r[REG_RAX] = ret;
}

static void survey_handler(int sig, siginfo_t *si, void *ctx) { (void)sig; trace_answer(si, ctx, "survey", 0); }
static void trace_handler(int sig, siginfo_t *si, void *ctx) { (void)sig; trace_answer(si, ctx, "trace", 1); }

static void trace_on_sigsys(void (*handler)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
}

/* The trace filter, on every thread; 0, or -1. */
static int trace_install(void) {
    trace_on_sigsys(trace_handler);
    uint64_t ip = (uint64_t)(uintptr_t)trace_syscall_ret;
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)ip, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(ip >> 32), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigreturn, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit_group, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fp = {(unsigned short)(sizeof prog / sizeof prog[0]), prog};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp) == 0 ? 0 : -1;
}

/* Stage n of a diagnostic build: the trace's filter once (stage 1), or the judge's stage with the survey's handler. */
static int survey_filter(int fd, int stage) {
    cell_stage = stage;
    if (CELL_SURVEY == 2) {
        close(fd);
        return stage == 1 ? trace_install() : 0;
    }
    if (stage == 1) trace_on_sigsys(survey_handler); /* (later the filters refuse a new SIGSYS handler) */
    return install_filter(fd, 1);
}

#endif
