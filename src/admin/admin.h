/* admin: the `sesame` command's verbs (init, account, key, user, policy, identity), and
 * the admin HTTP API that sesamed serves on admin.listen. */
#ifndef SESAME_ADMIN_H
#define SESAME_ADMIN_H

#include "core/core.h"
#include "store/store.h"

struct event_base;
struct admin_http;

int admin_main(int argc, char **argv);

/* Serves the admin HTTP API on this thread's base from the listening socket fd (one per
 * I/O thread, SO_REUSEPORT). cfg and store must outlive it. NULL on failure. */
struct auth_failures;
/* failures: wrong tokens are counted per source address with the other interfaces'
 * failed authentications (it must outlive the admin API). */
struct admin_http *admin_http_new(const struct sesame_config *cfg, struct store *store,
                                  struct auth_failures *failures, struct event_base *base, int fd);
/* Stops accepting connections; requests already received are still answered. Call on
 * the thread's own loop. */
void admin_http_stop_accepting(struct admin_http *h);
void admin_http_free(struct admin_http *h);

#endif
