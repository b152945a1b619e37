/* Private to the smtp module: the protocol pieces the server and client sessions share. */
#ifndef SESAME_SMTP_INTERNAL_H
#define SESAME_SMTP_INTERNAL_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- protocol (parse.c, data.c, reply.c) ----
 * Pure protocol code: bytes in, parsed values or reply lines out; no I/O, no libevent.
 * Reply lines are given without their CRLF. */

/* Longest command line accepted, CRLF excluded (AUTH PLAIN initial responses can be long). */
#define SMTP_MAX_LINE 4096
#define SMTP_REPLY_MAX 512      /* room for any reply line written into a caller's buffer */
#define SMTP_ADDRESS_MAX 320    /* local@domain, RFC 5321 §4.5.3.1 (64 + 1 + 255) */
#define SMTP_AUTH_USER_MAX 128  /* decoded AUTH username, bytes */
#define SMTP_AUTH_PASS_MAX 256  /* decoded AUTH password, bytes */
#define SMTP_REPLY_LINE_MAX 512 /* longest server reply text a client keeps per line */
#define SMTP_REPLY_LINES_MAX 100

/* Fixed replies of the AUTH exchange (RFC 4954; LOGIN prompts are "Username:" and
 * "Password:" in base64). */
#define SMTP_REPLY_AUTH_CANCELLED "501 Authentication cancelled"
#define SMTP_REPLY_LOGIN_USERNAME "334 VXNlcm5hbWU6"
#define SMTP_REPLY_LOGIN_PASSWORD "334 UGFzc3dvcmQ6"

enum smtp_verb {
    SMTP_VERB_UNKNOWN,
    SMTP_VERB_HELO,
    SMTP_VERB_EHLO,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_VRFY,
    SMTP_VERB_EXPN,
    SMTP_VERB_HELP,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
    SMTP_VERB_BDAT
};

struct smtp_command {
    enum smtp_verb verb;
    const char *arg; /* after the verb and its separating space(s), trailing spaces dropped */
    size_t arg_len;  /* 0 when none */
};

/* line: one command without its CRLF. -1 when it is empty, longer than SMTP_MAX_LINE,
 * holds a NUL, or has a byte >= 0x80 in the verb; else 0, with SMTP_VERB_UNKNOWN for a
 * verb not in the list. Verbs are case-insensitive; "MAIL FROM:" / "RCPT TO:" keep their
 * colon part in arg. */
int smtp_command_parse(const char *line, size_t len, struct smtp_command *out);

struct smtp_path {
    char address[SMTP_ADDRESS_MAX + 1]; /* "" for the null reverse-path */
    bool null_path;                     /* MAIL FROM:<> */
    bool has_size;                      /* SIZE=n given (MAIL only) */
    uint64_t size;                      /* saturates at UINT64_MAX */
    bool body_8bit;                     /* BODY=8BITMIME (MAIL only) */
};

/* arg: the command's arg ("FROM:<a@b> SIZE=10", "TO:a@b"). Accepts <a@b>, a bare a@b,
 * spaces after the colon, a source route (<@x,@y:a@b>, route dropped) and, for MAIL
 * only, <> and the parameters SIZE=digits, BODY=7BIT|8BITMIME, AUTH=<anything>. True on
 * success; else false with the reply to send written into reply (SMTP_REPLY_MAX bytes
 * is enough), one of:
 *   501 Syntax: MAIL FROM:<address>     (or RCPT TO:<address>)
 *   501 Path too long                   (address over 320 bytes)
 *   553 Address must be ASCII (SMTPUTF8 is not supported)
 *   553 Invalid address: <a@b>          (fails mail_address_valid)
 *   501 Syntax error in parameter: P    (bad keyword, SIZE not digits, a duplicate, AUTH=)
 *   555 Unsupported parameter: P        (SMTPUTF8, BODY=BINARYMIME, unknown, any on RCPT)
 * Echoed text is cut short and anything but printable ASCII becomes '?'. */
bool smtp_mail_parse(const char *arg, size_t len, struct smtp_path *out, char *reply,
                     size_t replylen);
