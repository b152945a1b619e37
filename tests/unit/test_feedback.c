/* The pure builders of the feedback module: the notification JSON against the spec's
 * examples (spec 20 §5.5), the SNS string to sign and envelope signatures checked the way
 * a subscriber checks them (the string rebuilt from the envelope's own fields, the
 * certificate's public key), the signing key's creation and loading, and the composed
 * DSN, ARF, auto-reply, forward and text emails parsed back with GMime. */
#include "feedback/feedback.h"
#include "feedback/feedback_internal.h"
#include "unit.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gmime/gmime.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

static struct store_event event(const char *type, const char *recipient)
{
    struct store_event e;
    memset(&e, 0, sizeof e);
    snprintf(e.type, sizeof e.type, "%s", type);
    snprintf(e.recipient, sizeof e.recipient, "%s", recipient);
    return e;
}

/* ---- JSON ---- */

static void test_iso8601(void)
{
    char ts[32];
    feedback_iso8601_ms(1401316859638, ts, sizeof ts);
    CHECK_STR(ts, "2014-05-28T22:40:59.638Z");
    feedback_iso8601_ms(0, ts, sizeof ts);
    CHECK_STR(ts, "1970-01-01T00:00:00.000Z");
    feedback_iso8601_ms(1340068072005, ts, sizeof ts);
    CHECK_STR(ts, "2012-06-19T01:07:52.005Z");
}

/* The spec's "Bounce with DSN" example, exactly (key order as written by json.c). */
static void test_json_bounce_dsn(void)
{
    const char *dest[] = {"username@example.com"};
    struct feedback_mail mail = {"00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
                                 1340067945000, "sender@example.com", dest, 1};
    struct store_event e = event("Bounce", "username@example.com");
    strcpy(e.bounce_type, "Permanent");
    strcpy(e.bounce_subtype, "General");
    strcpy(e.status, "5.1.1");
    strcpy(e.action, "failed");
    strcpy(e.diagnostic, "smtp; 550 5.1.1 <username@example.com>... User");
    strcpy(e.reporting_mta, "dns; email.example.com");
    strcpy(e.feedback_id, "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000");
    e.created_ms = 1340068080000;
    e.report_ms = 1340068072000;
    const struct store_event *list[] = {&e};
    char *json = feedback_json_notification(&mail, list, 1);
    CHECK_STR(json, "{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\","
                    "\"bounceSubType\":\"General\",\"bouncedRecipients\":[{\"emailAddress\":"
                    "\"username@example.com\",\"status\":\"5.1.1\",\"action\":\"failed\","
                    "\"diagnosticCode\":\"smtp; 550 5.1.1 <username@example.com>... User\"}],"
                    "\"timestamp\":\"2012-06-19T01:07:52.000Z\",\"feedbackId\":"
                    "\"00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000\","
                    "\"reportingMTA\":\"dns; email.example.com\"},\"mail\":{\"timestamp\":"
                    "\"2012-06-19T01:05:45.000Z\",\"messageId\":"
                    "\"00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000\",\"source\":"
                    "\"sender@example.com\",\"destination\":[\"username@example.com\"]}}");
    free(json);

    /* A DSN's Reporting-MTA is copied as it came, even untyped (spec 20 Q15); no
     * diagnostic: no diagnosticCode. */
    strcpy(e.reporting_mta, "email.example.com");
    e.diagnostic[0] = '\0';
    json = feedback_json_notification(&mail, list, 1);
    json_t *root = json_loads(json, 0, NULL);
    json_t *bounce = json_object_get(root, "bounce");
    CHECK_STR(json_string_value(json_object_get(bounce, "reportingMTA")), "email.example.com");
    json_t *r = json_array_get(json_object_get(bounce, "bouncedRecipients"), 0);
    CHECK(json_object_size(r) == 3);
    CHECK(json_object_get(r, "diagnosticCode") == NULL);
    json_decref(root);
    free(json);

    /* Forwarded mail: the DSN's Final-Recipient is the address reported (spec 20 §5.5.4) */
    strcpy(e.final_recipient, "user@forwarded.example");
    json = feedback_json_notification(&mail, list, 1);
    root = json_loads(json, 0, NULL);
    r = json_array_get(json_object_get(json_object_get(root, "bounce"), "bouncedRecipients"), 0);
    CHECK_STR(json_string_value(json_object_get(r, "emailAddress")), "user@forwarded.example");
    CHECK_STR(json_string_value(json_array_get(
                  json_object_get(json_object_get(root, "mail"), "destination"), 0)),
              "username@example.com");
    json_decref(root);
    free(json);
}

/* Without a DSN: recipients carry only emailAddress, no reportingMTA, the event's time. */
static void test_json_bounce_plain(void)
{
    const char *dest[] = {"a@example.com", "b@example.com", "c@example.com"};
    struct feedback_mail mail = {"id-1", 1000, "sender@example.com", dest, 3};
    struct store_event e1 = event("Bounce", "a@example.com"), e2 = event("Bounce", "b@example.com");
    strcpy(e1.bounce_type, "Permanent");
    strcpy(e1.bounce_subtype, "Suppressed");
    strcpy(e1.feedback_id, "fb-1");
    e1.created_ms = 1340068072000;
    e2 = e1;
    strcpy(e2.recipient, "b@example.com");
    const struct store_event *list[] = {&e1, &e2};
    char *json = feedback_json_notification(&mail, list, 2);
    json_t *root = json_loads(json, 0, NULL);
    CHECK(root != NULL);
    CHECK(json_object_size(root) == 3);
    json_t *bounce = json_object_get(root, "bounce");
    CHECK(json_object_size(bounce) == 5);
    CHECK_STR(json_string_value(json_object_get(bounce, "bounceSubType")), "Suppressed");
    CHECK_STR(json_string_value(json_object_get(bounce, "timestamp")), "2012-06-19T01:07:52.000Z");
    CHECK(json_object_get(bounce, "reportingMTA") == NULL);
    json_t *rs = json_object_get(bounce, "bouncedRecipients");
    CHECK(json_array_size(rs) == 2);
    CHECK(json_object_size(json_array_get(rs, 1)) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(rs, 1), "emailAddress")),
              "b@example.com");
    json_t *m = json_object_get(root, "mail");
    CHECK(json_array_size(json_object_get(m, "destination")) == 3);
    CHECK_STR(json_string_value(json_object_get(m, "timestamp")), "1970-01-01T00:00:01.000Z");
    json_decref(root);
    free(json);
}

