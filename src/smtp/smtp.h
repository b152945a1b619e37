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

/* ---- the feedback listener (feedback.listen): the bounce domain's MX ----
 * Plain SMTP (STARTTLS offered when tls is given), no AUTH, for DSNs, ARF reports and
 * auto-replies sent to VERP addresses. A session of this kind never reaches the accept
 * pipeline: recipients are checked and messages handed over through the hooks. It offers
 * PIPELINING, 8BITMIME, SIZE (feedback.max_message_bytes) and ENHANCEDSTATUSCODES (every
 * reply but the greeting's and EHLO/HELO's has an enhanced code); at most 100 recipients
 * per message (452 4.5.3); timeouts, max_connections and max_messages are smtp.*'s.
 * The DATA reader is submission's: a dot line next to a bare LF is refused (554) and
 * closes the connection (DECISIONS 23). */
struct smtp_feedback_hooks {
    /* RCPT TO: whether the listener takes mail for address (bare); else 550 5.1.1. */
    bool (*rcpt_ok)(const char *address, void *ctx);
    /* A whole message (dots unstuffed, line ends as received: CRLF from any conforming
     * sender, a bare LF or CR inside a line kept; at most feedback.max_message_bytes, else
     * 552 5.3.4 without a call). mail_from is "" for <>. mail_from, rcpts and data stay
     * valid until done is called (no copy needed before). done(arg, ok) must be called
     * exactly once, on base's thread (it may be called from inside receive): ok after the
     * message is durable (250 2.0.0), else 451 4.3.0. */
    void (*receive)(const char *mail_from, const char *const *rcpts, int rcpt_count,
                    const char *data, size_t len, struct event_base *base,
                    void (*done)(void *arg, bool ok), void *arg, void *ctx);
    void *ctx;
};
/* Opens this thread's SO_REUSEPORT socket on feedback.listen and serves it on base, with
 * the hooks (copied). sh may come from smtp_shared_new even when no submission listener
 * is configured: feedback threads use none of its store, send and failures, which may
 * then be NULL, and tls may be NULL (no STARTTLS offered); smtp_thread_new, though, fails
 * without tls. NULL on error (logged). Stopped and freed like any smtp_thread (the same
 * smtp_thread_stop_accepting, _close_sessions, _active and _free). */
struct smtp_thread *smtp_feedback_thread_new(struct smtp_shared *sh, struct event_base *base,
                                             const struct smtp_feedback_hooks *hooks);

/* ---- the client (client*.c, proto.c): delivery's side of SMTP ----
 * One struct smtp_client is one connection to a receiving server, reused for several
 * transactions. Everything runs on the event_base it was made on; callbacks run there
 * too and never re-enter the caller from inside a call (they are deferred). */

struct sockaddr;
struct smtp_client;

enum smtp_client_tls {
    SMTP_CLIENT_TLS_NONE,          /* never STARTTLS */
    SMTP_CLIENT_TLS_OPPORTUNISTIC, /* STARTTLS when offered; a failed handshake reconnects without
                                    */
    SMTP_CLIENT_TLS_REQUIRED,      /* STARTTLS or fail (temporary) */
    SMTP_CLIENT_TLS_IMPLICIT,      /* TLS from the first byte (a relay on 465) */
};

struct smtp_client_config {
    const char *helo_name;   /* EHLO/HELO argument */
    const char *server_name; /* SNI and, with verify, the name checked; may be NULL */
    enum smtp_client_tls tls;
    bool tls_verify;                   /* check the server's certificate chain and name */
    SSL_CTX *tls_ctx;                  /* client context; required unless tls is NONE */
    const char *auth_user, *auth_pass; /* AUTH PLAIN (else LOGIN) after TLS; NULL: none */
    int64_t connect_timeout_ms;        /* TCP connect plus TLS handshake */
    int64_t greeting_timeout_ms;       /* 220 and EHLO/HELO and STARTTLS replies */
    int64_t command_timeout_ms;        /* MAIL, RCPT, RSET, QUIT, DATA's 354 */
    int64_t data_timeout_ms;           /* no progress while sending the data */
    int64_t final_timeout_ms;          /* the reply to the final dot (RFC 5321: 10 min) */
};

/* Where a failure happened, for logs and for classifying it. */
enum smtp_client_stage {
    SMTP_CLIENT_CONNECT,
    SMTP_CLIENT_GREETING,
    SMTP_CLIENT_EHLO,
    SMTP_CLIENT_STARTTLS,
    SMTP_CLIENT_AUTH,
    SMTP_CLIENT_MAIL,
    SMTP_CLIENT_RCPT,
    SMTP_CLIENT_DATA,  /* the 354 */
    SMTP_CLIENT_FINAL, /* the reply after the dot */
};

