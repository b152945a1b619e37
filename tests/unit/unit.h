/* A minimal unit-test harness: CHECK records a failure with its line and goes on;
 * UNIT_END prints "N passed, M failed" and gives the exit status. */
#ifndef SESAME_UNIT_H
#define SESAME_UNIT_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int unit_passed, unit_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            unit_passed++;                                                                         \
        } else {                                                                                   \
            unit_failed++;                                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ && b_ && !strcmp(a_, b_)) {                                                         \
            unit_passed++;                                                                         \
        } else {                                                                                   \
            unit_failed++;                                                                         \
            fprintf(stderr, "%s:%d: '%s' != '%s'\n", __FILE__, __LINE__, a_ ? a_ : "(null)",       \
                    b_ ? b_ : "(null)");                                                           \
        }                                                                                          \
    } while (0)

/* A helper server in a child process: `python3 -c script [arg]` prints the port it listens
 * on as its first line and runs until its stdin closes. */
struct unit_server {
    pid_t pid;
    int to_child; /* closing it stops the server */
    int port;
};

static inline bool unit_server_start(struct unit_server *s, const char *script, const char *arg)
{
    int out[2], in[2];
    if (pipe(out) || pipe(in))
        return false;
    s->pid = fork();
    if (s->pid == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]), close(in[1]);
        execl("/usr/bin/python3", "python3", "-c", script, arg, (char *)NULL);
        _exit(127);
    }
    close(out[1]), close(in[0]);
    s->to_child = in[1];
    /* The port, up to its newline: a read may return part of the line. */
    char line[32] = {0};
    size_t len = 0;
    while (len < sizeof line - 1 && !strchr(line, '\n')) {
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(out[0]);
    s->port = strchr(line, '\n') ? atoi(line) : 0;
    return s->port > 0;
}

static inline void unit_server_stop(struct unit_server *s)
{
    close(s->to_child);
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}

#define UNIT_END() (printf("%d passed, %d failed\n", unit_passed, unit_failed), unit_failed ? 1 : 0)

#endif
