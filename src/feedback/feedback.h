/* feedback: what the sender learns (DESIGN.md, "Feedback"; spec 20 §5, DECISIONS 28–30).
 * Outcomes of attempts, reports arriving at the bounce domain (DSN, ARF, auto-replies) and
 * the simulator's outcomes become events; each event drives the statistics, the
 * notifications published to SNS-compatible topics (HTTP/HTTPS POSTs and emails, signed
 * as SNS signs them) and the email forwarded to the sender.
 *
 * Pure parts (report.c, json.c, sns.c, compose.c) know nothing of threads or the store's
 * writer; record.c derives what an event causes inside the writer's transaction, and
 * notifier.c makes the HTTP(S) deliveries with retries. */
#ifndef SESAME_FEEDBACK_H
#define SESAME_FEEDBACK_H

#include "core/core.h"
#include "store/store.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ==== reports received at the bounce domain (report.c) ==== */

enum feedback_report_kind {
    FEEDBACK_REPORT_UNKNOWN = 0, /* not a report we understand (error says why) */
    FEEDBACK_REPORT_DSN,         /* RFC 3464 multipart/report; report-type=delivery-status */
    FEEDBACK_REPORT_ARF,         /* RFC 5965 multipart/report; report-type=feedback-report */
    FEEDBACK_REPORT_AUTOREPLY,   /* RFC 3834 auto-reply (Auto-Submitted: auto-replied, ...) */
};

#define FEEDBACK_REPORT_RECIPIENTS                                                                 \
    50 /* per-recipient DSN fields kept (SES's most recipients                                     \
        * of a message); more are counted */

/* One per-recipient block of a DSN. Every string is printable ASCII (anything else in the
 * report becomes '?'), trimmed, NUL-terminated, cut to its size. */
struct feedback_report_recipient {
    char final_recipient[320];    /* the address, its "rfc822;" type stripped */
    char original_recipient[320]; /* Original-Recipient, type stripped; "" when absent */
    char action[16];              /* lower-case: failed, delayed, delivered, relayed, expanded */
    char status[16];              /* "5.1.1"; "" when absent or not a valid status */
    char diagnostic[600];         /* Diagnostic-Code verbatim ("smtp; 550 5.1.1 ..."), unfolded */
    char remote_mta[256];         /* Remote-MTA verbatim */
};

struct feedback_report {
    enum feedback_report_kind kind;
    char error[160]; /* why kind is UNKNOWN (for the log and the kept report) */
    int64_t date_ms; /* the report's own Date header; 0 when absent or unparseable */
    char subject[256];
    char from[320]; /* the report's From address (bare); "" when none */
    /* DSN (per-message fields) */
    char reporting_mta[256]; /* Reporting-MTA verbatim ("dns; mx.example.com") */
    int64_t arrival_ms;      /* DSN Arrival-Date; ARF Arrival-Date or Received-Date; 0: none */
    struct feedback_report_recipient recipients[FEEDBACK_REPORT_RECIPIENTS];
    int recipient_count;    /* how many are in recipients[] */
    int recipient_overflow; /* how many more blocks the report had */
    /* ARF */
    char feedback_type[32];       /* lower-case Feedback-Type: abuse, auth-failure, fraud, ... */
    char user_agent[256];         /* User-Agent */
    char original_rcpt[320];      /* Original-Rcpt-To (bare); "" when absent or redacted */
    char original_mail_from[320]; /* Original-Mail-From (bare) */
    /* The returned original message (message/rfc822 or text/rfc822-headers part), or for
     * an auto-reply the headers that refer to it: what maps a report to our message. */
    char original_message_id[256];  /* its Message-ID without <>, or In-Reply-To/References */
    char original_return_path[320]; /* its Return-Path (our VERP address), bare */
};

/* Parses a message received by the feedback listener. Never fails on bad input: the kind
 * is UNKNOWN and error says why. Safe on any bytes (fuzzed). */
enum feedback_report_kind feedback_report_parse(const char *data, size_t len,
                                                struct feedback_report *out);

/* ==== notification JSON (json.c; spec 20 §5.5) ==== */

/* The notification's mail object. */
struct feedback_mail {
    const char *message_id;
    int64_t timestamp_ms;           /* the original's acceptance */
    const char *source;             /* the Source / MAIL FROM the customer gave (spec 20 Q14) */
    const char *const *destination; /* every envelope recipient of the original */
    int destination_count;
};

