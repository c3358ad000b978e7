/*
 * tests/fuzz/replay_main.c: the main of a harness built without libFuzzer
 * (gcc). Runs LLVMFuzzerTestOneInput once per file of every folder (or
 * file) given, so that each corpus entry, and each crash once fixed, stays
 * a regression test in `make test`. Exits 1 when no input was found: a
 * corpus that went missing must not pass quietly.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path);

int
main(int argc, char **argv)
{
    size_t n = 0;

    if (LLVMFuzzerInitialize != NULL) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    for (int i = 1; i < argc; i++) {
        struct dirent *e;
        DIR *d = opendir(argv[i]);

        if (d == NULL) {
            if (replay_file(argv[i]) < 0) {
                return 1;
            }
            n++;
            continue;
        }
        while ((e = readdir(d)) != NULL) {
            char path[4096];

            if (e->d_name[0] == '.') {
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (replay_file(path) < 0) {
                closedir(d);
                return 1;
            }
            n++;
        }
        closedir(d);
    }
    printf("replayed %zu input%s\n", n, n == 1 ? "" : "s");
    return n > 0 ? 0 : 1;
}

/* Reads path whole and runs the harness on it; -1 when unreadable. */
static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rbe");
    uint8_t *buf = NULL;
    struct stat st;
    size_t len;

    /* Exactly the input's size, as libFuzzer gives it: ASan then sees a
     * read one byte past the end. */
    if (f == NULL || fstat(fileno(f), &st) < 0
        || (buf = malloc(st.st_size > 0 ? (size_t) st.st_size : 1))
               == NULL) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    len = fread(buf, 1, (size_t) st.st_size, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}
