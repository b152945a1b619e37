/* net: listening sockets, TLS contexts and the self-signed certificate of a new instance. */
#ifndef SESAME_NET_H
#define SESAME_NET_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;

/* A non-blocking listening socket on host:port with SO_REUSEPORT, so that every I/O
 * thread can hold its own socket on the same address. -1 on error (message in err). */
int net_listen(const char *addr, char *err, size_t errlen);
/* An event base for a loop with many connections. Epoll's change list is on: a
 * bufferevent turns its write event on and off for every reply it flushes, and the change
 * list makes that one epoll_ctl per loop pass instead of two per reply. No fd is dup'd
 * (the change list's one caveat). */
struct event_base *net_event_base(void);
/* True for a host:port on a loopback address (127.0.0.0/8, [::1], localhost). */
bool net_addr_is_loopback(const char *addr);
/* Server context from PEM files; TLS 1.2 and later. NULL on error (message in err). */
SSL_CTX *net_tls_server_ctx(const char *cert_path, const char *key_path, char *err, size_t errlen);
/* Writes a self-signed certificate (RSA 2048, 10 years) for hostname, localhost and the
 * loopback addresses, and its key (mode 0600). */
int net_tls_self_signed(const char *cert_path, const char *key_path, const char *hostname,
                        char *err, size_t errlen);

#endif