bool smtp_rcpt_parse(const char *arg, size_t len, struct smtp_path *out, char *reply,
                     size_t replylen);

/* AUTH (RFC 4954): PLAIN (RFC 4616) and LOGIN. */
enum smtp_auth_mechanism { SMTP_AUTH_PLAIN, SMTP_AUTH_LOGIN };
struct smtp_auth_start {
    enum smtp_auth_mechanism mechanism;
    bool has_initial;    /* an initial response followed the mechanism */
    const char *initial; /* base64, inside arg; "=" (empty) gives initial_len 0 */
    size_t initial_len;
};
/* arg: the AUTH command's arg ("PLAIN", "login dXNlcg=="). NULL on success, else the
 * reply: "501 Syntax: AUTH mechanism [initial-response]" or
 * "504 Unrecognized authentication type". */
const char *smtp_auth_parse(const char *arg, size_t len, struct smtp_auth_start *out);

struct smtp_credentials {
    char username[SMTP_AUTH_USER_MAX + 1];
    char password[SMTP_AUTH_PASS_MAX + 1];
};
/* Decoders of a client's response (strict base64, no whitespace). NULL on success, else
 * the reply:
 *   501 Cannot decode response                (not strict base64)
 *   501 Malformed authentication data         (PLAIN not authzid\0authcid\0password, a NUL
 *                                              inside a LOGIN username or password)
 *   535 Authentication Credentials Invalid    (empty or over-long username or password,
 *                                              a PLAIN authzid other than the authcid)
 * PLAIN fills both fields; LOGIN decodes one response into out (outlen bytes with the
 * NUL: pass creds.username or creds.password and its sizeof). */
const char *smtp_auth_plain_decode(const char *b64, size_t len, struct smtp_credentials *out);
const char *smtp_auth_login_decode(const char *b64, size_t len, char *out, size_t outlen);
/* True when a client's response line is "*": the exchange is cancelled and the server
 * answers SMTP_REPLY_AUTH_CANCELLED. */
bool smtp_auth_cancelled(const char *line, size_t len);

/* The DATA reader: fed the bytes after "354" in chunks of any size, as they arrive. */
enum smtp_data_status {
    SMTP_DATA_MORE,        /* every byte consumed, the end not seen yet */
    SMTP_DATA_DONE,        /* CRLF.CRLF seen */
    SMTP_DATA_BARE_LF_DOT, /* a dot line with a bare LF before or after it (DECISIONS 23) */
};
struct smtp_data {
    struct buf message; /* the unstuffed message, line endings as received */
    size_t limit;       /* bytes of message kept */
    size_t total;       /* bytes of the unstuffed message, kept or not */
    bool too_big;       /* total went past limit */
    int state;          /* private to data.c: where the reader is in a line */
};
/* d: uninitialised or freed by smtp_data_free. limit: bytes of the unstuffed message kept. */
void smtp_data_start(struct smtp_data *d, size_t limit);
/* Consumes bytes up to and including the end of data and returns the count consumed;
 * *status says whether the terminator was seen. On DONE, message holds the message
 * without the final ".\r\n", dot-stuffing undone (a dot starting a line after CRLF is
 * dropped) and its line endings exactly as received; bytes after the terminator are left
 * unconsumed (pipelined commands). On BARE_LF_DOT the count ends at the offending LF.
 * After DONE or BARE_LF_DOT, further feeds consume nothing and repeat the status. Past
 * the limit, bytes are counted in total but not kept, and too_big is set. O(n). */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
                      enum smtp_data_status *status);
void smtp_data_free(struct smtp_data *d); /* leaves d ready for smtp_data_start */

/* A server's reply, read line by line by an SMTP client. */
struct smtp_reply {
    int code;
    struct buf text; /* the lines' texts joined with "\n" */
    bool done;
    int lines;
};
void smtp_reply_init(struct smtp_reply *r);
/* Feeds one line (without CRLF) of a server reply. Returns 1 when the reply is complete
 * (a line "ddd text" or "ddd"), 0 when more lines follow ("ddd-text"), -1 on a malformed
 * line (not 3 digits 2xx-5xx, a code differing from the first line's, a bad separator, a
 * NUL, over SMTP_REPLY_LINE_MAX bytes), more than SMTP_REPLY_LINES_MAX lines, or a line
 * fed after the reply was complete (reset first). */
int smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len);
void smtp_reply_reset(struct smtp_reply *r); /* ready for the next reply, keeps memory */
void smtp_reply_free(struct smtp_reply *r);

/* ---- server (server.c, session.c, session_cmd.c, session_auth.c, session_tx.c) ----
 * The submission server: a session per connection (OpenSMTPD's split: the connection in
 * struct smtp_session with an explicit state, the mail transaction in struct smtp_tx). */

struct bufferevent;
struct evbuffer_cb_entry;
struct event;
struct event_base;
struct evconnlistener;
struct send_shared;
struct send_identity_cache;
struct auth_failures;

#include "smtp/smtp.h"
#include "store/store.h"

#include <openssl/ssl.h>
#include <stdatomic.h>

#define SMTP_OUTPUT_MAX (64 * 1024) /* replies a client has not read before we stop reading */
#define SMTP_AUTH_DELAY_MS 250      /* a failed AUTH's reply waits this much per failure */
#define SMTP_AUTH_DELAY_MAX_MS 2000 /* ... up to this: a slow reply also holds a connection */
#define SMTP_PEER_MAX 64
/* DATA bytes all sessions of a thread may hold at once: many clients sending large
 * messages slowly must not exhaust memory. Past it a message is refused with 452. */
#define SMTP_DATA_BUDGET ((size_t)256 * 1024 * 1024)

struct smtp_shared {
    struct sesame_config cfg;
    struct store *store;
    struct send_shared *send;
    struct auth_failures *failures;
    SSL_CTX *tls;
};

struct smtp_listener {
    struct smtp_thread *t;
    struct evconnlistener *lev;
    struct event *retry; /* re-enables accepting after an accept error (out of fds) */
    bool implicit_tls;
};

struct smtp_session;

struct smtp_thread {
    struct smtp_shared *sh;
    struct event_base *base;
    /* The feedback listener's thread (smtp_feedback_thread_new): its sessions take mail
     * for the bounce domain through hooks, without AUTH, the store or the pipeline. */
    bool feedback;
    struct smtp_feedback_hooks hooks;
    struct store_conn *conn; /* submission: keys, accounts, limits, identities */
    struct send_identity_cache *identities;
    struct smtp_listener *listeners;
    int listener_count;
    struct smtp_session *sessions; /* every open session, doubly linked */
    atomic_int active;             /* read by the main thread while draining */
    size_t data_bytes;             /* DATA bytes kept by its sessions (SMTP_DATA_BUDGET) */
    bool draining;
};

enum smtp_state {
    SMTP_STATE_HANDSHAKE,     /* TLS handshake: implicit TLS, or after STARTTLS */
    SMTP_STATE_COMMAND,       /* waiting for a command */
    SMTP_STATE_AUTH_PLAIN,    /* waiting for the AUTH PLAIN response */
    SMTP_STATE_AUTH_USERNAME, /* AUTH LOGIN, waiting for the username */
    SMTP_STATE_AUTH_PASSWORD, /* AUTH LOGIN, waiting for the password */
    SMTP_STATE_AUTH_DELAY,    /* a failed AUTH's reply is held back; not reading */
    SMTP_STATE_DATA,          /* receiving the message */
    SMTP_STATE_COMMIT,        /* the message is with the pipeline; not reading */
    SMTP_STATE_CLOSING,       /* the last reply is being flushed */
};

/* The mail transaction, from MAIL to the reply to its data. */
struct smtp_tx {
    char mail_from[SMTP_ADDRESS_MAX + 1];
    bool null_path;
    char (*rcpts)[SMTP_ADDRESS_MAX + 1];
    int rcpt_count, rcpt_cap;
    struct smtp_data data;              /* grows only during DATA */
    struct store_account account;       /* read again at each MAIL */
    struct store_account_region limits; /* the session's region's */
    const char **rcpt_list;             /* feedback: rcpts as the hook takes them */
};