static void test_json_complaint(void)
{
    const char *dest[] = {"recipient1@example.com"};
    struct feedback_mail mail = {"id-2", 1337983178623, "sender@example.com", dest, 1};
    struct store_event e = event("Complaint", "recipient1@example.com");
    strcpy(e.feedback_id, "fb-2");
    strcpy(e.user_agent, "Comcast Feedback Loop (V0.01)");
    strcpy(e.feedback_type, "abuse");
    e.arrival_ms = 1259832261000;
    e.created_ms = 1337983179000;
    e.report_ms = 1337983178623;
    const struct store_event *list[] = {&e};
    char *json = feedback_json_notification(&mail, list, 1);
    CHECK_STR(json, "{\"notificationType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":"
                    "[{\"emailAddress\":\"recipient1@example.com\"}],\"timestamp\":"
                    "\"2012-05-25T21:59:38.623Z\",\"feedbackId\":\"fb-2\",\"userAgent\":"
                    "\"Comcast Feedback Loop (V0.01)\",\"complaintFeedbackType\":\"abuse\","
                    "\"arrivalDate\":\"2009-12-03T09:24:21.000Z\"},\"mail\":{\"timestamp\":"
                    "\"2012-05-25T21:59:38.623Z\",\"messageId\":\"id-2\",\"source\":"
                    "\"sender@example.com\",\"destination\":[\"recipient1@example.com\"]}}");
    free(json);
    /* Feedback types outside RFC 5965's registry are "other"; case is the registry's. */
    const char *types[][2] = {{"opt-out", "other"}, {"Not-Spam", "not-spam"}, {"virus", "virus"}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        strcpy(e.feedback_type, types[i][0]);
        json = feedback_json_notification(&mail, list, 1);
        json_t *root = json_loads(json, 0, NULL);
        json_t *c = json_object_get(root, "complaint");
        CHECK_STR(json_string_value(json_object_get(c, "complaintFeedbackType")), types[i][1]);
        json_decref(root);
        free(json);
    }
    /* Without a report: the three report fields are absent. */
    e.user_agent[0] = e.feedback_type[0] = '\0';
    e.arrival_ms = 0;
    json = feedback_json_notification(&mail, list, 1);
    json_t *root = json_loads(json, 0, NULL);
    json_t *c = json_object_get(root, "complaint");
    CHECK(json_object_size(c) == 3);
    CHECK(json_object_get(c, "arrivalDate") == NULL);
    json_decref(root);
    free(json);
}

static void test_json_delivery(void)
{
    const char *dest[] = {"success@simulator.amazonses.com", "recipient@ses-example.com"};
    struct feedback_mail mail = {"0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdcf415321-000000",
                                 1401316859638, "test@ses-example.com", dest, 2};
    struct store_event e = event("Delivery", "success@simulator.amazonses.com");
    e.created_ms = 1401316861184;
    e.processing_ms = 546;
    strcpy(e.smtp_response, "250 ok: Message 64111812 accepted");
    strcpy(e.reporting_mta, "a8-70.smtp-out.amazonses.com");
    const struct store_event *list[] = {&e};
    char *json = feedback_json_notification(&mail, list, 1);
    CHECK_STR(json, "{\"notificationType\":\"Delivery\",\"delivery\":{\"timestamp\":"
                    "\"2014-05-28T22:41:01.184Z\",\"processingTimeMillis\":546,\"recipients\":"
                    "[\"success@simulator.amazonses.com\"],\"smtpResponse\":"
                    "\"250 ok: Message 64111812 accepted\",\"reportingMTA\":"
                    "\"a8-70.smtp-out.amazonses.com\"},\"mail\":{\"timestamp\":"
                    "\"2014-05-28T22:40:59.638Z\",\"messageId\":"
                    "\"0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdcf415321-000000\","
                    "\"source\":\"test@ses-example.com\",\"destination\":"
                    "[\"success@simulator.amazonses.com\",\"recipient@ses-example.com\"]}}");
    free(json);
}

static void test_json_edges(void)
{
    const char *dest[] = {"x@example.com"};
    struct feedback_mail mail = {"id", 0, "s@example.com", dest, 1};
    struct store_event e = event("AutoResponse", "x@example.com");
    const struct store_event *list[] = {&e};
    CHECK(feedback_json_notification(&mail, list, 1) == NULL);
    CHECK(feedback_json_notification(&mail, list, 0) == NULL);
    /* Bytes that are not UTF-8 never make the notification fail. */
    e = event("Delivery", "x\xff@example.com");
    strcpy(e.smtp_response, "250 \xc3\x28");
    char *json = feedback_json_notification(&mail, list, 1);
    CHECK(json && strstr(json, "\"x?@example.com\"") && strstr(json, "\"250 ?(\""));
    free(json);

    json = feedback_json_subscription_succeeded("arn:aws:sns:us-east-1:123456789012:t", "Bounce",
                                                "example.com");
    CHECK_STR(json, "{\"notificationType\":\"AmazonSnsSubscriptionSucceeded\",\"message\":"
                    "\"You have successfully subscribed your Amazon SNS topic "
                    "'arn:aws:sns:us-east-1:123456789012:t' to receive 'Bounce' notifications "
                    "from Amazon SES for identity 'example.com'.\"}");
    free(json);
}