/* The JSON of one notification: events are of one type (Bounce, Complaint or Delivery)
 * and one message, each naming one recipient; feedback_id is the bounce's or complaint's
 * feedbackId (unused for deliveries). Timestamps are UTC with milliseconds. malloc'd;
 * NULL only on allocation failure. */
char *feedback_json_notification(const struct feedback_mail *mail,
                                 const struct store_event *const *events, int count);
/* {"notificationType":"AmazonSnsSubscriptionSucceeded","message":"You have successfully
 * subscribed your Amazon SNS topic '<arn>' to receive '<type>' notifications from Amazon
 * SES for identity '<identity>'."} (spec 20 §5.2.7). malloc'd. */
char *feedback_json_subscription_succeeded(const char *topic_arn, const char *type,
                                           const char *identity);
/* ISO 8601 UTC with milliseconds: 2014-05-28T22:40:59.638Z (out: at least 25 bytes). */
void feedback_iso8601_ms(int64_t ms, char *out, size_t outlen);

/* ==== the SNS message format and its signature (sns.c) ==== */

enum feedback_sns_type {
    FEEDBACK_SNS_NOTIFICATION,
    FEEDBACK_SNS_SUBSCRIPTION_CONFIRMATION,
    FEEDBACK_SNS_UNSUBSCRIBE_CONFIRMATION,
};

struct feedback_sns_message {
    enum feedback_sns_type type;
    const char *message_id; /* a UUID */
    const char *topic_arn;
    const char *subject; /* Notification only; NULL: none */
    const char *message; /* the payload (the notification JSON, or the confirmation text) */
    int64_t timestamp_ms;
    const char *token;           /* confirmations only */
    const char *subscribe_url;   /* confirmations only */
    const char *unsubscribe_url; /* Notification only */
    const char *signing_cert_url;
    int signature_version; /* 1: SHA1withRSA, 2: SHA256withRSA */
};

/* The "Type" value: Notification, SubscriptionConfirmation, UnsubscribeConfirmation (also
 * the x-amz-sns-message-type header). */
const char *feedback_sns_type_name(enum feedback_sns_type type);
/* The canonical string SNS signs: "Key\nvalue\n" for the type's keys in byte order. */
void feedback_sns_string_to_sign(const struct feedback_sns_message *m, struct buf *out);
/* The envelope JSON with Signature (base64) over the string to sign, by key (RSA).
 * malloc'd; NULL on failure (logged). */
char *feedback_sns_envelope(const struct feedback_sns_message *m, EVP_PKEY *key);
/* Loads the signing key and certificate (PEM) from key_path and cert_path, creating both
 * (RSA-2048, self-signed for common_name, 10 years) when neither exists. *cert_pem is
 * malloc'd (the bytes served at SigningCertURL). -1 on failure, with err. */
int feedback_sns_signing_load(const char *key_path, const char *cert_path, const char *common_name,
                              EVP_PKEY **key, char **cert_pem, char *err, size_t errlen);

/* ==== emails Sesame writes (compose.c) ==== */

/* What every composed email shares. */
struct feedback_compose {
    const char *from;              /* the rewritten From: MAILER-DAEMON@<host> */
    const char *to;                /* the destination */
    const char *hostname;          /* Reporting-MTA and the Message-ID's right side */
    const char *message_id;        /* the new email's MessageId (core_message_id) */
    const char *message_id_domain; /* Message-ID: <message_id@message_id_domain> */
    int64_t now_ms;
    const char *original; /* the original message, or only its headers; NULL: none */
    size_t original_len;
};

/* An RFC 3464 DSN (multipart/report; report-type=delivery-status) for bounces Sesame
 * decided itself (a remote server's 5xx, retries run out, the simulator, the suppression
 * list): one per-recipient block per event, the original's headers attached
 * (text/rfc822-headers). 0 on success; out receives the CRLF message. */
int feedback_compose_dsn(const struct feedback_compose *c, const struct store_event *const *events,
                         int count, struct buf *out);
/* An RFC 5965 ARF report (Feedback-Type abuse) for the simulator's complaint about e. */
int feedback_compose_arf(const struct feedback_compose *c, const struct store_event *e,
                         struct buf *out);
/* An RFC 3834 auto-reply (Auto-Submitted: auto-replied) from responder, for the
 * simulator's out-of-the-office address. */
int feedback_compose_autoreply(const struct feedback_compose *c, const char *responder,
                               struct buf *out);
/* A report received from outside, forwarded to the sender: From rewritten to c->from, To
 * c->to, a short text part, and the report attached unchanged (message/rfc822). */
