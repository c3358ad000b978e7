/*
 * host/runtime/stackread.c: where a blocked thread is, read from outside it
 * (stackread.h). Linux only: /proc/self/task/TID/syscall and
 * process_vm_readv (Linux 3.2).
 */
#include "stackread.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define SCAN_BYTES (256 * 1024) /* of stack above the stack pointer */
#define CHUNK 4096
#define MAX_RANGES 1024         /* executable mappings remembered */

struct range {
    uintptr_t lo, hi;
};

/* The executable mappings of this process, from /proc/self/maps. */
struct code {
    size_t n;
    struct range v[MAX_RANGES];
};

static int read_proc(pid_t tid, const char *what, char *buf, size_t len);
static int load_code(struct code *c);
static const struct range *in_code(const struct code *c, uintptr_t a);
static bool after_call(const struct code *c, uintptr_t ret);
static int peek(uintptr_t addr, void *buf, size_t len);
static void symbolize(uintptr_t addr, char *out, size_t len);

int
ioloop__stack_read(pid_t tid, uintptr_t stack_end, struct ioloop_stack *st)
{
    unsigned long long v[9];
    uintptr_t sp, pc, end;
    struct code *code;
    char buf[512], *p, *q;
    size_t n = 0;
    int rc;

    memset(st, 0, sizeof(*st));
    if ((rc = read_proc(tid, "syscall", buf, sizeof(buf))) < 0) {
        return rc;
    }
    if (strncmp(buf, "running", 7) == 0) {
        return 0;
    }
    /* "nr a0 .. a5 sp pc", or "-1 sp pc" outside a system call. */
    st->syscall_nr = strtol(buf, &p, 10);
    while (n < 9 && (v[n] = strtoull(p, &q, 16), q != p)) {
        p = q;
        n++;
    }
    if (n < 2) {
        return -EPROTO;
    }
    st->in_syscall = 1;
    sp = (uintptr_t) v[n - 2];
    pc = (uintptr_t) v[n - 1];
    if (read_proc(tid, "wchan", st->wchan, sizeof(st->wchan)) < 0
        || strcmp(st->wchan, "0") == 0) {
        st->wchan[0] = '\0';
    }
    symbolize(pc, st->frames[st->nframes++], IOLOOP_FRAME_LEN);
    code = malloc(sizeof(*code));
    if (code == NULL || load_code(code) < 0) {
        free(code);
        return 0; /* the exact frame alone */
    }
    end = stack_end - sp < SCAN_BYTES ? stack_end : sp + SCAN_BYTES;
    for (uintptr_t at = sp & ~(uintptr_t) 7; at < end; at += CHUNK) {
        uintptr_t words[CHUNK / sizeof(uintptr_t)];
        size_t len = end - at < CHUNK ? end - at : CHUNK;

        if (peek(at, words, len) < 0) {
            break;
        }
        for (size_t i = 0; i < len / sizeof(uintptr_t); i++) {
            if (st->nframes == IOLOOP_STACK_FRAMES) {
                break;
            }
            if (after_call(code, words[i])) {
                symbolize(words[i], st->frames[st->nframes++],
                          IOLOOP_FRAME_LEN);
            }
        }
    }
    free(code);
    return 0;
}

/* Reads /proc/self/task/TID/<what> into buf, one line, without its
 * newline. */
static int
read_proc(pid_t tid, const char *what, char *buf, size_t len)
{
    char path[64];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int) tid, what);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    n = read(fd, buf, len - 1);
    if (n < 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    close(fd);
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int
load_code(struct code *c)
{
    char line[512];
    FILE *f = fopen("/proc/self/maps", "re");

    if (f == NULL) {
        return -errno;
    }
    c->n = 0;
    while (c->n < MAX_RANGES && fgets(line, sizeof(line), f) != NULL) {
        uintptr_t lo, hi;
        char perms[8];

        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi, perms)
                == 3
            && perms[2] == 'x') {
            c->v[c->n++] = (struct range){lo, hi};
        }
        if (strchr(line, '\n') == NULL) { /* a long path: skip its rest */
            int ch;

            while ((ch = fgetc(f)) != EOF && ch != '\n') {
            }
        }
    }
    fclose(f);
    return 0;
}

/* The executable mapping holding a, or NULL (the maps are in order). */
static const struct range *
in_code(const struct code *c, uintptr_t a)
{
    size_t lo = 0, hi = c->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (a < c->v[mid].lo) {
            hi = mid;
        } else if (a >= c->v[mid].hi) {
            lo = mid + 1;
        } else {
            return &c->v[mid];
        }
    }
    return NULL;
}

/*
 * Whether ret is a return address: in executable code, right after a
 * call instruction. x86-64: e8 rel32, or ff /2 (an indirect call, 2 to 7
 * bytes with its ModRM, SIB, displacement or REX prefix). AArch64: BL or
 * BLR. Elsewhere any code address passes.
 */
static bool
after_call(const struct code *c, uintptr_t ret)
{
    const struct range *r = in_code(c, ret);

    if (r == NULL) {
        return false;
    }
#if defined(__x86_64__)
    {
        unsigned char b[7];

        if (ret - r->lo < sizeof(b) || peek(ret - 7, b, sizeof(b)) < 0) {
            return false;
        }
        if (b[2] == 0xe8) {
            return true;
        }
        for (int k = 2; k <= 7; k++) {
            if (b[7 - k] == 0xff && ((b[8 - k] >> 3) & 7) == 2) {
                return true;
            }
        }
        return false;
    }
#elif defined(__aarch64__)
    {
        uint32_t insn;

        if (ret - r->lo < 4 || peek(ret - 4, &insn, 4) < 0) {
            return false;
        }
        return (insn & 0xfc000000u) == 0x94000000u
               || (insn & 0xfffffc1fu) == 0xd63f0000u;
    }
#else
    return true;
#endif
}

/* Copies len bytes at addr of our own memory; -errno (EFAULT) when any
 * of them is not mapped. */
static int
peek(uintptr_t addr, void *buf, size_t len)
{
    struct iovec local = {buf, len}, remote = {(void *) addr, len};

    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0)
                   == (ssize_t) len
               ? 0
               : -EFAULT;
}

/* "file(symbol+0xoff) [0xaddr]", as backtrace_symbols() prints a frame;
 * "file(+0xoff)" (from the file's base, for addr2line) without a symbol. */
static void
symbolize(uintptr_t addr, char *out, size_t len)
{
    Dl_info info;

    if (dladdr((void *) addr, &info) == 0 || info.dli_fname == NULL) {
        snprintf(out, len, "[0x%" PRIxPTR "]", addr);
    } else if (info.dli_sname != NULL && info.dli_saddr != NULL) {
        snprintf(out, len, "%s(%s+0x%" PRIxPTR ") [0x%" PRIxPTR "]",
                 info.dli_fname, info.dli_sname,
                 addr - (uintptr_t) info.dli_saddr, addr);
    } else {
        snprintf(out, len, "%s(+0x%" PRIxPTR ") [0x%" PRIxPTR "]",
                 info.dli_fname, addr - (uintptr_t) info.dli_fbase, addr);
    }
}
