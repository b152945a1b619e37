/* core: logging, time, ids, growable buffers, encodings and the configuration snapshot.
 * Every other module may include this header; it includes no other module. */
#ifndef SESAME_CORE_H
#define SESAME_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- logging (stderr, one line per event; systemd and containers collect it) ---- */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* ---- time ---- */
int64_t core_now_ms(void);       /* wall clock, milliseconds since the epoch */
int64_t core_monotonic_us(void); /* for rate limiting and timing */
/* ISO 8601 UTC with seconds, e.g. 2011-08-03T19:23:00Z (out: at least 21 bytes). */
void core_iso8601(int64_t ms, char *out, size_t outlen);
/* Parses a duration: plain seconds or a number with s, m, h or d. -1 when invalid. */
int64_t core_parse_duration(const char *text);

/* ---- random ids ---- */
int core_random_bytes(void *out, size_t len); /* 0 on success */
void core_uuid4(char out[37]);
/* A MessageId as SES makes them: %016x(ms)-<uuid>-000000 (DECISIONS 5). out: 64 bytes. */
void core_message_id(int64_t ms, char *out, size_t outlen);

/* ---- growable byte buffer ---- */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};
void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *buf_cstr(struct buf *b); /* NUL-terminated view of the contents */
/* Appends s (UTF-8; NULL writes null) as a quoted JSON string. */
void buf_json_string(struct buf *b, const char *s);

/* ---- encodings ---- */
size_t core_base64_encode(const unsigned char *in, size_t len,
                          char *out); /* out: 4*ceil(len/3)+1 */
/* Strict RFC 4648 decoding (padding required, no whitespace). -1 when invalid. */
long core_base64_decode(const char *in, size_t len, unsigned char *out);
void core_hex_encode(const unsigned char *in, size_t len, char *out); /* lowercase, out: 2*len+1 */
int core_hex_value(int c); /* -1 when c is not a hex digit */
/* len bytes from 2*len hex digits (either case); false on a non-digit. */
bool core_hex_decode(const char *in, size_t len, unsigned char *out);
bool core_utf8_valid(const char *s, size_t len);
/* Case-insensitive ASCII comparison for protocol tokens. */
int core_strcasecmp(const char *a, const char *b);
/* Copies at most outlen-1 bytes and terminates; returns false if it had to truncate. */
bool core_strlcpy(char *out, const char *in, size_t outlen);
/* FNV-1a over a string, continuing from h (start with CORE_HASH_SEED), for hash tables;
 * the _lower form folds ASCII case, for names compared case-insensitively. */
#define CORE_HASH_SEED 2166136261u
unsigned core_hash(unsigned h, const char *s);
unsigned core_hash_lower(unsigned h, const char *s);

/* ---- the CPU pool: heavy work (DKIM signing, key generation) off the I/O threads ---- */
struct event_base;
struct core_pool;
typedef void (*core_pool_fn)(void *ctx);
/* threads <= 0: one per core. NULL on failure. */
struct core_pool *core_pool_new(int threads, const char *name);
/* work runs on a pool thread, then done on base's thread (base must have libevent's
 * pthreads locking, as sesamed's do); base NULL: done runs on the pool thread too. */
void core_pool_run(struct core_pool *p, struct event_base *base, core_pool_fn work,
                   core_pool_fn done, void *ctx);
/* Runs every job already queued (their done callbacks are posted) and joins the threads;
 * jobs submitted after that run at once on the caller's thread, so a late caller is
 * still answered. */
void core_pool_stop(struct core_pool *p);
/* Stops it if needed and frees it: once no thread can call core_pool_run any more. */
void core_pool_free(struct core_pool *p);
int core_pool_threads(const struct core_pool *p);

/* ---- configuration (one INI file; every key in etc/sesame.conf.example) ---- */
#define CONFIG_MAX_REGIONS 16
#define CONFIG_REGION_LEN 32
#define CONFIG_ADDR_LEN 128
#define CONFIG_LISTEN_LEN 512
#define CONFIG_PATH_LEN 512