/* A reply, or a local failure with code 0 (timeout, reset, garbage, a reply out of
 * protocol, quoted in text). text holds the server's lines joined with "\n" (each line's
 * text cut to about 508 bytes, the whole to 511), or a description of the local failure. */
struct smtp_client_reply {
    int code;          /* 0: no reply (connection failure); else 200-599 */
    char text[512];    /* the reply text (after the code), or the local error */
    char enhanced[16]; /* "5.1.1" when the reply starts with an enhanced status, else "" */
};

/* The connection is ready for transactions (ok) or failed before it was. On failure
 * the client is dead: the callee must smtp_client_free it. */
struct smtp_client_ready {
    bool ok;
    enum smtp_client_stage stage;   /* where it failed; MAIL: died idle before this call */
    struct smtp_client_reply reply; /* the failing reply, or the greeting on success */
    bool tls;                       /* TLS is on */
    bool pipelining, eightbitmime;  /* what the server offered */
    int64_t max_size;               /* the server's SIZE; 0 when none given */
};
typedef void (*smtp_client_ready_fn)(struct smtp_client *c, const struct smtp_client_ready *r,
                                     void *ctx);

struct smtp_client_tx {
    const char *mail_from;    /* the reverse path without brackets; "" for <> */
    const char *const *rcpts; /* forward paths without brackets */
    int rcpt_count;
    const char *data; /* the message, CRLF line ends; dot-stuffed by the client */
    size_t len;
    bool eightbit; /* the message has 8-bit bytes: BODY=8BITMIME when offered */
};

/* A transaction's outcome. rcpt[i] is each recipient's RCPT reply; when the transaction
 * reached the final reply, final is it and applies to every recipient accepted at RCPT.
 * stage tells how far it got; final_sent: the whole message, terminating dot included,
 * had left the client's buffers for the kernel (a cut after it may have delivered; before
 * it, the server cannot have taken the message). After a connection failure (reusable
 * false) the callee must free c. A reply out of protocol (a 2xx/3xx other than 354 to
 * DATA, a reply before the dot was sent) is a local failure, code 0, not reusable.
 * A recipient whose RCPT reply never came holds what ended the transaction before it:
 * the MAIL refusal (stage MAIL), a 421, or the local failure (code 0). Replies not
 * reached (mail, data, final) have code 0 and text "". The result and its rcpt array are
 * valid during the callback, even if it calls smtp_client_send or smtp_client_free. */
struct smtp_client_result {
    enum smtp_client_stage stage;
    struct smtp_client_reply mail;
    struct smtp_client_reply *rcpt; /* rcpt_count entries, owned by the client until return */
    int rcpt_count;
    struct smtp_client_reply data; /* the 354 or the refusal */
    struct smtp_client_reply final;
    bool final_sent;
    bool reusable; /* the connection can take another transaction */
};
typedef void (*smtp_client_tx_fn)(struct smtp_client *c, const struct smtp_client_result *r,
                                  void *ctx);

/* Connects to addr and runs greeting, EHLO (HELO when refused), STARTTLS as cfg says, and
 * AUTH when configured; then calls ready. cfg's strings are copied. */
struct smtp_client *smtp_client_connect(struct event_base *base, const struct sockaddr *addr,
                                        int addrlen, const struct smtp_client_config *cfg,
                                        smtp_client_ready_fn ready, void *ctx);
/* Runs one transaction (RSET first when the previous one failed part-way); tx's memory
 * must stay valid until done is called. A message over the server's SIZE fails at once
 * with a local 552 5.3.4 at stage MAIL (reusable); so does, with 554 5.5.4 (permanent:
 * resending cannot help), a transaction with no recipient or an address holding a
 * control byte or a bracket. One transaction at a time, after ready said ok or from/after
 * the previous done (else it aborts); on a client that failed (including while idle, by
 * a close or an unexpected reply), done reports code 0 at stage MAIL, reusable false. */
void smtp_client_send(struct smtp_client *c, const struct smtp_client_tx *tx,
                      smtp_client_tx_fn done, void *ctx);
/* Polite end: QUIT, then frees itself; no callback runs after this call. */
void smtp_client_quit(struct smtp_client *c);
/* Abrupt end: closes and frees now; no callback runs after this call. */
void smtp_client_free(struct smtp_client *c);
/* Client TLS context (TLS 1.2+, system CA store for verification). NULL on error. */
SSL_CTX *smtp_client_tls_ctx(char *err, size_t errlen);

#endif
