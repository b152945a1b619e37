/* The SMTP servers of one I/O thread, submission or the feedback listener: its listening
 * sockets (one per configured address, SO_REUSEPORT), accepting with the per-thread
 * connection limit, and draining. */
#include "net/net.h"
#include "send/send.h"
#include "smtp/smtp.h"
#include "smtp/smtp_internal.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SMTP_MAX_LISTENERS 16 /* addresses per list */

bool smtp_configured(const struct sesame_config *cfg)
{
    return cfg->smtp_starttls_listen[0] || cfg->smtp_tls_listen[0];
}

struct smtp_shared *smtp_shared_new(const struct sesame_config *cfg, struct store *store,
                                    struct send_shared *send, struct auth_failures *failures,
                                    SSL_CTX *tls)
{
    struct smtp_shared *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    sh->cfg = *cfg;
    sh->store = store;
    sh->send = send;
    sh->failures = failures;
    sh->tls = tls;
    return sh;
}

void smtp_shared_free(struct smtp_shared *sh)
{
    free(sh);
}

/* ---- accepting ---- */

static void peer_text(const struct sockaddr *addr, int len, char *out, size_t outlen)
{
    if (getnameinfo(addr, (socklen_t)len, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST))
        core_strlcpy(out, "unknown", outlen);
}

/* Past max_connections the client hears why (in plaintext, where it can read it). */
static void refuse_connection(struct smtp_listener *l, int fd)
{
    static const char busy[] = "421 Too many connections\r\n";
    if (!l->implicit_tls && send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        log_debug("smtp: could not refuse a connection politely");
    close(fd);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *addr,
                      int len, void *arg)
{
    (void)lev;
    struct smtp_listener *l = arg;
    struct smtp_thread *t = l->t;
    if (atomic_load(&t->active) >= t->sh->cfg.smtp_max_connections) {
        refuse_connection(l, fd);
        return;
    }
    int one = 1; /* replies are small and answer a request: never wait for Nagle */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char peer[SMTP_PEER_MAX];
    peer_text(addr, len, peer, sizeof peer);
    smtp_session_accept(t, fd, peer, l->implicit_tls);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct smtp_listener *l = arg;
    if (l->lev)
        evconnlistener_enable(l->lev);
}

/* Out of file descriptors, typically: pause this socket for a second instead of spinning. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct smtp_listener *l = arg;
    log_warn("smtp: accept failed: %s; pausing this listener for 1s",
             evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    evconnlistener_disable(lev);
    const struct timeval second = {1, 0};
    evtimer_add(l->retry, &second);
}

static int listener_open(struct smtp_thread *t, const char *addr, bool implicit_tls)
{
    char err[256];
    int fd = net_listen(addr, err, sizeof err);
    if (fd < 0) {
        log_error("smtp: cannot listen on %s: %s", addr, err);
        return -1;
    }
    struct smtp_listener *l = &t->listeners[t->listener_count];
    l->t = t;
    l->implicit_tls = implicit_tls;
    l->retry = evtimer_new(t->base, on_accept_retry, l);
    l->lev = evconnlistener_new(t->base, on_accept, l,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!l->lev || !l->retry) {
        /* Not counted yet, so listeners_close would not see them. */
        if (l->lev)
            evconnlistener_free(l->lev); /* closes fd */
        else
            close(fd);
        if (l->retry)
            event_free(l->retry);
        l->lev = NULL;
        l->retry = NULL;
        log_error("smtp: cannot serve %s", addr);
        return -1;
    }
    evconnlistener_set_error_cb(l->lev, on_accept_error);
    t->listener_count++;
    return 0;
}

