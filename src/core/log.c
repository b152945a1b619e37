/* Logging to stderr: one line per event, with a UTC timestamp and a level. */
#include "core/core.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    min_level = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < min_level)
        return;
    char stamp[32];
    core_iso8601(core_now_ms(), stamp, sizeof stamp);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(stderr, "%s %s %s\n", stamp, names[level], line);
}