/* ---- SNS ---- */

static const struct feedback_sns_message note = {
    .type = FEEDBACK_SNS_NOTIFICATION,
    .message_id = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
    .topic_arn = "arn:aws:sns:us-west-2:123456789012:MyTopic",
    .subject = "My First Message",
    .message = "Hello world!",
    .timestamp_ms = 1336505757421, /* 2012-05-08T19:35:57.421Z */
    .unsubscribe_url = "https://sns.example.com/?Action=Unsubscribe&SubscriptionArn=x",
    .signing_cert_url = "https://sns.example.com/SimpleNotificationService.pem",
    .signature_version = 1,
};

static const struct feedback_sns_message confirm = {
    .type = FEEDBACK_SNS_SUBSCRIPTION_CONFIRMATION,
    .message_id = "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
    .token = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3",
    .topic_arn = "arn:aws:sns:us-west-2:123456789012:MyTopic",
    .message = "You have chosen to subscribe to the topic.\nTo confirm, visit the SubscribeURL.",
    .subscribe_url = "https://sns.example.com/?Action=ConfirmSubscription&Token=2336",
    .timestamp_ms = 1336504945686,
    .signing_cert_url = "https://sns.example.com/SimpleNotificationService.pem",
    .signature_version = 2,
};

static void test_sns_string_to_sign(void)
{
    struct buf s;
    buf_init(&s);
    feedback_sns_string_to_sign(&note, &s);
    CHECK_STR(buf_cstr(&s),
              "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
              "Subject\nMy First Message\nTimestamp\n2012-05-08T19:35:57.421Z\n"
              "TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n"
              "Type\nNotification\n");
    struct feedback_sns_message m = note;
    m.subject = NULL;
    buf_reset(&s);
    feedback_sns_string_to_sign(&m, &s);
    CHECK(!strstr(buf_cstr(&s), "Subject"));
    buf_reset(&s);
    feedback_sns_string_to_sign(&confirm, &s);
    CHECK_STR(buf_cstr(&s),
              "Message\nYou have chosen to subscribe to the topic.\nTo confirm, visit the "
              "SubscribeURL.\nMessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\nSubscribeURL\n"
              "https://sns.example.com/?Action=ConfirmSubscription&Token=2336\nTimestamp\n"
              "2012-05-08T19:22:25.686Z\nToken\n2336412f37fb687f5d51e6e241d09c805a5a57b30d712f79"
              "4cc5f6a988666d92768dd60a747ba6f3\nTopicArn\narn:aws:sns:us-west-2:123456789012:"
              "MyTopic\nType\nSubscriptionConfirmation\n");
    CHECK_STR(feedback_sns_type_name(FEEDBACK_SNS_UNSUBSCRIBE_CONFIRMATION),
              "UnsubscribeConfirmation");
    buf_free(&s);
}

/* Checks an envelope as a subscriber does: the string to sign rebuilt from the envelope's
 * own fields (the keys AWS documents, in byte order), the signature checked with the
 * certificate's public key and the digest its SignatureVersion names. */
static bool envelope_verify(const char *text, const char *cert_pem)
{
    static const char *const note_keys[] = {"Message",   "MessageId", "Subject",
                                            "Timestamp", "TopicArn",  "Type"};
    static const char *const conf_keys[] = {"Message", "MessageId", "SubscribeURL", "Timestamp",
                                            "Token",   "TopicArn",  "Type"};
    json_t *env = json_loads(text, 0, NULL);
    const char *type = json_string_value(json_object_get(env, "Type"));
    const char *version = json_string_value(json_object_get(env, "SignatureVersion"));
    const char *sig_b64 = json_string_value(json_object_get(env, "Signature"));
    if (!type || !version || !sig_b64) {
        json_decref(env);
        return false;
    }
    bool is_note = !strcmp(type, "Notification");
    const char *const *keys = is_note ? note_keys : conf_keys;
    size_t nkeys = is_note ? 6 : 7;
    struct buf s;
    buf_init(&s);
    for (size_t i = 0; i < nkeys; i++) {
        const char *v = json_string_value(json_object_get(env, keys[i]));
        if (v)
            buf_printf(&s, "%s\n%s\n", keys[i], v);
    }
    unsigned char sig[1024];
    long siglen = core_base64_decode(sig_b64, strlen(sig_b64), sig);
    BIO *b = BIO_new_mem_buf(cert_pem, -1);
    X509 *cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = !strcmp(version, "1") ? EVP_sha1() : EVP_sha256();
    bool ok = siglen > 0 && cert &&
              EVP_DigestVerifyInit(ctx, NULL, md, NULL, X509_get0_pubkey(cert)) == 1 &&
              EVP_DigestVerify(ctx, sig, (size_t)siglen, (const unsigned char *)s.data, s.len) == 1;
    EVP_MD_CTX_free(ctx);
    X509_free(cert);
    BIO_free(b);
    buf_free(&s);
    json_decref(env);
    return ok;
}

