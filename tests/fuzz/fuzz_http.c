/* libFuzzer target: whole HTTP requests into a real Query API listener (libevent's HTTP
 * parser, then Sesame's parameter parsing, authentication and dispatch), over loopback. */
#include "api/api.h"
#include "send/send.h"
#include "store/store.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct event_base *base;
static struct sockaddr_in addr;

static char db_path[128];

static void cleanup(void)
{
    char path[160];
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", db_path, suffixes[i]);
        unlink(path);
    }
}

static int setup(void)
{
    static struct sesame_config cfg;
    static struct store *store;
    char err[256];
    evthread_use_pthreads();
    config_defaults(&cfg);
    snprintf(db_path, sizeof db_path, "/tmp/sesame-fuzz-http-%d.db", (int)getpid());
    core_strlcpy(cfg.store_path, db_path, sizeof cfg.store_path);
    atexit(cleanup);
    cfg.api_max_body_bytes = 65536;
    log_set_level(LOG_ERROR);
    if (store_open(&cfg, &store, err, sizeof err) != STORE_OK || store_writer_start(store))
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&addr, &len))
        return -1;
    base = event_base_new();
    struct api_shared *sh =
        api_shared_new(&cfg, store, send_shared_new(&cfg, store), NULL); /* no failure limit */
    return api_thread_new(sh, base, NULL, fd, -1) ? 0 : -1;
}

/* Sends the bytes, then runs the loop until the server has answered and closed, or gives up. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready)
        ready = setup() == 0 ? 1 : -1;
    if (ready < 0)
        abort();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
        close(fd);
        return 0;
    }
    if (size && write(fd, data, size) < 0) {
        close(fd);
        return 0;
    }
    shutdown(fd, SHUT_WR);
    char sink[4096];
    for (int round = 0; round < 200; round++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5) > 0 && read(fd, sink, sizeof sink) <= 0)
            break;
    }
    close(fd);
    event_base_loop(base, EVLOOP_NONBLOCK);
    return 0;
}
