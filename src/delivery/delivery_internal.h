/* Private to the delivery module. Everything here belongs to the scheduler thread except
 * the inbox, which producers fill under its lock. */
#ifndef SESAME_DELIVERY_INTERNAL_H
#define SESAME_DELIVERY_INTERNAL_H

#include "delivery/delivery.h"
#include "dns/dns.h"
#include "smtp/smtp.h"

#include <pthread.h>

struct event;
struct event_base;

#define DL_ADDRESS_LEN 321
#define DL_DEST_BUCKETS 4096
#define DL_MSG_BUCKETS 65536

/* A message with recipients still to deliver. Its bytes are loaded when a transaction
 * needs them and dropped when none of its recipients is ready or in flight. */
struct dl_message {
    char id[80];
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char source[STORE_IDENTITY_LEN];
    int64_t created_ms;
    char *data; /* NULL: in the store only */
    size_t len;
    bool eightbit;
    int pending;            /* recipients without a final outcome */
    int active;             /* recipients ready or in a transaction (their bytes are needed) */
    int sending;            /* transactions using data now: it must stay */
    struct dl_rcpt **rcpts; /* those without a final outcome; NULL slots for the others */
    int rcpt_count, rcpt_cap;
    struct dl_message *hash_next;
};

enum dl_rcpt_state { DL_WAITING, DL_READY, DL_IN_FLIGHT };

struct dl_dest;

struct dl_rcpt {
    struct dl_message *msg;
    int idx;
    char address[DL_ADDRESS_LEN];
    int attempts;
    int64_t next_ms;
    enum dl_rcpt_state state;
    struct dl_dest *dest;
    struct dl_rcpt *next; /* in the destination's ready list */
    size_t heap_pos;      /* in the retry heap while waiting */
    bool dropped;         /* the operator dropped it while in flight */
    bool seen;            /* reconciling with the store */
};

/* An MX answer (or the relay's address) cached for a destination. */
struct dl_route {
    struct dns_mx_result mx;
    int64_t expires_ms;
};

struct dl_conn;

/* Where mail goes: a domain, or the relay. */
struct dl_dest {
    struct delivery *d;
    char name[256];
    struct dl_dest *hash_next;
    struct dl_rcpt *ready_head, *ready_tail;
    int ready_count;
    int conns;              /* open or opening */
    int opening;            /* not ready yet */
    struct dl_conn *idle;   /* connections waiting for work */
    struct dl_route *route; /* shared by new connections; each keeps its own copy */
    bool resolving;
    struct dl_dest *kick_next; /* in the list of destinations to kick after an intake */
    bool kick_queued;
    enum smtp_client_tls tls;
    double tokens; /* max_rate's bucket */
    int64_t tokens_us;
    struct event *rate_timer;
    char last_error[800]; /* of the last failed connection, for deferrals */
};

/* One result waiting to be written. */
struct dl_result {
    struct store_recipient rcpt; /* state, attempts, next_ms, last_result */
    struct store_event event;    /* type "" when none */
    struct store_event extra;    /* a second event (the simulator's complaint, auto-reply) */
    bool list_address;           /* a hard bounce: onto the suppression list */
    bool count;                  /* counts in the statistics */
    bool release;                /* the message has nothing left queued */
};

struct delivery {
    struct sesame_config cfg;
    struct store *store;
    struct store_conn *conn; /* the scheduler's reads */
    pthread_t thread;
    bool running;
    struct event_base *base;
    struct dns_resolver *resolver;
    SSL_CTX *tls_ctx;
    /* inbox: messages handed over by the accept pipeline */
    pthread_mutex_t lock;
    struct dl_inbox *inbox;
    bool stopped;
    struct event *inbox_ev, *stop_ev, *retry_timer, *control_timer, *flush_ev;
    int64_t control_seen;
    /* retry heap of waiting recipients, by next_ms */
    struct dl_rcpt **heap;
    size_t heap_len, heap_cap;
    struct dl_dest *dests[DL_DEST_BUCKETS];
    struct dl_message *messages[DL_MSG_BUCKETS];
    struct dl_dest *relay; /* mode relay: the only destination */
    struct dl_conn *conns; /* every connection, for stopping */
    bool intake;           /* taking a message in: kicks wait until all its recipients are */
    struct dl_dest *kick_list;
    /* results waiting for the store writer */
    struct dl_result *results;
    int result_count, result_cap;
    char bounce_domain[256];
    unsigned char verp_key[DELIVERY_VERP_KEY_LEN];
    struct feedback *feedback; /* what events cause (notifications, forwarding); may be NULL */
    size_t data_bytes;         /* message bytes in memory (delivery.memory) */
};

struct dl_inbox {
    struct dl_inbox *next;
    struct store_recipient *rcpts; /* message fields filled in each */
    int count;
    char *data;
    size_t len;
};

/* engine.c */
void dl_heap_push(struct delivery *d, struct dl_rcpt *r);
void dl_heap_remove(struct delivery *d, struct dl_rcpt *r);
struct dl_message *dl_message_find(struct delivery *d, const char *id);
void dl_message_unref(struct delivery *d, struct dl_message *m); /* frees when pending is 0 */
bool dl_message_load(struct delivery *d, struct dl_message *m);
/* Drops the bytes when nothing needs them, or when over delivery.memory and no
 * transaction uses them. */
void dl_message_idle(struct delivery *d, struct dl_message *m);
/* A recipient reached its final outcome: forgotten, and its message once it was the last. */
void dl_rcpt_done(struct delivery *d, struct dl_rcpt *r);

/* dest.c */
struct dl_dest *dl_dest_for(struct delivery *d, const char *address);
void dl_dest_add_ready(struct delivery *d, struct dl_rcpt *r);
void dl_dest_kick(struct delivery *d, struct dl_dest *dest);
void dl_dests_kick_pending(struct delivery *d); /* after an intake */
void dl_dests_free(struct delivery *d);
void dl_dest_remove_ready(struct dl_dest *dest, struct dl_rcpt *r);

/* outcome.c */
/* The recipient's attempt ended. code/enhanced/text: the reply (code 0: local failure);
 * remote: the host that answered. Decides delivered, bounced or retry, and frees r when
 * final. */
/* address_level: the reply concerns the recipient (RCPT, or after the data), so a hard
 * bounce lists the address; a refusal of the connection or the sender does not. */
void dl_outcome(struct delivery *d, struct dl_rcpt *r, int code, const char *enhanced,
                const char *text, const char *remote, bool address_level);
/* A bounce without an attempt (suppression, simulator, DNS) or a simulated delivery. */
void dl_outcome_direct(struct delivery *d, struct dl_rcpt *r, const char *type,
                       const char *bounce_type, const char *subtype, const char *status,
                       const char *diagnostic, bool simulator, bool list_address);
/* Before the first attempt: simulator and suppression list. True when it was settled. */
bool dl_outcome_settled_early(struct delivery *d, struct dl_rcpt *r);
void dl_results_flush(struct delivery *d);

#endif