static void check_envelope_fields(const char *text, const struct feedback_sns_message *m)
{
    json_t *env = json_loads(text, 0, NULL);
    CHECK(env != NULL);
    bool is_note = m->type == FEEDBACK_SNS_NOTIFICATION;
    CHECK_STR(json_string_value(json_object_get(env, "Type")), feedback_sns_type_name(m->type));
    CHECK_STR(json_string_value(json_object_get(env, "Message")), m->message);
    CHECK_STR(json_string_value(json_object_get(env, "SignatureVersion")),
              m->signature_version == 1 ? "1" : "2");
    CHECK_STR(json_string_value(json_object_get(env, "SigningCertURL")), m->signing_cert_url);
    CHECK((json_object_get(env, "UnsubscribeURL") != NULL) == is_note);
    CHECK((json_object_get(env, "Token") != NULL) == !is_note);
    CHECK((json_object_get(env, "SubscribeURL") != NULL) == !is_note);
    CHECK((json_object_get(env, "Subject") != NULL) == (is_note && m->subject));
    CHECK(json_object_size(env) == (is_note ? 9u + (m->subject != NULL) : 10u));
    json_decref(env);
}

static void paths(const char *dir, char *key, char *cert)
{
    sprintf(key, "%s/sns.key", dir);
    sprintf(cert, "%s/sns.crt", dir);
}

static void test_sns_signing(const char *dir)
{
    char key_path[300], cert_path[300], err[256] = "";
    paths(dir, key_path, cert_path);
    EVP_PKEY *key = NULL;
    char *pem = NULL;
    CHECK(feedback_sns_signing_load(key_path, cert_path, "sns.example.com", &key, &pem, err,
                                    sizeof err) == 0);
    CHECK(key && pem && strstr(pem, "BEGIN CERTIFICATE"));
    struct stat st;
    CHECK(stat(key_path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(stat(cert_path, &st) == 0 && (st.st_mode & 0777) == 0644);
    if (!key || !pem)
        return;
    /* The certificate: RSA 2048, CN as asked, ten years. */
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    CHECK_STR(cn, "sns.example.com");
    CHECK(EVP_PKEY_get_bits(X509_get0_pubkey(cert)) == 2048);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert));
    CHECK(days >= 3650);
    X509_free(cert);
    BIO_free(b);

    /* Envelopes for both versions and all three types verify. */
    const struct feedback_sns_message *cases[] = {&note, &confirm};
    for (int i = 0; i < 2; i++) {
        for (int v = 1; v <= 2; v++) {
            struct feedback_sns_message m = *cases[i];
            m.signature_version = v;
            char *env = feedback_sns_envelope(&m, key);
            CHECK(env && envelope_verify(env, pem));
            if (env)
                check_envelope_fields(env, &m);
            free(env);
            if (i == 0) { /* without a Subject */
                m.subject = NULL;
                env = feedback_sns_envelope(&m, key);
                CHECK(env && envelope_verify(env, pem) && !strstr(env, "Subject"));
                free(env);
            } else {
                m.type = FEEDBACK_SNS_UNSUBSCRIBE_CONFIRMATION;
                env = feedback_sns_envelope(&m, key);
                CHECK(env && envelope_verify(env, pem));
                free(env);
            }
        }
    }
    /* A tampered message no longer verifies; an unknown version is refused. */
    char *env = feedback_sns_envelope(&note, key);
    char *hello = env ? strstr(env, "Hello") : NULL;
    if (hello)
        hello[0] = 'J';
    CHECK(hello && !envelope_verify(env, pem));
    free(env);
    struct feedback_sns_message bad = note;
    bad.signature_version = 3;
    CHECK(feedback_sns_envelope(&bad, key) == NULL);

    /* Loading again gives the same key and certificate. */
    EVP_PKEY *key2 = NULL;
    char *pem2 = NULL;
    CHECK(feedback_sns_signing_load(key_path, cert_path, "other", &key2, &pem2, err, sizeof err) ==
          0);
    CHECK_STR(pem2, pem);
    CHECK(key2 && EVP_PKEY_eq(key, key2) == 1);
    EVP_PKEY_free(key2);
    free(pem2);
    EVP_PKEY_free(key);
    free(pem);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static char *pem_of(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = strndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

static void test_sns_signing_errors(const char *dir)
{
    char key_path[300], cert_path[300], err[256] = "";
    paths(dir, key_path, cert_path);
    EVP_PKEY *key = NULL;
    char *pem = NULL;
    /* Only one of the two: refused, nothing created. */
    unlink(cert_path);
    CHECK(feedback_sns_signing_load(key_path, cert_path, "x", &key, &pem, err, sizeof err) == -1);
    CHECK(strstr(err, "sns.crt") != NULL);
    CHECK(access(cert_path, F_OK) != 0);
    CHECK(key == NULL && pem == NULL);
    /* Create a pair again, then replace the key: a different RSA key, then an EC key. */
    unlink(key_path);
    CHECK(feedback_sns_signing_load(key_path, cert_path, "x", &key, &pem, err, sizeof err) == 0);
    EVP_PKEY_free(key);
    free(pem);
    EVP_PKEY *other = EVP_RSA_gen(1024);
    char *text = pem_of(other);
    write_file(key_path, text);
    CHECK(feedback_sns_signing_load(key_path, cert_path, "x", &key, &pem, err, sizeof err) == -1);
    CHECK(strstr(err, "public key") != NULL);
    free(text);
    EVP_PKEY_free(other);
    other = EVP_EC_gen("P-256");
    text = pem_of(other);
    write_file(key_path, text);
    CHECK(feedback_sns_signing_load(key_path, cert_path, "x", &key, &pem, err, sizeof err) == -1);
    CHECK(strstr(err, "not an RSA key") != NULL);
    free(text);
    EVP_PKEY_free(other);
    write_file(key_path, "garbage\n");
    CHECK(feedback_sns_signing_load(key_path, cert_path, "x", &key, &pem, err, sizeof err) == -1);
    CHECK(key == NULL && pem == NULL);
}

/* ---- composed emails ---- */

#define ORIGINAL                                                                                   \
    "Return-Path: <0100abc@bounce.example.net>\r\n"                                                \
    "From: Sender <sender@example.com>\r\n"                                                        \
    "To: user@example.org\r\n"                                                                     \
    "Subject: Hello there\r\n"                                                                     \
    "Message-ID:\r\n <orig-1@example.com>\r\n"                                                     \
    "MIME-Version: 1.0\r\n"                                                                        \
    "Content-Type: text/plain\r\n"                                                                 \
    "\r\n"                                                                                         \
    "The body.\r\n"

static struct feedback_compose composer(void)
{
    return (struct feedback_compose){.from = "MAILER-DAEMON@mx.example.net",
                                     .to = "sender@example.com",
                                     .hostname = "mx.example.net",
                                     .message_id = "0000014644fe5ef6-aaaa-000000",
                                     .message_id_domain = "email.example.net",
                                     .now_ms = 1401316859638,
                                     .original = ORIGINAL,
                                     .original_len = sizeof ORIGINAL - 1};
}

/* Every line ends in CRLF and has at most 998 octets before it. */
static bool lines_ok(const struct buf *b)
{
    size_t line = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\n') {
            if (i == 0 || b->data[i - 1] != '\r')
                return false;
            line = 0;
        } else if (++line > 999) { /* the CR counts here */
            return false;
        }
    }
    return b->len >= 2 && b->data[b->len - 1] == '\n';
}