int feedback_compose_forward(const struct feedback_compose *c, const char *subject,
                             const char *report, size_t report_len, struct buf *out);
/* A plain-text email (an SNS email subscription's notification or confirmation). */
int feedback_compose_text(const struct feedback_compose *c, const char *subject, const char *text,
                          struct buf *out);

/* ==== the running part (record.c, notifier.c, intake.c) ==== */

struct feedback;

/* Emails stored by a transaction, handed to delivery after it commits. */
struct feedback_outgoing {
    struct feedback_email *emails;
    int count, cap;
};
void feedback_outgoing_init(struct feedback_outgoing *o);

/* Starts the notifier thread (HTTP/HTTPS deliveries) and loads the signing key. NULL on
 * error (logged). */
struct feedback *feedback_start(const struct sesame_config *cfg, struct store *store);
/* Where stored emails go once committed: the delivery engine registers itself, before its
 * thread starts (delivery_start). */
struct feedback_email_view {
    const char *id, *region, *from, *to;
    int64_t created_ms;
    const char *data;
    size_t len;
};
typedef void (*feedback_enqueue_fn)(const struct feedback_email_view *e, void *ctx);
void feedback_on_email(struct feedback *fb, feedback_enqueue_fn fn, void *ctx);
/* The pool that parses received reports (set before the listener starts; NULL: the I/O
 * thread that received them). */
void feedback_use_pool(struct feedback *fb, struct core_pool *pool);
/* The feedback listener's hooks (intake.c): RCPT takes VERP addresses whose MAC is right
 * and feedback.accept_local's local parts at the bounce domain; each message is parsed,
 * mapped to its message and recipients, and recorded (or kept aside) before the 250. */
struct smtp_feedback_hooks;
void feedback_listener_hooks(struct feedback *fb, struct smtp_feedback_hooks *out);
/* Stops the notifier: deliveries in flight finish or stay in the outbox for next time. */
void feedback_stop(struct feedback *fb);
void feedback_free(struct feedback *fb);
/* The signing certificate served at SigningCertURL (PEM). */
const char *feedback_signing_cert(const struct feedback *fb);

/* In the writer's transaction: inserts the events (one message, one kind: one notification,
 * as they happened together) and everything they cause: statistics are the caller's; here
 * the SNS deliveries (outbox rows) and forwarded emails (stored messages, listed in out).
 * report: the received report, forwarded as it is; NULL: Sesame writes one (its own DSN,
 * the simulator's ARF report or auto-reply). forward false: no email (a report's other
 * groups, when its first group forwarded it). */
int feedback_record(struct feedback *fb, struct store_conn *c, const struct store_event *events,
                    int count, const char *report, size_t report_len, bool forward,
                    struct feedback_outgoing *out);
/* Publishes message to a topic (its confirmed subscriptions), in the caller's transaction. */
int feedback_publish(struct feedback *fb, struct store_conn *c, const char *topic_arn,
                     const char *subject, const char *message, struct feedback_outgoing *out);
/* A new subscription's SubscriptionConfirmation (POST, or email with the link). */
int feedback_confirmation(struct feedback *fb, struct store_conn *c,
                          const struct store_subscription *sub, struct feedback_outgoing *out);
/* The email telling the account's contact that email forwarding of identity n was
 * turned back on (why: "the Bounce topic was cleared", "publishing to <arn> failed: the
 * topic does not exist"), in the caller's transaction (spec 20 §5.2.6, DECISIONS 29).
 * Nothing is stored when the account has no contact address. */
int feedback_forwarding_notice(struct feedback *fb, struct store_conn *c,
                               const struct store_notify *n, const char *why,
                               struct feedback_outgoing *out);
/* SigningCertURL, SubscribeURL and UnsubscribeURL (config_public_url + path). */
void feedback_cert_url(const struct sesame_config *cfg, char *out, size_t outlen);
void feedback_subscribe_url(const struct sesame_config *cfg, const char *topic_arn,
                            const char *token, char *out, size_t outlen);
void feedback_unsubscribe_url(const struct sesame_config *cfg, const char *subscription_arn,
                              char *out, size_t outlen);
#define FEEDBACK_CERT_PATH "/SimpleNotificationService.pem"

/* After the transaction: emails to delivery if it committed, then frees out's contents;
 * wakes the notifier. */
void feedback_after(struct feedback *fb, struct feedback_outgoing *out, bool committed);

#endif
