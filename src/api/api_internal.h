/* Private to the api module: the per-request call, the action table and reply helpers. */
#ifndef SESAME_API_INTERNAL_H
#define SESAME_API_INTERNAL_H

#include "api/api.h"
#include "store/store.h"

#include <pthread.h>

struct evhttp_request;

#define API_NAMESPACE "http://ses.amazonaws.com/doc/2010-12-01/"
#define API_SNS_NAMESPACE "http://sns.amazonaws.com/doc/2010-03-31/"

/* The service an action belongs to: it picks the SigV4 scope, Version and namespace. */
enum api_service { API_SES = 0, API_SNS = 1 };

struct api_throttle; /* per-account token buckets for non-send actions */
struct send_shared;
struct feedback;

struct api_shared {
    struct sesame_config cfg;
    struct store *store;
    struct send_shared *send;
    pthread_mutex_t throttle_lock;
    struct api_throttle *throttles;
    struct auth_failures *failures; /* failed authentications per source address (shared) */
    struct feedback *fb;            /* topics' publishing; NULL until api_shared_use_feedback */
};

struct api_cache;
struct send_identity_cache;
struct api_listener;

struct auth_key_cache;
struct auth_failures;
struct auth_policy;

struct api_thread {
    struct api_shared *sh;
    struct api_cache *cache;
    struct auth_key_cache *keys; /* derived SigV4 signing keys */
    struct send_identity_cache *identities;
    struct event_base *base;
    struct store_conn *conn;
    struct evhttp *http;
    struct evhttp *https;
    struct evhttp_bound_socket *http_socket, *https_socket;
    struct api_listener *http_listener, *https_listener;
    SSL_CTX *tls;
};

/* One Query API request, from parsing to reply. Owned by the thread that received it. */
struct api_call {
    struct api_thread *t;
    struct evhttp_request *req;
    struct query_params params;
    char request_id[37];
    const char *action;
    struct store_account account;
    struct store_key key;
    char region[STORE_REGION_LEN];
    char peer[64];            /* the client's address (aws:SourceIp) */
    bool secure;              /* came over TLS (aws:SecureTransport) */
    bool store_failed;        /* the access key could not be read */
    bool anonymous;           /* an unsigned SubscribeURL/UnsubscribeURL GET: no account, no key */
    enum api_service service; /* the signing scope's, then the action's: the reply namespace */
    struct buf out;           /* the XML reply */
    void *action_ctx;         /* for actions that finish after a store write */
};

struct api_action {
    const char *name;
    void (*run)(struct api_call *call);
    bool is_send; /* send actions are limited by the sending rate, not the non-send throttle */
    enum api_service service;
};
const struct api_action *api_action_find(const char *name);

/* ---- replies (each ends the call and frees it) ---- */
/* Starts <ActionResponse xmlns=...>; then the action appends its result. */
void api_reply_begin(struct api_call *call);
/* Appends ResponseMetadata, closes the root and sends 200. */
void api_reply_finish(struct api_call *call);
/* Sends ErrorResponse with the code's HTTP status and type (spec 30 §3). */
void api_reply_error(struct api_call *call, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ValidationError for a required parameter that is missing (DECISIONS 2). */
void api_reply_missing(struct api_call *call, const char *member);
/* SNS's InvalidParameter: "Invalid parameter: <what>". */
void api_reply_sns_invalid(struct api_call *call, const char *what);
int api_error_status(const char *code);

/* ---- XML ---- */
void xml_escape(struct buf *b, const char *text);
void xml_element(struct buf *b, const char *name, const char *text);

/* ---- actions, one file each group ---- */
void action_verify_email_identity(struct api_call *call);
void action_verify_email_address(struct api_call *call);
void action_verify_domain_identity(struct api_call *call);
void action_list_identities(struct api_call *call);
void action_list_verified_email_addresses(struct api_call *call);
void action_delete_identity(struct api_call *call);
void action_delete_verified_email_address(struct api_call *call);
void action_get_identity_verification_attributes(struct api_call *call);
/* Get*Attributes: the Identities list (at most 100, each normalized) and, for each, entry
 * appends its <entry> to the map (or nothing for an unknown identity; a store error fails
 * the call). */
typedef int (*api_identity_entry_fn)(struct api_call *call, const char *identity);
void api_identity_attributes(struct api_call *call, const char *map, api_identity_entry_fn entry);
void action_verify_domain_dkim(struct api_call *call);
void action_get_identity_dkim_attributes(struct api_call *call);
void action_set_identity_dkim_enabled(struct api_call *call);
void action_get_send_quota(struct api_call *call);
void action_get_send_statistics(struct api_call *call);
void action_send_email(struct api_call *call);
void action_send_raw_email(struct api_call *call);
/* SES notification settings (actions_notify.c; spec 20 §5.4) */
void action_set_identity_notification_topic(struct api_call *call);
void action_set_identity_feedback_forwarding_enabled(struct api_call *call);
void action_get_identity_notification_attributes(struct api_call *call);
/* SNS-compatible topics (actions_sns.c; DECISIONS 28) */
void action_sns_create_topic(struct api_call *call);
void action_sns_delete_topic(struct api_call *call);
void action_sns_list_topics(struct api_call *call);
void action_sns_get_topic_attributes(struct api_call *call);
void action_sns_subscribe(struct api_call *call);
void action_sns_confirm_subscription(struct api_call *call);
void action_sns_unsubscribe(struct api_call *call);
void action_sns_list_subscriptions(struct api_call *call);
void action_sns_list_subscriptions_by_topic(struct api_call *call);
/* The parts of a topic ARN, arn:aws:sns:<region>:<account>:<name>; false when arn is not
 * one (a subscription ARN has one more ":<uuid>"). */
struct api_sns_arn {
    char region[STORE_REGION_LEN];
    char account_id[STORE_ID_LEN];
    char name[257];
};
bool api_sns_arn_parse(const char *arn, struct api_sns_arn *out);
/* A subscription ARN, <topic arn>:<id>: its topic's parts, and the topic ARN itself
 * (topic_arn: STORE_ARN_LEN bytes). */
bool api_sns_subscription_arn_parse(const char *arn, struct api_sns_arn *out, char *topic_arn);

/* The capture endpoint, /_aws/ses (DESIGN.md, "Configuration and modes"). */
void api_capture_handle(struct api_thread *t, struct evhttp_request *req, const char *query,
                        bool loopback);

/* Per-account non-send throttle (DECISIONS 7): true when the call may proceed. */
bool api_throttle_allow(struct api_shared *sh, const char *account_id);
void api_throttle_free_all(struct api_shared *sh);

/* ---- the per-thread read cache (cache.c) ---- */
struct api_cache *api_cache_new(int64_t ttl_s);
void api_cache_free(struct api_cache *c);
/* The access key and its account: STORE_OK, STORE_NOT_FOUND or STORE_ERROR. */
int api_cache_key(struct api_thread *t, const char *key_id, struct store_key *key,
                  struct store_account *account);
/* An account's limits in a region (the sandbox defaults when none are stored). */
/* The compiled policies of an account's user (count 0: none, so everything is denied). */
int api_cache_policies(struct api_thread *t, const char *account_id, const char *user,
                       struct auth_policy *const **policies, int *count);
int api_cache_limits(struct api_thread *t, const char *account_id, const char *region,
                     struct store_account_region *limits);

#endif
