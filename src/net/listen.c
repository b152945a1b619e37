/* Listening sockets shared across I/O threads through SO_REUSEPORT. */
#include "net/net.h"
#include "core/core.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int net_listen(const char *addr, char *err, size_t errlen)
{
    char host[CONFIG_ADDR_LEN], port_text[16];
    int port;
    if (!config_split_addr(addr, host, sizeof host, &port))
        return snprintf(err, errlen, "invalid address '%s'", addr), -1;
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    int rc = getaddrinfo(host[0] ? host : NULL, port_text, &hints, &res);
    if (rc != 0)
        return snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc)), -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1024)) {
        snprintf(err, errlen, "%s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

bool net_addr_is_loopback(const char *addr)
{
    return !strncmp(addr, "127.", 4) || !strncmp(addr, "[::1]:", 6) ||
           !strncmp(addr, "localhost:", 10);
}

struct event_base *net_event_base(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}