static GMimeMessage *parse(const struct buf *b)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(b->data, b->len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    return msg;
}

static bool type_is(GMimeObject *o, const char *type, const char *subtype)
{
    return o && g_mime_content_type_is_type(g_mime_object_get_content_type(o), type, subtype);
}

static const char *header(GMimeMessage *m, const char *name)
{
    return g_mime_object_get_header(GMIME_OBJECT(m), name);
}

static void strip_cr(char *s)
{
    char *w = s;
    for (; *s; s++)
        if (*s != '\r')
            *w++ = *s;
    *w = '\0';
}

/* A part as text (its headers and content), for looking for fields. GMime writes LF line
 * ends, so the comparison ignores CRs (lines_ok checks the CRLFs of the message). */
static bool part_has(GMimeObject *o, const char *text)
{
    char *s = o ? g_mime_object_to_string(o, NULL) : NULL, *want = strdup(text);
    if (s)
        strip_cr(s);
    strip_cr(want);
    bool found = s && strstr(s, want);
    g_free(s);
    free(want);
    return found;
}

static const char *report_type(GMimeObject *o)
{
    return g_mime_content_type_get_parameter(g_mime_object_get_content_type(o), "report-type");
}

static void check_common(GMimeMessage *m, const char *subject, const char *auto_submitted)
{
    CHECK_STR(g_mime_message_get_subject(m), subject);
    CHECK_STR(header(m, "Auto-Submitted"), auto_submitted);
    CHECK_STR(g_mime_message_get_message_id(m), "0000014644fe5ef6-aaaa-000000@email.example.net");
    CHECK_STR(header(m, "Date"), "Wed, 28 May 2014 22:40:59 +0000");
    CHECK_STR(header(m, "MIME-Version"), "1.0");
}

/* A hard bounce as delivery records one: a 550 5.1.1 from mx.example.org. */
static struct store_event unknown_user_bounce(void)
{
    struct store_event e = event("Bounce", "user@example.org");
    strcpy(e.bounce_type, "Permanent");
    strcpy(e.status, "5.1.1");
    strcpy(e.diagnostic, "smtp; 550 5.1.1 user unknown");
    strcpy(e.remote_mta, "mx.example.org");
    e.created_ms = 1401316860000;
    e.processing_ms = 1000;
    return e;
}