struct smtp_session {
    struct smtp_thread *t;
    struct smtp_session *prev, *next;
    struct bufferevent *bev; /* NULL once the client is gone while a commit is pending */
    struct event *timer;     /* handshake deadline, AUTH delay, unblocking, the final flush */
    struct evbuffer_cb_entry *drained; /* on a STARTTLS filter's underlying output */
    enum smtp_state state;
    bool starttls_listener; /* plaintext first; STARTTLS advertised until TLS is on */
    bool tls;
    bool helo;
    bool in_read;        /* inside the input loop: callbacks must not re-enter it */
    bool output_blocked; /* stopped reading until the client reads its replies */
    bool gone;           /* the client vanished during a commit: free when it ends */
    bool shutdown_sent;  /* TLS close_notify written */
    int timeout_s;       /* the read timeout currently set */
    int auth_failures;
    int messages;
    int64_t started_us;
    int64_t closing_us;
    char peer[SMTP_PEER_MAX];
    /* after AUTH */
    bool authenticated;
    char key_id[32];
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    struct smtp_credentials *creds; /* during an AUTH exchange only */
    const char *held_reply;         /* what the AUTH delay holds back */
    bool close_after_held;
    struct smtp_tx *tx;
};

/* session.c: the connection */
void smtp_session_accept(struct smtp_thread *t, int fd, const char *peer, bool implicit_tls);
/* On a feedback session, which offers ENHANCEDSTATUSCODES, a 2xx/4xx/5xx reply without an
 * enhanced status code is given one by its code (RFC 2034 §3). */
