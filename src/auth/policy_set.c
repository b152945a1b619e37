/* A user's policies compiled together, as the Query API's cache and SMTP AUTH load them:
 * all or nothing, since leaving out one that does not compile could drop a Deny. */
#include "auth/auth.h"
#include "core/core.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void auth_policy_set_add(struct auth_policy_set *set, const char *doc, const char *what)
{
    char err[256];
    if (set->failed)
        return;
    struct auth_policy *compiled = auth_policy_parse(doc, strlen(doc), err, sizeof err);
    if (compiled && set->count == set->cap) {
        int cap = set->cap ? 2 * set->cap : 8;
        struct auth_policy **grown = realloc(set->items, (size_t)cap * sizeof *grown);
        if (grown)
            set->items = grown, set->cap = cap;
    }
    if (!compiled || set->count == set->cap) {
        log_error("%s cannot be used: %s", what, compiled ? "no memory" : err);
        auth_policy_free(compiled);
        set->failed = true;
        return;
    }
    set->items[set->count++] = compiled;
}

static void policy_compile(const struct store_policy *p, void *arg)
{
    char what[512];
    snprintf(what, sizeof what, "policy %s of user %s (account %s)", p->name, p->user,
             p->account_id);
    auth_policy_set_add(arg, p->document, what);
}

int auth_policy_set_load(struct store_conn *c, const char *account_id, const char *user,
                         struct auth_policy_set *set)
{
    int rc = store_policy_list(c, account_id, user, policy_compile, set);
    return rc == STORE_OK && !set->failed ? STORE_OK : STORE_ERROR;
}

void auth_policy_set_free(struct auth_policy_set *set)
{
    for (int i = 0; i < set->count; i++)
        auth_policy_free(set->items[i]);
    free(set->items);
    memset(set, 0, sizeof *set);
}
