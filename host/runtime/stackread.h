/*
 * host/runtime/stackread.h: reads where another thread of this process is, from
 * outside it, for the blocking watchdog. Nothing is sent to the thread:
 * no signal, no ptrace stop, so every system call it makes returns what
 * it would have returned anyway. The kernel tells whether it is in a
 * system call and, if so, its stack pointer and the call's return address
 * (/proc/self/task/TID/syscall, wchan); its stack is then read with
 * process_vm_readv on our own pid (no fault on an unmapped page, and no
 * sanitizer instrumentation of the reads) and scanned for return
 * addresses: words that point into executable code just past a call
 * instruction (stack scanning, as Breakpad does without unwind tables).
 */
#ifndef IOLOOP_HOST_STACKREAD_H
#define IOLOOP_HOST_STACKREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Most frames one read returns. */
#define IOLOOP_STACK_FRAMES 32
/* Room for one symbolized frame: "file(symbol+0xoff) [0xaddr]". */
#define IOLOOP_FRAME_LEN 192

struct ioloop_stack {
    int in_syscall;       /* 1: blocked in (or entering) a system call */
    long syscall_nr;      /* -1 when blocked outside one (a page fault) */
    char wchan[64];       /* the kernel function it waits in, or "" */
    size_t nframes;       /* frames[0] is the exact return address */
    char frames[IOLOOP_STACK_FRAMES][IOLOOP_FRAME_LEN];
};

/*
 * Fills st for thread tid of this process, whose stack ends (its highest
 * address) at stack_end. A thread running in user space has no readable
 * position: in_syscall 0 and no frames. Returns 0, or -errno when /proc
 * cannot be read. Allocates (reads /proc/self/maps): not for the loop
 * thread's hot path, nor a signal handler.
 */
int ioloop__stack_read(pid_t tid, uintptr_t stack_end,
                       struct ioloop_stack *st);

#endif /* IOLOOP_HOST_STACKREAD_H */
