/* delivery: the outbound side (DESIGN.md, "Schedule and deliver"). Accepted recipients
 * wait in per-destination queues; a scheduler thread resolves MX hosts, talks SMTP to
 * them (or to the relay), retries with backoff up to delivery.max_age, and turns every
 * outcome into an event in the store: Delivery, or Bounce with SES's type and subtype.
 * Hard bounces put the address on the region's suppression list; mail to a listed
 * address bounces as Permanent/Suppressed without an attempt. The mailbox simulator's
 * addresses never touch the network. The store is the queue: after a crash or restart
 * the scheduler resumes from it. */
#ifndef SESAME_DELIVERY_H
#define SESAME_DELIVERY_H

#include "core/core.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct delivery;

/* A message just made durable by the accept pipeline, handed over in memory so the
 * first attempt needs no read. Everything is copied. */
struct delivery_message {
    const char *id;
    const char *account_id;
    const char *region;
    const char *source;
    int64_t created_ms;
    const char *data;
    size_t len;
    const char *const *recipients; /* in the stored order: index i is the store's idx */
    int recipient_count;
    const bool *queued; /* which recipients delivery takes (capture mode); NULL: all */
};

/* Starts the scheduler thread; it first loads what the store holds queued. Events go
 * through feedback (feedback_record); NULL: only stored. */
struct feedback;
struct delivery *delivery_start(const struct sesame_config *cfg, struct store *store,
                                struct feedback *feedback);
/* Any thread: queues a committed message's recipients. */
void delivery_enqueue(struct delivery *d, const struct delivery_message *m);
/* Stops the thread: connections are closed, what is queued stays in the store, results
 * reached so far are handed to the store writer. Call before the writer stops; later
 * delivery_enqueue calls are ignored (the store has those messages; the next start
 * resumes them). NULL is ignored. */
void delivery_stop(struct delivery *d);
/* After every producer is gone (stops first if needed). NULL is ignored. */
void delivery_free(struct delivery *d);

/* ---- pure parts, exposed for tests ---- */

/* SES's bounce type and subtype (spec 20 §5.5.4) for a reply code and enhanced status
 * ("5.1.1" or ""); final: no more retries will be made. Returns false when the outcome
 * is not a bounce yet (a temporary failure with retries left). */
struct delivery_bounce_class {
    const char *type;    /* Permanent, Transient, Undetermined */
    const char *subtype; /* General, NoEmail, Suppressed, MailboxFull, MessageTooLarge, ... */
};
bool delivery_classify(int code, const char *enhanced, const char *text, bool final,
                       struct delivery_bounce_class *out);

/* The mailbox simulator (spec 20 §9). */
enum delivery_sim {
    DELIVERY_SIM_NONE,       /* not a simulator address */
    DELIVERY_SIM_SUCCESS,    /* success@ */
    DELIVERY_SIM_BOUNCE,     /* bounce@: 550 5.1.1, not listed */
    DELIVERY_SIM_OOTO,       /* ooto@: delivered, then an auto-reply */
    DELIVERY_SIM_COMPLAINT,  /* complaint@: delivered, then a complaint */
    DELIVERY_SIM_SUPPRESSED, /* suppressionlist@: Permanent/Suppressed */
    DELIVERY_SIM_UNKNOWN,    /* any other: hard bounce, then listed */
};
enum delivery_sim delivery_simulator(const char *address);

/* The VERP envelope sender of a message's recipient idx, or with batch of a transaction of
 * several recipients of one domain whose first is idx (idx < 0: the whole message), with a
 * MAC under key (store_derive_key(store, DELIVERY_VERP_KEY_LABEL)). */
#define DELIVERY_VERP_KEY_LEN 32
#define DELIVERY_VERP_KEY_LABEL "verp"
void delivery_verp_encode(const unsigned char key[DELIVERY_VERP_KEY_LEN], const char *message_id,
                          int idx, bool batch, const char *bounce_domain, char *out, size_t outlen);
/* Parses a VERP address; false when it is not one of ours (wrong domain, shape or MAC).
 * *idx is -1 for a whole-message address; *batch says it is a transaction's first. */
bool delivery_verp_decode(const unsigned char key[DELIVERY_VERP_KEY_LEN], const char *address,
                          const char *bounce_domain, char *message_id, size_t idlen, int *idx,
                          bool *batch);

#endif
