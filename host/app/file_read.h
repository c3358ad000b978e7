/*
 * host/app/file_read.h: a whole, bounded file read into memory (the
 * manifest). No jansson, no messages: the caller words the error.
 */
#ifndef IOLOOP_HOST_FILE_READ_H
#define IOLOOP_HOST_FILE_READ_H

#include <stddef.h>

/*
 * Reads the file at path into a malloc'ed buffer (*text, *len; not
 * NUL-terminated; the caller frees *text). Returns 0, or -errno with
 * nothing allocated: -EISDIR for a folder, -EFBIG for a file of max bytes
 * or more (so that /dev/zero is refused instead of read forever).
 */
int ioloop__file_read(const char *path, size_t max, char **text,
                      size_t *len);

#endif /* IOLOOP_HOST_FILE_READ_H */
