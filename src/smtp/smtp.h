/* smtp: the SES SMTP interface (submission over STARTTLS and implicit TLS, AUTH PLAIN and
 * LOGIN with SMTP passwords) feeding the accept pipeline. One smtp_thread per I/O thread,
 * each with its own SO_REUSEPORT sockets on every configured address; they share an
 * smtp_shared. */
#ifndef SESAME_SMTP_H
#define SESAME_SMTP_H

#include "core/core.h"
#include "store/store.h"

#include <openssl/ssl.h>
#include <stdbool.h>

struct event_base;
struct auth_failures;
struct send_shared;
struct smtp_shared;
struct smtp_thread;

/* True when the config names at least one SMTP listener. */
bool smtp_configured(const struct sesame_config *cfg);

/* send: the accept pipeline shared with the API; failures: failed authentications per
 * source address, shared with the other interfaces; tls: the server context (required
 * when smtp_configured). Each must outlive the smtp_shared. */
struct smtp_shared *smtp_shared_new(const struct sesame_config *cfg, struct store *store,
                                    struct send_shared *send, struct auth_failures *failures,
                                    SSL_CTX *tls);
void smtp_shared_free(struct smtp_shared *sh);

/* Opens this thread's sockets on every address of smtp.starttls_listen and
 * smtp.tls_listen and serves them on base. NULL on error (logged). */
struct smtp_thread *smtp_thread_new(struct smtp_shared *sh, struct event_base *base);
/* Draining (on base's thread): closes the sockets; idle sessions get 421 and are closed,
 * a session receiving a message or waiting for its commit answers it first. */
void smtp_thread_stop_accepting(struct smtp_thread *t);
/* Closes every session left, at once (on base's thread): the end of a bounded drain. */
void smtp_thread_close_sessions(struct smtp_thread *t);
/* Sessions still open; safe to call from any thread. */
int smtp_thread_active(const struct smtp_thread *t);
/* After base's loop has stopped. NULL is ignored. */
void smtp_thread_free(struct smtp_thread *t);

#endif