/* Every address of a comma-separated list ("127.0.0.1:587, [::1]:587"). */
static int listeners_open(struct smtp_thread *t, const char *list, bool implicit_tls)
{
    char copy[CONFIG_LISTEN_LEN];
    core_strlcpy(copy, list, sizeof copy);
    char *save = NULL;
    for (char *addr = strtok_r(copy, ",", &save); addr; addr = strtok_r(NULL, ",", &save)) {
        while (*addr == ' ' || *addr == '\t')
            addr++;
        size_t n = strlen(addr);
        while (n > 0 && (addr[n - 1] == ' ' || addr[n - 1] == '\t'))
            addr[--n] = '\0';
        if (!n)
            continue;
        if (t->listener_count == 2 * SMTP_MAX_LISTENERS) {
            log_error("smtp: more than %d listen addresses", 2 * SMTP_MAX_LISTENERS);
            return -1;
        }
        if (listener_open(t, addr, implicit_tls))
            return -1;
    }
    return 0;
}

static void listeners_close(struct smtp_thread *t)
{
    for (int i = 0; i < t->listener_count; i++) {
        struct smtp_listener *l = &t->listeners[i];
        if (l->lev)
            evconnlistener_free(l->lev);
        if (l->retry)
            event_free(l->retry);
        l->lev = NULL;
        l->retry = NULL;
    }
    t->listener_count = 0;
}

/* ---- the thread ---- */

static struct smtp_thread *thread_alloc(struct smtp_shared *sh, struct event_base *base)
{
    struct smtp_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->sh = sh;
    t->base = base;
    atomic_init(&t->active, 0);
    t->listeners = calloc(2 * SMTP_MAX_LISTENERS, sizeof *t->listeners);
    if (!t->listeners) {
        free(t);
        return NULL;
    }
    return t;
}

struct smtp_thread *smtp_thread_new(struct smtp_shared *sh, struct event_base *base)
{
    if (!sh->tls) { /* submission is TLS only: AUTH is never offered in plaintext */
        log_error("smtp: the submission listeners need a TLS context");
        return NULL;
    }
    struct smtp_thread *t = thread_alloc(sh, base);
    if (!t)
        return NULL;
    t->conn = store_conn_open(sh->store);
    t->identities = send_identity_cache_new(sh->cfg.api_cache_ttl_s);
    if (!t->conn || !t->identities || listeners_open(t, sh->cfg.smtp_starttls_listen, false) ||
        listeners_open(t, sh->cfg.smtp_tls_listen, true)) {
        smtp_thread_free(t);
        return NULL;
    }
    return t;
}

struct smtp_thread *smtp_feedback_thread_new(struct smtp_shared *sh, struct event_base *base,
                                             const struct smtp_feedback_hooks *hooks)
{
    if (!sh->cfg.feedback_listen[0]) {
        log_error("feedback: feedback.listen is not set");
        return NULL;
    }
    struct smtp_thread *t = thread_alloc(sh, base);
    if (!t)
        return NULL;
    t->feedback = true;
    t->hooks = *hooks;
    if (listeners_open(t, sh->cfg.feedback_listen, false)) {
        smtp_thread_free(t);
        return NULL;
    }
    return t;
}

void smtp_thread_stop_accepting(struct smtp_thread *t)
{
    if (!t)
        return;
    listeners_close(t);
    t->draining = true;
    for (struct smtp_session *s = t->sessions, *next; s; s = next) {
        next = s->next;
        smtp_session_drain(s);
    }
}

void smtp_thread_close_sessions(struct smtp_thread *t)
{
    if (!t)
        return;
    for (struct smtp_session *s = t->sessions, *next; s; s = next) {
        next = s->next;
        smtp_session_abort(s);
    }
}

int smtp_thread_active(const struct smtp_thread *t)
{
    return t ? atomic_load(&((struct smtp_thread *)t)->active) : 0;
}

void smtp_thread_free(struct smtp_thread *t)
{
    if (!t)
        return;
    listeners_close(t);
    while (t->sessions)
        smtp_session_free(t->sessions); /* the loop has stopped: no callback can follow */
    free(t->listeners);
    send_identity_cache_free(t->identities);
    store_conn_close(t->conn);
    free(t);
}