void smtp_session_reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* As written, never with an enhanced code: the greeting and EHLO/HELO (RFC 2034 §3). */
void smtp_session_reply_plain(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Replies, then closes once the reply has left. */
void smtp_session_close_with(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtp_session_free(struct smtp_session *s);
/* Back to waiting for commands: timeouts set, reading on, buffered input processed. */
void smtp_session_resume(struct smtp_session *s);
/* Closing after the current transaction: draining, max_messages, max_connection_age.
 * True when the session was told 421. */
bool smtp_session_close_if_due(struct smtp_session *s);
void smtp_session_drain(struct smtp_session *s); /* SIGTERM: see smtp_thread_stop_accepting */
void smtp_session_abort(struct smtp_session *s); /* close now (a commit finishes alone) */
void smtp_session_starttls(struct smtp_session *s);
void smtp_session_set_timer(struct smtp_session *s, int64_t ms);

/* session_cmd.c: one command line in SMTP_STATE_COMMAND */
void smtp_session_command(struct smtp_session *s, const char *line, size_t len);
void smtp_session_greet(struct smtp_session *s);

/* session_auth.c: AUTH (RFC 4954) and the SMTP password check */
void smtp_auth_begin(struct smtp_session *s, const char *arg, size_t len);
void smtp_auth_response(struct smtp_session *s, const char *line, size_t len);
void smtp_auth_delay_over(struct smtp_session *s);
void smtp_auth_end(struct smtp_session *s); /* forgets the credentials */
/* At each MAIL: NULL when the key and its permission still hold, else the reply (a 535
 * drops the authentication). */
const char *smtp_auth_recheck(struct smtp_session *s);

/* session_tx.c: the transaction */
/* What a listener mode answers to the checks MAIL and RCPT share. */
struct smtp_tx_replies {
    const char *bad_sequence; /* MAIL within a transaction, RCPT outside one */
    const char *too_big;      /* MAIL's SIZE over the limit */
    const char *too_many;     /* a recipient over the limit */
};
/* MAIL's shared checks (no transaction yet, its syntax, SIZE within max_bytes): the path,
 * or false once the refusal is sent. */
bool smtp_tx_mail_path(struct smtp_session *s, const char *arg, size_t len, uint64_t max_bytes,
                       const struct smtp_tx_replies *r, struct smtp_path *path);
/* RCPT's (a transaction, its syntax, fewer than max recipients so far). */
bool smtp_tx_rcpt_path(struct smtp_session *s, const char *arg, size_t len, int max,
                       const struct smtp_tx_replies *r, struct smtp_path *path);
void smtp_tx_mail(struct smtp_session *s, const char *arg, size_t len);
void smtp_tx_rcpt(struct smtp_session *s, const char *arg, size_t len);
void smtp_tx_rcpt_add(struct smtp_tx *tx, const char *address); /* an accepted recipient */
void smtp_tx_data(struct smtp_session *s, const char *arg, size_t len);
/* Enters DATA (after the checks of the DATA command), keeping at most limit bytes. */
void smtp_tx_data_begin(struct smtp_session *s, size_t limit);
/* Feeds buffered DATA bytes; false when it must wait (more bytes, the commit, closing). */
bool smtp_tx_feed(struct smtp_session *s);
/* The transaction is over: reply (NULL: already sent), then back to commands (or 421). */
void smtp_tx_end(struct smtp_session *s, const char *reply);
void smtp_tx_free(struct smtp_session *s);

/* session_feedback.c: the feedback listener's commands and its hand-over to the hooks */
#define SMTP_FEEDBACK_MAX_RCPTS 100 /* RFC 5321 §4.5.3.1.8 */
/* The commands a feedback session answers its own way (AUTH, MAIL, RCPT, DATA); false
 * for the others, answered as on submission (EHLO lists the feedback extensions). */
bool smtp_feedback_command(struct smtp_session *s, const struct smtp_command *c);
/* The end of data was read: refuse it, or hand it to the hooks (SMTP_STATE_COMMIT). */
void smtp_feedback_commit(struct smtp_session *s);

/* ---- client (proto.c, client.c, client_io.c, client_session.c, client_tx.c) ----
 * Delivery's side of SMTP (the public API is in smtp.h). proto.c is pure protocol code
 * like parse.c; the client files are its life, deadlines and failures (client.c), the
 * bytes on the wire (client_io.c), the steps before the first transaction
 * (client_session.c) and the transaction (client_tx.c). */

#include "smtp/smtp.h"

/* A reply line longer than SMTP_REPLY_LINE_MAX keeps its code and the start of its text;
 * one longer than this fails the connection (no server writes such lines; a peer that
 * does is not speaking SMTP, and the line must be held whole to find its end). */
#define SMTP_CLIENT_LINE_HARD_MAX 4096

/* What a server's EHLO reply offers (RFC 5321 §4.1.1.1; the first line is its name). */
struct smtp_ehlo_caps {
    bool pipelining;             /* RFC 2920 */
    bool eightbitmime;           /* RFC 6152 */
    bool starttls;               /* RFC 3207 */
    bool enhancedstatuscodes;    /* RFC 2034; informative only, see smtp_enhanced_parse */
    bool size;                   /* RFC 1870 */
    int64_t max_size;            /* SIZE's argument; 0 when absent or unreadable */
    bool auth_plain, auth_login; /* RFC 4954, "AUTH" or the old "AUTH=" form */
};
/* text: the reply's text as struct smtp_reply joins it (lines separated by "\n"). Unknown
 * keywords are ignored; keywords are case-insensitive. */
void smtp_ehlo_parse(const char *text, size_t len, struct smtp_ehlo_caps *out);

/* An enhanced status code (RFC 3463: class 2/4/5 "." subject of 1-3 digits "." detail of
 * 1-3 digits, then the end, a space or a newline) at the start of text, copied into out
 * (16 bytes are enough). code: the reply's code, whose first digit the class must match
 * (RFC 2034 §4), or 0 for any class. False (out "") when there is none. */
bool smtp_enhanced_parse(int code, const char *text, size_t len, char *out, size_t outlen);

/* The message as it goes on the wire after DATA (RFC 5321 §4.5.2): every line ending made
 * CRLF, a line starting with "." given one more, CRLF added after an unterminated last
 * line, and ".\r\n" at the end. Bare LF and bare CR both become CRLF: a receiver that
 * reads them as line ends could otherwise be made to see an early end of data (SMTP
 * smuggling). emit gets the pieces in order: stretches of data itself, and short static
 * strings; never an empty piece. */
typedef void (*smtp_stuff_fn)(const char *piece, size_t len, void *arg);
void smtp_data_stuff(const char *data, size_t len, smtp_stuff_fn emit, void *arg);
void smtp_data_stuff_buf(const char *data, size_t len, struct buf *out);
/* The message's size for SIZE (RFC 1870 §4): line endings counted as CRLF and a missing
 * last one added, without the stuffing dots and the final ".\r\n". The same scan as
 * smtp_data_stuff (memchr over line ends), without the output. *as_is (may be NULL) is
 * set when stuffing would change nothing: the data followed by ".\r\n" is what goes out. */
uint64_t smtp_data_size(const char *data, size_t len, bool *as_is);

enum smtp_client_state {
    SMTP_CLIENT_STATE_CONNECTING,    /* TCP connect (and the handshake with implicit TLS) */
    SMTP_CLIENT_STATE_TLS_HANDSHAKE, /* after STARTTLS's 220 */
    SMTP_CLIENT_STATE_GREETING,
    SMTP_CLIENT_STATE_EHLO,
    SMTP_CLIENT_STATE_HELO,
    SMTP_CLIENT_STATE_STARTTLS,
    SMTP_CLIENT_STATE_EHLO_AFTER_TLS,
    SMTP_CLIENT_STATE_AUTH,
    SMTP_CLIENT_STATE_READY, /* between transactions */
    SMTP_CLIENT_STATE_RSET,  /* before a transaction, after one that failed part-way */
    SMTP_CLIENT_STATE_MAIL,
    SMTP_CLIENT_STATE_RCPT,
    SMTP_CLIENT_STATE_DATA,
    SMTP_CLIENT_STATE_BODY, /* the data is going out; waiting for the final reply */
    SMTP_CLIENT_STATE_QUIT,
    SMTP_CLIENT_STATE_DEAD, /* failed; waiting for smtp_client_free */
};

/* What the deferred event does when it runs. */
enum smtp_client_pending {
    SMTP_CLIENT_PENDING_NONE,
    SMTP_CLIENT_PENDING_READY,  /* call ready with c->ready */
    SMTP_CLIENT_PENDING_RESULT, /* call done with c->result */
    SMTP_CLIENT_PENDING_FREE,   /* QUIT is over: free the client */
};

struct smtp_client {
    struct event_base *base;
    struct bufferevent *bev;            /* socket, implicit TLS, or a STARTTLS filter */
    struct evbuffer_cb_entry *progress; /* on the lowest output buffer, during BODY */
    struct event *timer;                /* the current state's deadline */
    struct event *deferred;             /* runs the caller's callbacks (pending) */
    enum smtp_client_state state;
    enum smtp_client_pending pending;
    struct smtp_reply reader;
    /* the config, strings copied */
    struct smtp_client_config cfg;
    char *helo_name, *server_name, *auth_user, *auth_pass;
    struct smtp_ehlo_caps caps;
    bool tls;
    int auth_step; /* AUTH LOGIN: 0 sent AUTH, 1 sent the username, 2 sent the password */
    struct smtp_client_reply greeting;
    smtp_client_ready_fn ready_fn;
    void *ready_ctx;
    struct smtp_client_ready ready;
    /* the transaction */
    const struct smtp_client_tx *tx;
    smtp_client_tx_fn done_fn;
    void *done_ctx;
    struct smtp_client_result result;      /* rcpt points into rcpt_buf[rcpt_cur] */
    struct smtp_client_reply *rcpt_buf[2]; /* used in turn, see smtp_client_send */
    int rcpt_cap[2];
    int rcpt_cur;
    uint64_t tx_size;  /* the message's size for SIZE (smtp_data_size) */
    bool tx_as_is;     /* and whether it goes out without stuffing */
    int rcpt_sent;     /* RCPT commands written */
    int rcpt_replied;  /* RCPT replies read */
    int rcpt_accepted; /* of them, 2xx */
    bool pipelined;    /* MAIL, RCPTs and DATA went out in one write */
    bool lone_dot;     /* 354 with no recipient accepted: the dot's reply is ignored */
    bool need_rset;    /* the last transaction ended part-way */
    bool got_421;      /* the server is closing the connection */
    struct smtp_client_reply broken_reply; /* why the client is DEAD */
};

/* client.c: life, deadlines, failures */
/* Enters state and arms its deadline (the cfg timeout that goes with the state). */
void smtp_client_expect(struct smtp_client *c, enum smtp_client_state state);
/* The stage a failure in the current state is reported at. */
enum smtp_client_stage smtp_client_stage_of(const struct smtp_client *c);
/* For local failures' texts: "timeout waiting for <this>". */
const char *smtp_client_waiting_for(struct smtp_client *c);
/* Ends the connection's use: a local failure (code 0, text) or a refusing reply at the
 * current state's stage. Reports to ready or done as the state says; idle, nobody is told
 * now: a ready or done callback still pending reports the client unusable, and the next
 * smtp_client_send fails at once (code 0). */
void smtp_client_fail(struct smtp_client *c, const struct smtp_client_reply *r);
void smtp_client_fail_at(struct smtp_client *c, enum smtp_client_stage stage,
                         const struct smtp_client_reply *r);
void smtp_client_fail_local(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Stops all I/O for good (DEAD); r (kept as broken_reply) is quoted by a later
 * smtp_client_send. */
void smtp_client_stop(struct smtp_client *c, const struct smtp_client_reply *r);
void smtp_client_post(struct smtp_client *c, enum smtp_client_pending what);
/* QUIT's reply, the close, or its deadline: the client frees itself (deferred). */
void smtp_client_quit_over(struct smtp_client *c);
/* A reply made here (local failures, the local 552), enhanced code filled from text. */
void smtp_client_reply_set(struct smtp_client_reply *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* client_io.c: the bytes on the wire */
void smtp_client_bev_open(struct smtp_client *c); /* the socket (or implicit TLS) bufferevent */
void smtp_client_write(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtp_client_starttls(struct smtp_client *c); /* after STARTTLS's 220 */
/* BODY: watch the lowest output buffer drain, re-arming the deadline at each step. */
void smtp_client_watch_output(struct smtp_client *c, bool on);
/* Drops unsent output (it may point into the caller's message) and stops writing. */
void smtp_client_output_discard(struct smtp_client *c);
/* Bytes written but not yet taken by the kernel, a STARTTLS filter's included. */
size_t smtp_client_unsent(struct smtp_client *c);

/* client_session.c: greeting, EHLO/HELO, STARTTLS, AUTH */
void smtp_client_session_start(struct smtp_client *c); /* connected: wait for the 220 */
void smtp_client_session_tls_done(struct smtp_client *c);
/* A complete reply in a state before READY. */
void smtp_client_session_reply(struct smtp_client *c, const struct smtp_client_reply *r);

/* client_tx.c: one transaction */
void smtp_client_tx_start(struct smtp_client *c); /* c->tx set; RSET first when needed */
void smtp_client_tx_reply(struct smtp_client *c, const struct smtp_client_reply *r);
/* Fills what the transaction did not reach with ending (NULL: nothing to fill) and
 * reports it; the connection stays usable only after a clean end. */
void smtp_client_tx_finish(struct smtp_client *c, enum smtp_client_stage stage,
                           const struct smtp_client_reply *ending);
/* BODY: final_sent once the terminating dot has left our output buffers (the kernel has
 * it). Checked when it matters: at the reply and before a failure discards the output. */
void smtp_client_tx_note_sent(struct smtp_client *c);
/* A local failure or a 421 at stage: recorded where the stage says, then finished. */
void smtp_client_tx_fail(struct smtp_client *c, enum smtp_client_stage stage,
                         const struct smtp_client_reply *r);

#endif