static void test_compose_dsn(void)
{
    struct feedback_compose c = composer();
    struct store_event e1 = unknown_user_bounce();
    /* Untrusted text with a line break must not make a header field. */
    struct store_event e2 = event("Bounce", "evil@example.org\r\nBcc: x@example.com");
    strcpy(e2.bounce_type, "Transient");
    strcpy(e2.diagnostic, "retries ran out\nX-Evil: 1");
    const struct store_event *list[] = {&e1, &e2};
    struct buf out;
    buf_init(&out);
    CHECK(feedback_compose_dsn(&c, list, 2, &out) == 0);
    CHECK(lines_ok(&out));
    CHECK(!strstr(buf_cstr(&out), "\r\nBcc:") && !strstr(buf_cstr(&out), "\r\nX-Evil:"));
    GMimeMessage *m = parse(&out);
    CHECK(m != NULL);
    if (!m)
        return buf_free(&out);
    check_common(m, "Delivery Status Notification (Failure)", "auto-replied");
    GMimeObject *body = g_mime_message_get_mime_part(m);
    CHECK(type_is(body, "multipart", "report"));
    CHECK_STR(report_type(body), "delivery-status");
    GMimeMultipart *mp = GMIME_IS_MULTIPART(body) ? GMIME_MULTIPART(body) : NULL;
    CHECK(mp && g_mime_multipart_get_count(mp) == 3);
    if (mp && g_mime_multipart_get_count(mp) == 3) {
        GMimeObject *human = g_mime_multipart_get_part(mp, 0);
        GMimeObject *status = g_mime_multipart_get_part(mp, 1);
        GMimeObject *hdrs = g_mime_multipart_get_part(mp, 2);
        CHECK(type_is(human, "text", "plain") && part_has(human, "user@example.org"));
        CHECK(type_is(status, "message", "delivery-status"));
        CHECK(part_has(status, "\nReporting-MTA: dns; mx.example.net\r\n"));
        /* Arrival: the first event's acceptance (created - processing). */
        CHECK(part_has(status, "\nArrival-Date: Wed, 28 May 2014 22:40:59 +0000\r\n"));
        CHECK(part_has(status, "\r\n\r\nFinal-Recipient: rfc822; user@example.org\r\n"
                               "Action: failed\r\nStatus: 5.1.1\r\n"
                               "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
                               "Remote-MTA: dns; mx.example.org\r\n"));
        CHECK(part_has(status, "\r\n\r\nFinal-Recipient: rfc822; evil@example.org  Bcc: "
                               "x@example.com\r\nAction: failed\r\nStatus: 4.0.0\r\n"
                               "Diagnostic-Code: X-Sesame; retries ran out X-Evil: 1\r\n"));
        CHECK(type_is(hdrs, "text", "rfc822-headers"));
        CHECK(part_has(hdrs, "Subject: Hello there\r\n"));
        CHECK(!part_has(hdrs, "The body."));
    }
    g_object_unref(m);

    /* An original with bare LFs and an over-long header line still gives CRLF lines of at
     * most 998 octets; an empty one an empty headers part. */
    struct buf odd;
    buf_init(&odd);
    buf_puts(&odd, "Subject: x\nX-Long: ");
    for (int i = 0; i < 300; i++)
        buf_puts(&odd, "abcdefghij");
    buf_puts(&odd, "\n\nbody\n");
    c.original = odd.data;
    c.original_len = odd.len;
    buf_reset(&out);
    CHECK(feedback_compose_dsn(&c, list, 1, &out) == 0);
    CHECK(lines_ok(&out) && !strstr(buf_cstr(&out), "body"));
    c.original_len = 0;
    buf_reset(&out);
    CHECK(feedback_compose_dsn(&c, list, 1, &out) == 0);
    CHECK(lines_ok(&out));
    buf_reset(&out);
    CHECK(feedback_compose_arf(&c, &e1, &out) == 0);
    CHECK(lines_ok(&out));
    buf_free(&odd);

    /* No original: two parts. */
    c.original = NULL;
    buf_reset(&out);
    CHECK(feedback_compose_dsn(&c, list, 1, &out) == 0);
    m = parse(&out);
    body = m ? g_mime_message_get_mime_part(m) : NULL;
    CHECK(body && GMIME_IS_MULTIPART(body) &&
          g_mime_multipart_get_count(GMIME_MULTIPART(body)) == 2);
    if (m)
        g_object_unref(m);
    buf_free(&out);
}

static void test_compose_arf(void)
{
    struct feedback_compose c = composer();
    struct store_event e = event("Complaint", "user@example.org");
    struct buf out;
    buf_init(&out);
    CHECK(feedback_compose_arf(&c, &e, &out) == 0);
    CHECK(lines_ok(&out));
    GMimeMessage *m = parse(&out);
    CHECK(m != NULL);
    if (!m)
        return buf_free(&out);
    check_common(m, "Complaint about message", "auto-generated");
    GMimeObject *body = g_mime_message_get_mime_part(m);
    CHECK(type_is(body, "multipart", "report"));
    CHECK_STR(report_type(body), "feedback-report");
    GMimeMultipart *mp = GMIME_IS_MULTIPART(body) ? GMIME_MULTIPART(body) : NULL;
    CHECK(mp && g_mime_multipart_get_count(mp) == 3);
    if (mp && g_mime_multipart_get_count(mp) == 3) {
        GMimeObject *report = g_mime_multipart_get_part(mp, 1);
        GMimeObject *orig = g_mime_multipart_get_part(mp, 2);
        CHECK(type_is(g_mime_multipart_get_part(mp, 0), "text", "plain"));
        CHECK(type_is(report, "message", "feedback-report"));
        CHECK(part_has(report, "\nFeedback-Type: abuse\r\nUser-Agent: Sesame mailbox simulator\r\n"
                               "Version: 1\r\nOriginal-Rcpt-To: user@example.org\r\n"
                               "Arrival-Date: Wed, 28 May 2014 22:40:59 +0000\r\n"
                               "Reporting-MTA: dns; mx.example.net\r\n"));
        CHECK(type_is(orig, "message", "rfc822") && GMIME_IS_MESSAGE_PART(orig));
        if (GMIME_IS_MESSAGE_PART(orig)) {
            GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(orig));
            CHECK(inner && !strcmp(g_mime_message_get_subject(inner), "Hello there"));
        }
    }
    g_object_unref(m);

    /* Only the original's headers: text/rfc822-headers; the event's report fields. */
    c.original = "Subject: Hi\r\nMessage-ID: <a@b>\r\n";
    c.original_len = strlen(c.original);
    strcpy(e.user_agent, "ExampleFBL/1.0");
    strcpy(e.feedback_type, "fraud");
    e.arrival_ms = 1259832261000;
    buf_reset(&out);
    CHECK(feedback_compose_arf(&c, &e, &out) == 0);
    m = parse(&out);
    body = m ? g_mime_message_get_mime_part(m) : NULL;
    mp = body && GMIME_IS_MULTIPART(body) ? GMIME_MULTIPART(body) : NULL;
    CHECK(mp && g_mime_multipart_get_count(mp) == 3);
    if (mp && g_mime_multipart_get_count(mp) == 3) {
        CHECK(type_is(g_mime_multipart_get_part(mp, 2), "text", "rfc822-headers"));
        GMimeObject *report = g_mime_multipart_get_part(mp, 1);
        CHECK(part_has(report, "Feedback-Type: fraud\r\nUser-Agent: ExampleFBL/1.0\r\n"));
        CHECK(part_has(report, "Arrival-Date: Thu, 03 Dec 2009 09:24:21 +0000\r\n"));
    }
    if (m)
        g_object_unref(m);
    buf_free(&out);
}

