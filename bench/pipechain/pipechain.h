/*
 * bench/pipechain/pipechain.h: the chain every contender drives, and the
 * contender interface.
 *
 * N non-blocking AF_UNIX stream socketpairs; each contender watches every
 * read end with one persistent level-triggered read handler. A handler
 * reads exactly one byte and, while the write budget lasts, writes one
 * byte into the next pair: chain_readable() is that whole handler body,
 * inlined into each contender, so they all do the same work.
 */
#ifndef IOLOOP_BENCH_PIPECHAIN_H
#define IOLOOP_BENCH_PIPECHAIN_H

#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

struct chain {
    int n;        /* pairs */
    int *rd;      /* read end of pair i */
    int *wr;      /* write end of pair i */
    int *next_wr; /* indexed by a read fd: the write end of the next pair */
    int max_fd;   /* the largest read fd */
    int writes_left;
    int reads_left; /* the iteration is over at 0 */
};

struct pc_ops {
    const char *name;
    /* Makes an empty loop; param is the contender's own (a backend).
     * NULL with the reason in err when it cannot run here. */
    void *(*create)(const void *param, char *err, size_t errlen);
    /* Registers a persistent read handler on every ch->rd[i], and leaves
     * it registered with the kernel (a library that defers this to its
     * next loop pass runs that pass here). */
    void (*add_all)(void *ctx, struct chain *ch);
    /* Runs the loop until chain_readable() returned 1, then stops it. */
    void (*run)(void *ctx);
    /* Removes every handler and frees the loop. */
    void (*destroy)(void *ctx);
};

extern const struct pc_ops pc_raw_epoll;
extern const struct pc_ops pc_ioloop;
extern const struct pc_ops pc_libev;
extern const struct pc_ops pc_libevent;
extern const struct pc_ops pc_libuv;

/*
 * The handler body: one byte in, maybe one byte on. Returns 1 when the
 * last expected byte was read (stop the loop), else 0. A read that finds
 * nothing (a spurious report) counts for nothing.
 */
static inline int
chain_readable(struct chain *ch, int fd)
{
    char b;

    if (read(fd, &b, 1) != 1) {
        return 0;
    }
    if (ch->writes_left > 0) {
        ch->writes_left--;
        if (write(ch->next_wr[fd], "e", 1) != 1) {
            abort();
        }
    }
    return --ch->reads_left == 0;
}

#endif /* IOLOOP_BENCH_PIPECHAIN_H */
