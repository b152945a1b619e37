/* api: the SES Query API over HTTP(S): request parsing, authentication, the actions, and
 * the XML replies. One api_thread per I/O thread; they share an api_shared. */
#ifndef SESAME_API_H
#define SESAME_API_H

#include "core/core.h"
#include "store/store.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct api_shared;
struct api_thread;

/* ---- Query parameters (form encoding, used by the HTTP layer and the fuzzers) ---- */
struct query_param {
    char *name;
    char *value;
    size_t value_len;
};

struct query_params {
    struct query_param *items;
    size_t count, cap;
};

enum query_error {
    QUERY_OK = 0,
    QUERY_MALFORMED, /* bad percent-encoding or an empty name: MalformedQueryString */
    QUERY_DUPLICATE, /* a parameter given twice: InvalidQueryParameter */
    QUERY_NOT_UTF8,  /* a value that is not UTF-8: InvalidParameterValue */
    QUERY_TOO_MANY,  /* more parameters than query_max_params */
};

#define QUERY_MAX_PARAMS 4096

void query_params_init(struct query_params *q);
void query_params_free(struct query_params *q);
/* Adds the name=value pairs of an application/x-www-form-urlencoded string. On error,
 * bad_name receives the offending parameter's name (truncated). */
enum query_error query_parse(struct query_params *q, const char *data, size_t len, char *bad_name,
                             size_t bad_len);
const char *query_get(const struct query_params *q, const char *name);
/* Collects prefix.member.N (and the prose form prefix.N) ordered by N; gaps are allowed.
 * Returns the number of values written to out (at most max); -1 when more than max. */
int query_list(const struct query_params *q, const char *prefix, const char **out, int max);

/* ---- the server ---- */
/* failures: failed authentications per source address, shared with the other interfaces
 * (it must outlive the api; NULL: no limit). */
struct auth_failures;
struct send_shared;
/* send: the accept pipeline shared with SMTP (one quota and rate per account). */
struct api_shared *api_shared_new(const struct sesame_config *cfg, struct store *store,
                                  struct send_shared *send, struct auth_failures *failures);
void api_shared_free(struct api_shared *sh);
/* The feedback module that publishes to topics and serves the signing certificate
 * (DECISIONS 28). Call before any api_thread starts; fb must outlive the api. */
struct feedback;
void api_shared_use_feedback(struct api_shared *sh, struct feedback *fb);

/* Serves the Query API on this thread's base: plain HTTP on http_fd and HTTPS on https_fd
 * (either may be -1). tls is the server context for https_fd. */
struct api_thread *api_thread_new(struct api_shared *sh, struct event_base *base, SSL_CTX *tls,
                                  int http_fd, int https_fd);
void api_thread_free(struct api_thread *t);
/* Stops accepting connections; requests already received are still answered. Call on
 * the thread's own loop. */
void api_thread_stop_accepting(struct api_thread *t);

/* ---- verification links ---- */
/* The verification link for an email identity's token. */
void api_verify_link(const struct sesame_config *cfg, const char *token, char *out, size_t outlen);

#endif