struct sesame_config {
    /* [server] */
    int threads; /* 0: one per core */
    char hostname[256];
    char log_level[16];
    /* [regions] */
    int region_count;
    char regions[CONFIG_MAX_REGIONS][CONFIG_REGION_LEN]; /* the first is the default */
    /* [api] */
    char api_http_listen[CONFIG_ADDR_LEN];  /* empty: no plain-HTTP listener */
    char api_https_listen[CONFIG_ADDR_LEN]; /* empty: no HTTPS listener */
    int64_t api_max_body_bytes;
    double api_non_send_rate; /* requests per second per account; 0: off */
    int api_non_send_burst;
    int api_max_identities;
    int64_t api_signature_skew_s;
    int64_t api_idle_timeout_s;
    int64_t api_cache_ttl_s; /* how long a thread reuses keys, accounts and limits it read */
    /* [auth]: failed authentications allowed per source address and window (0: no limit) */
    int auth_failure_limit;
    int64_t auth_failure_window_s;
    /* [admin] */
    char admin_listen[CONFIG_ADDR_LEN];
    char admin_token[128];
    /* [tls] */
    char tls_cert[CONFIG_PATH_LEN];
    char tls_key[CONFIG_PATH_LEN];
    /* [smtp] and [feedback]: listeners reserved for the SMTP and feedback issues */
    char smtp_starttls_listen[CONFIG_LISTEN_LEN]; /* comma-separated host:port list */
    char smtp_tls_listen[CONFIG_LISTEN_LEN];
    int64_t smtp_command_timeout_s; /* waiting for a command (RFC 5321: 5 minutes) */
    int64_t smtp_data_timeout_s;    /* between two reads of DATA (RFC 5321: 10 minutes) */
    int64_t smtp_max_connection_age_s;
    int smtp_max_messages;                 /* per connection, then 421 */
    int smtp_max_connections;              /* per I/O thread; past it new connections get 421 */
    int smtp_max_auth_failures;            /* per connection, then 421 */
    char feedback_listen[CONFIG_ADDR_LEN]; /* the bounce domain's SMTP listener */
    char feedback_forward_from[256]; /* From of forwarded feedback; empty: MAILER-DAEMON@hostname */
    int64_t feedback_max_message_bytes; /* larger reports are refused (552) */
    char feedback_accept_local[256];    /* local parts at the bounce domain taken besides VERP */
    /* [notifications]: SNS-compatible topics (DECISIONS 28) */
    char notify_signing_key[CONFIG_PATH_LEN];  /* empty: store path + ".sns.key" */
    char notify_signing_cert[CONFIG_PATH_LEN]; /* empty: store path + ".sns.crt" */
    int notify_signature_version;              /* 1 (SHA1withRSA) or 2 (SHA256withRSA) */
    int notify_max_attempts;                   /* per HTTP(S) delivery, then failed */
    int notify_failed_kept;                    /* failed deliveries kept, the newest */
    int notify_confirmation_emails;            /* per account in 3 days (Subscribe) */
    int64_t notify_retry_initial_s;            /* doubling up to retry_max */
    int64_t notify_retry_max_s;
    int64_t notify_timeout_s;  /* one POST, connect to answer */
    int notify_concurrency;    /* POSTs in flight */
    bool notify_tls_verify;    /* check HTTPS endpoints' certificates */
    bool notify_allow_private; /* endpoints on loopback and private addresses (development) */
    char notify_ca_file[CONFIG_PATH_LEN]; /* extra trusted CAs (PEM); empty: the system's */
    /* [store] */
    char store_backend[16];
    char store_path[CONFIG_PATH_LEN];
    char store_secret_key_file[CONFIG_PATH_LEN]; /* empty: store_path + ".key" */
    bool store_fsync;
    int store_batch_max;
    /* [accounts]: limits given to new accounts and to accounts moved out of the sandbox */
    double sandbox_max_24h;
    double sandbox_max_rate;
    double production_max_24h;
    double production_max_rate;
    /* [verification] */
    bool auto_verify;
    char dns_prefix[64];
    int64_t verify_poll_interval_s;
    int64_t verify_failure_window_s;
    int64_t verify_revocation_window_s;
    int64_t email_link_ttl_s;
    char link_base_url[256];       /* empty: derived from the HTTPS (else HTTP) listener */
    char verification_sender[256]; /* From of verification emails; empty: no-reply@hostname */
    /* [dkim] (spec 20 §2, DECISIONS 27) */
    char dkim_host_zone[256]; /* CNAME targets <token>.<zone>; empty: dkim.<server.hostname> */
    int dkim_key_bits;        /* RSA key size of new token sets */
    bool dkim_ed25519;        /* new sets: the second key is Ed25519, a second signature */
    char dkim_operator_domain[256];   /* every message also signed with d= this; empty: off */
    char dkim_operator_selector[64];  /* its selector */
    int64_t dkim_failure_window_s;    /* Pending this long: Failed */
    int64_t dkim_revocation_window_s; /* a Success set's records missing this long: revoked */
    int dkim_threads;                 /* the signing pool; 0: one per core */
    /* [dns] */
    char dns_resolver[CONFIG_ADDR_LEN]; /* host:port; empty: the system resolver */
    int64_t dns_timeout_ms;
    /* [delivery] */
    char delivery_mode[16];
    char delivery_relay[CONFIG_ADDR_LEN];
    int mx_port;
    bool allow_loopback_mx;
    char delivery_relay_tls[16]; /* none, opportunistic, required, implicit */
    char delivery_relay_username[128];
    char delivery_relay_password[256];
    bool delivery_relay_tls_verify; /* check the relay's certificate and name */
    char delivery_tls[16];          /* MX delivery: none, opportunistic, required */
    char delivery_tls_policy[512];  /* per destination: "domain=policy, ..." */
    char bounce_domain[256];        /* VERP envelope senders; empty: server.hostname */
    int64_t delivery_max_age_s;     /* then a Transient bounce (DECISIONS 32) */
    int64_t delivery_retry_initial_s;
    int64_t delivery_retry_max_s;
    double delivery_retry_factor;
    int delivery_max_connections; /* per destination */
    double delivery_max_rate;     /* messages per second per destination; 0: no limit */
    int delivery_max_recipients;  /* per transaction (RFC 5321 asks servers for 100) */
    int64_t delivery_connect_timeout_s;
    int64_t delivery_command_timeout_s;
    int64_t delivery_data_timeout_s;
    int64_t delivery_final_timeout_s;
    int64_t delivery_idle_timeout_s; /* an unused connection is kept this long for reuse */
    int64_t suppression_ttl_s;
    int64_t delivery_memory_bytes; /* message bytes kept in memory for waiting recipients */
    /* [limits] */
    int64_t max_message_bytes;
    int max_recipients;
    char message_id_domain[256];
};

void config_defaults(struct sesame_config *cfg);
/* Loads and validates path over the defaults. On error returns -1 and writes a message
 * naming the file, line and key into err. */
int config_load(const char *path, struct sesame_config *cfg, char *err, size_t errlen);
bool config_has_region(const struct sesame_config *cfg, const char *region);
/* Where clients reach sesamed's HTTP side (verification links, SNS URLs), without a
 * trailing slash: verification.link_base_url, else the HTTPS (else HTTP) listener. */
void config_public_url(const struct sesame_config *cfg, char *out, size_t outlen);
/* Splits "host:port" or "[v6]:port"; false when malformed. */
bool config_split_addr(const char *addr, char *host, size_t hostlen, int *port);

#endif
