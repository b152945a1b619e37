/* Private to the feedback module: the shared state and the notifier's interface. */
#ifndef SESAME_FEEDBACK_INTERNAL_H
#define SESAME_FEEDBACK_INTERNAL_H

#include "delivery/delivery.h"
#include "feedback/feedback.h"
#include "send/send.h"

struct fb_notifier;

struct feedback {
    struct sesame_config cfg;
    struct store *store;
    EVP_PKEY *key;  /* signs SNS messages */
    char *cert_pem; /* served at SigningCertURL */
    char forward_from[320];
    char bounce_domain[256];
    unsigned char verp_key[DELIVERY_VERP_KEY_LEN];
    feedback_enqueue_fn enqueue;
    void *enqueue_ctx;
    struct fb_notifier *notifier;
    struct core_pool *pool; /* report parsing; NULL: the I/O thread */
};

/* A stored email waiting for its transaction's commit. */
struct feedback_email {
    struct send_notice n;
};

/* notifier.c: the thread that makes the outbox's HTTP(S) POSTs. */
struct fb_notifier *fb_notifier_start(struct feedback *fb);
void fb_notifier_wake(struct fb_notifier *nt);
void fb_notifier_stop(struct fb_notifier *nt);
void fb_notifier_free(struct fb_notifier *nt);

/* record.c: an email stored in the caller's transaction, listed in out. data is taken. */
int fb_email_store(struct feedback *fb, struct store_conn *c, struct feedback_outgoing *out,
                   const char *region, const char *from, const char *to, const char *id,
                   struct buf *data);

/* record.c: a Notification the notifier gave up on (row: its outbox row; message: its
 * payload, the SES JSON). For a bounce or complaint not forwarded by email when it
 * happened: forwarding comes back on (the account is told if it was off) and the event is
 * forwarded by email, once for all of its SNS message's rows (spec 20 §5.2.6). In the
 * caller's transaction. */
int feedback_delivery_failed(struct feedback *fb, struct store_conn *c,
                             const struct store_outbox *row, const char *message,
                             struct feedback_outgoing *out);

/* notifier.c: an address a tenant's endpoint may not make sesamed reach (loopback,
 * private, link-local, reserved; IPv4 inside IPv6 too), unless allowed by configuration. */
struct sockaddr;
bool feedback_address_private(const struct sockaddr *sa);

#endif