static void test_compose_autoreply(void)
{
    struct feedback_compose c = composer();
    c.to = "0100abc@bounce.example.net";
    struct buf out;
    buf_init(&out);
    CHECK(feedback_compose_autoreply(&c, "ooto@simulator.amazonses.com", &out) == 0);
    CHECK(lines_ok(&out));
    GMimeMessage *m = parse(&out);
    CHECK(m != NULL);
    if (m) {
        check_common(m, "Out of the office", "auto-replied");
        CHECK_STR(header(m, "From"), "ooto@simulator.amazonses.com");
        CHECK_STR(header(m, "To"), "0100abc@bounce.example.net");
        CHECK_STR(header(m, "In-Reply-To"), "<orig-1@example.com>");
        CHECK(type_is(g_mime_message_get_mime_part(m), "text", "plain"));
        g_object_unref(m);
    }
    /* No original: no In-Reply-To. */
    c.original = NULL;
    buf_reset(&out);
    CHECK(feedback_compose_autoreply(&c, "ooto@simulator.amazonses.com", &out) == 0);
    CHECK(!strstr(buf_cstr(&out), "In-Reply-To"));
    buf_free(&out);
}

static void test_compose_forward(void)
{
    struct feedback_compose c = composer();
    static const char report[] = "From: postmaster@example.org\r\n"
                                 "Subject: Undelivered Mail\r\n"
                                 "Content-Type: text/plain; charset=utf-8\r\n"
                                 "\r\n"
                                 "caf\xc3\xa9 failed\r\n";
    struct buf out;
    buf_init(&out);
    CHECK(feedback_compose_forward(&c, "Undelivered Mail", report, sizeof report - 1, &out) == 0);
    CHECK(lines_ok(&out));
    CHECK(memmem(out.data, out.len, report, sizeof report - 1) != NULL);
    GMimeMessage *m = parse(&out);
    CHECK(m != NULL);
    if (m) {
        check_common(m, "Undelivered Mail", "auto-generated");
        CHECK_STR(header(m, "From"), "MAILER-DAEMON@mx.example.net");
        GMimeObject *body = g_mime_message_get_mime_part(m);
        CHECK(type_is(body, "multipart", "mixed"));
        GMimeMultipart *mp = GMIME_IS_MULTIPART(body) ? GMIME_MULTIPART(body) : NULL;
        CHECK(mp && g_mime_multipart_get_count(mp) == 2);
        if (mp && g_mime_multipart_get_count(mp) == 2) {
            CHECK(type_is(g_mime_multipart_get_part(mp, 0), "text", "plain"));
            GMimeObject *att = g_mime_multipart_get_part(mp, 1);
            CHECK(type_is(att, "message", "rfc822"));
            CHECK_STR(g_mime_object_get_header(att, "Content-Transfer-Encoding"), "8bit");
        }
        g_object_unref(m);
    }
    buf_free(&out);
}

/* The decoded content of a message's single text part. */
static char *text_of(GMimeMessage *m)
{
    GMimeObject *part = g_mime_message_get_mime_part(m);
    return part && GMIME_IS_TEXT_PART(part) ? g_mime_text_part_get_text(GMIME_TEXT_PART(part))
                                            : NULL;
}

static void test_compose_text(void)
{
    struct feedback_compose c = composer();
    /* A long JSON line with non-ASCII, '=' and a trailing space. */
    struct buf text, out;
    buf_init(&text);
    buf_init(&out);
    buf_puts(&text, "{\"message\":\"caf\xc3\xa9 = ");
    for (int i = 0; i < 300; i++)
        buf_puts(&text, "0123456789");
    buf_puts(&text, "\"} ");
    CHECK(feedback_compose_text(&c, "AWS Notification Message", buf_cstr(&text), &out) == 0);
    CHECK(lines_ok(&out));
    for (size_t i = 0, line = 0; i < out.len; i++) { /* quoted-printable: at most 76 */
        line = out.data[i] == '\n' ? 0 : line + 1;
        if (line > 77)
            CHECK(!"line over 76");
    }
    GMimeMessage *m = parse(&out);
    CHECK(m != NULL);
    if (m) {
        check_common(m, "AWS Notification Message", "auto-generated");
        GMimeObject *part = g_mime_message_get_mime_part(m);
        CHECK(type_is(part, "text", "plain"));
        CHECK_STR(g_mime_object_get_content_type_parameter(part, "charset"), "UTF-8");
        char *decoded = text_of(m);
        CHECK_STR(decoded, buf_cstr(&text));
        g_free(decoded);
        g_object_unref(m);
    }
    /* Lines and a non-ASCII subject (RFC 2047). */
    buf_reset(&out);
    const char *subject = "Notificaci\xc3\xb3n de Amazon SES \xe2\x80\x94 prueba";
    CHECK(feedback_compose_text(&c, subject, "line one\nline two\n", &out) == 0);
    CHECK(lines_ok(&out));
    m = parse(&out);
    if (m) {
        CHECK_STR(g_mime_message_get_subject(m), subject);
        char *decoded = text_of(m);
        CHECK(decoded && strstr(decoded, "line one") && strstr(decoded, "line two"));
        g_free(decoded);
        g_object_unref(m);
    }
    buf_free(&text);
    buf_free(&out);
}

/* ---- round trips through the report parser (report.c) ---- */

static struct feedback_report parsed; /* large: not on the stack */

