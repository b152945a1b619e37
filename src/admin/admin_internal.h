/* Private to the admin module: the parsed command line and the shared helpers. */
#ifndef SESAME_ADMIN_INTERNAL_H
#define SESAME_ADMIN_INTERNAL_H

#include "core/core.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdio.h>

#define ADMIN_OK 0
#define ADMIN_FAILED 1
#define ADMIN_USAGE 2
#define ADMIN_MAX_ARGS 16
#define ADMIN_MAX_REPEAT 16

/* Options of one invocation: `--name value` pairs, flags and positional arguments. */
struct admin_opts {
    const char *positional[ADMIN_MAX_ARGS];
    int positional_count;
    const char *names[64];
    const char *values[64]; /* NULL for a flag */
    int count;
};

struct admin_ctx {
    const char *config_path;
    struct sesame_config cfg;
    struct store *store;
    struct store_conn *conn;
    struct admin_opts opts;
};

/* A verb: its name, its usage text and the function that runs it. */
struct admin_verb {
    const char *name;
    const char *usage;
    const char *const *value_opts; /* options that take a value */
    const char *const *flag_opts;  /* options that stand alone */
    int (*run)(struct admin_ctx *ctx);
};

const char *admin_opt(const struct admin_ctx *ctx, const char *name);
bool admin_flag(const struct admin_ctx *ctx, const char *name);
/* Every value of a repeatable option, in order; returns the count. */
int admin_opt_all(const struct admin_ctx *ctx, const char *name, const char **out, int max);
int admin_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int admin_usage_error(const struct admin_verb *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Opens the instance's store (config from -c, $SESAME_CONFIG or ./var/sesame.conf). */
int admin_open(struct admin_ctx *ctx);
void admin_close(struct admin_ctx *ctx);
/* The account named by id, else by --account, else the first one. */
int admin_account(struct admin_ctx *ctx, const char *id, struct store_account *out);
/* --region, checked against the config; the default region without it. */
int admin_region(struct admin_ctx *ctx, const char **out);
/* Runs fn inside one transaction on the admin connection. */
int admin_write(struct admin_ctx *ctx, int (*fn)(struct admin_ctx *ctx, void *arg), void *arg);

/* Creates an account with one root key; prints nothing. Used by init and account create. */
int admin_account_create(struct store_conn *c, const struct sesame_config *cfg, const char *name,
                         const char *contact, bool production, struct store_account *acct,
                         struct store_key *key);
int admin_key_create_for(struct store_conn *c, const char *account_id, struct store_key *key);
void admin_key_print(const struct store_key *k, const struct sesame_config *cfg, bool secrets);

extern const struct admin_verb admin_init_verb;
extern const struct admin_verb admin_account_verbs[];
extern const struct admin_verb admin_key_verbs[];
extern const struct admin_verb admin_identity_verbs[];

#endif