static void test_round_trips(void)
{
    struct feedback_compose c = composer();
    struct store_event e1 = unknown_user_bounce();
    struct store_event e2 = event("Bounce", "other@example.org");
    strcpy(e2.bounce_type, "Transient");
    strcpy(e2.diagnostic, "retries ran out");
    strcpy(e2.remote_mta, "dns; mx2.example.org"); /* typed already: kept as it is */
    const struct store_event *list[] = {&e1, &e2};
    struct buf out;
    buf_init(&out);
    CHECK(feedback_compose_dsn(&c, list, 2, &out) == 0);
    CHECK(feedback_report_parse(out.data, out.len, &parsed) == FEEDBACK_REPORT_DSN);
    CHECK_STR(parsed.reporting_mta, "dns; mx.example.net");
    CHECK(parsed.arrival_ms == 1401316859000);
    CHECK(parsed.date_ms == 1401316859000);
    CHECK_STR(parsed.subject, "Delivery Status Notification (Failure)");
    CHECK_STR(parsed.from, "MAILER-DAEMON@mx.example.net");
    CHECK(parsed.recipient_count == 2 && parsed.recipient_overflow == 0);
    CHECK_STR(parsed.recipients[0].final_recipient, "user@example.org");
    CHECK_STR(parsed.recipients[0].action, "failed");
    CHECK_STR(parsed.recipients[0].status, "5.1.1");
    CHECK_STR(parsed.recipients[0].diagnostic, "smtp; 550 5.1.1 user unknown");
    CHECK_STR(parsed.recipients[0].remote_mta, "dns; mx.example.org");
    CHECK_STR(parsed.recipients[1].final_recipient, "other@example.org");
    CHECK_STR(parsed.recipients[1].status, "4.0.0");
    CHECK_STR(parsed.recipients[1].diagnostic, "X-Sesame; retries ran out");
    CHECK_STR(parsed.recipients[1].remote_mta, "dns; mx2.example.org");
    CHECK_STR(parsed.original_message_id, "orig-1@example.com");
    CHECK_STR(parsed.original_return_path, "0100abc@bounce.example.net");

    struct store_event e = event("Complaint", "user@example.org");
    e.arrival_ms = 1259832261000;
    buf_reset(&out);
    CHECK(feedback_compose_arf(&c, &e, &out) == 0);
    CHECK(feedback_report_parse(out.data, out.len, &parsed) == FEEDBACK_REPORT_ARF);
    CHECK_STR(parsed.feedback_type, "abuse");
    CHECK_STR(parsed.user_agent, "Sesame mailbox simulator");
    CHECK_STR(parsed.original_rcpt, "user@example.org");
    CHECK(parsed.arrival_ms == 1259832261000);
    CHECK_STR(parsed.original_message_id, "orig-1@example.com");
    CHECK_STR(parsed.original_return_path, "0100abc@bounce.example.net");

    c.to = "0100abc@bounce.example.net";
    buf_reset(&out);
    CHECK(feedback_compose_autoreply(&c, "ooto@simulator.amazonses.com", &out) == 0);
    CHECK(feedback_report_parse(out.data, out.len, &parsed) == FEEDBACK_REPORT_AUTOREPLY);
    CHECK_STR(parsed.original_message_id, "orig-1@example.com");
    CHECK_STR(parsed.from, "ooto@simulator.amazonses.com");
    buf_free(&out);
}

static bool private_address(const char *text)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    return feedback_address_private((const struct sockaddr *)&ss);
}

/* What a subscription's endpoint may not reach, IPv4 inside IPv6 included. */
static void test_private_addresses(void)
{
    const char *inside[] = {"127.0.0.1",
                            "10.1.2.3",
                            "172.16.0.1",
                            "172.31.255.255",
                            "192.168.1.1",
                            "169.254.169.254",
                            "100.64.0.1",
                            "0.0.0.0",
                            "192.0.0.170",
                            "198.18.0.1",
                            "198.19.255.255",
                            "224.0.0.1",
                            "255.255.255.255",
                            "::1",
                            "::",
                            "fe80::1",
                            "fd00::1",
                            "::ffff:10.0.0.1",
                            "64:ff9b::a9fe:a9fe",
                            "2002:0a00:0001::1"};
    const char *outside[] = {"8.8.8.8",          "172.32.0.1",     "198.20.0.1",
                             "100.128.0.1",      "203.0.113.7",    "2001:db8::1",
                             "2606:4700::1111",  "::ffff:8.8.8.8", "64:ff9b::808:808",
                             "2002:0808:0808::1"};
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        CHECK(private_address(inside[i]));
        if (!private_address(inside[i]))
            fprintf(stderr, "  taken as public: %s\n", inside[i]);
    }
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        CHECK(!private_address(outside[i]));
        if (private_address(outside[i]))
            fprintf(stderr, "  taken as private: %s\n", outside[i]);
    }
}

int main(void)
{
    g_mime_init();
    test_iso8601();
    test_private_addresses();
    test_json_bounce_dsn();
    test_json_bounce_plain();
    test_json_complaint();
    test_json_delivery();
    test_json_edges();
    test_sns_string_to_sign();

    char dir[] = "/tmp/sesame-feedback-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    test_sns_signing(dir);
    test_sns_signing_errors(dir);
    char key_path[300], cert_path[300];
    paths(dir, key_path, cert_path);
    unlink(key_path);
    unlink(cert_path);
    CHECK(rmdir(dir) == 0); /* no temporary file was left */

    test_compose_dsn();
    test_compose_arf();
    test_compose_autoreply();
    test_compose_forward();
    test_compose_text();
    test_round_trips();
    g_mime_shutdown();
    return UNIT_END();
}
