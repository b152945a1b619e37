/* The store's side of feedback and notifications (migration 6): events' feedback fields,
 * identities' notification settings, topics, subscriptions, the outbox, kept feedback
 * reports and derived keys. */
#include "store/store.h"
#include "unit.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCOUNT "111122223333"
#define OTHER "444455556666"
#define REGION "us-east-1"
#define TOPIC_A "arn:aws:sns:us-east-1:111122223333:a"
#define TOPIC_B "arn:aws:sns:us-east-1:111122223333:b"

static struct store *open_store(const char *dir)
{
    struct sesame_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.store_path, sizeof cfg.store_path, "%s/test.db", dir);
    struct store *s = NULL;
    char err[256];
    int rc = store_open(&cfg, &s, err, sizeof err);
    CHECK(rc == STORE_OK);
    if (rc != STORE_OK)
        fprintf(stderr, "store_open: %s\n", err);
    return s;
}

static void raw_exec(const char *dir, const char *sql)
{
    char path[512];
    snprintf(path, sizeof path, "%s/test.db", dir);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db, sql, 0, 0, 0) == SQLITE_OK);
    sqlite3_close(db);
}

/* ---- messages and events ---- */

static void message_insert(struct store_conn *c, const char *id)
{
    struct store_message m = {.account_id = ACCOUNT,
                              .region = REGION,
                              .source = "from@example.com",
                              .identity = "example.com",
                              .created_ms = 1000,
                              .data = "Subject: x\r\n\r\nhi\r\n",
                              .meta = "{\"Id\":\"m\"}"};
    snprintf(m.id, sizeof m.id, "%s", id);
    m.data_len = strlen(m.data);
    const char *rcpts[] = {"to@example.net"};
    CHECK(store_message_insert(c, &m, rcpts, 1) == STORE_OK);
}

static void test_message_get(struct store_conn *c)
{
    message_insert(c, "msg-get");
    struct store_message m;
    char *meta = NULL;
    CHECK(store_message_get(c, "msg-get", &m, &meta) == STORE_OK);
    CHECK_STR(m.id, "msg-get");
    CHECK_STR(m.account_id, ACCOUNT);
    CHECK_STR(m.region, REGION);
    CHECK_STR(m.source, "from@example.com");
    CHECK_STR(m.identity, "example.com");
    CHECK(m.created_ms == 1000 && !m.captured && !m.data && m.data_len == 0 && !m.queued);
    CHECK_STR(meta, "{\"Id\":\"m\"}");
    free(meta);
    meta = (char *)"untouched";
    CHECK(store_message_get(c, "no-such", &m, &meta) == STORE_NOT_FOUND && !meta);
}

static struct store_event event_complaint(void)
{
    struct store_event e = {.message_id = "msg-ev",
                            .idx = 0,
                            .account_id = ACCOUNT,
                            .region = REGION,
                            .type = "Complaint",
                            .recipient = "to@example.net",
                            .created_ms = 5000,
                            .processing_ms = 4000,
                            .feedback_id = "0100abc-feedback",
                            .feedback_type = "abuse",
                            .user_agent = "Yahoo!-Mail-Feedback/1.0",
                            .arrival_ms = 2000,
                            .report_ms = 4500};
    return e;
}

struct events_seen {
    struct store_event last[4];
    int n;
};

static void event_collect(const struct store_event *e, void *ctx)
{
    struct events_seen *s = ctx;
    if (s->n < 4)
        s->last[s->n] = *e;
    s->n++;
}

static void test_events(struct store_conn *c)
{
    message_insert(c, "msg-ev");
    struct store_event bounce = {.message_id = "msg-ev",
                                 .account_id = ACCOUNT,
                                 .region = REGION,
                                 .type = "Bounce",
                                 .bounce_type = "Permanent",
                                 .bounce_subtype = "General",
                                 .recipient = "to@example.net",
                                 .created_ms = 3000,
                                 .status = "5.1.1",
                                 .action = "failed",
                                 .feedback_id = "0100abc-bounce",
                                 .final_recipient = "forwarded@example.org"};
    struct store_event complaint = event_complaint();
    CHECK(store_event_insert(c, &bounce) == STORE_OK);
    CHECK(store_event_insert(c, &complaint) == STORE_OK);
    struct events_seen *seen = calloc(1, sizeof *seen);
    CHECK(store_event_list(c, "msg-ev", event_collect, seen) == STORE_OK && seen->n == 2);
    const struct store_event *b = &seen->last[0], *e = &seen->last[1];
    CHECK_STR(b->type, "Bounce");
    CHECK_STR(b->feedback_id, "0100abc-bounce");
    CHECK_STR(b->feedback_type, "");
    CHECK(b->arrival_ms == 0 && b->report_ms == 0);
    CHECK_STR(b->final_recipient, "forwarded@example.org");
    CHECK_STR(e->type, "Complaint");
    CHECK_STR(e->final_recipient, "");
    CHECK_STR(e->feedback_id, "0100abc-feedback");
    CHECK_STR(e->feedback_type, "abuse");
    CHECK_STR(e->user_agent, "Yahoo!-Mail-Feedback/1.0");
    CHECK(e->arrival_ms == 2000 && e->report_ms == 4500 && e->created_ms == 5000 &&
          e->processing_ms == 4000);
    free(seen);
}

/* ---- notification settings ---- */

struct notify_seen {
    char names[4][STORE_IDENTITY_LEN];
    int n;
};

static void notify_collect(const struct store_notify *n, void *ctx)
{
    struct notify_seen *s = ctx;
    if (s->n < 4)
        snprintf(s->names[s->n], sizeof s->names[0], "%s", n->identity);
    s->n++;
}

static void notify_put(struct store_conn *c, const char *identity, const char *bounce,
                       const char *complaint, const char *delivery, bool forwarding)
{
    struct store_notify n = {.account_id = ACCOUNT, .region = REGION, .forwarding = forwarding};
    snprintf(n.identity, sizeof n.identity, "%s", identity);
    snprintf(n.bounce_topic, sizeof n.bounce_topic, "%s", bounce);
    snprintf(n.complaint_topic, sizeof n.complaint_topic, "%s", complaint);
    snprintf(n.delivery_topic, sizeof n.delivery_topic, "%s", delivery);
    CHECK(store_notify_put(c, &n) == STORE_OK);
}

static void test_notify(struct store_conn *c)
{
    /* No row: the defaults, keys filled in. */
    struct store_notify n;
    memset(&n, 'x', sizeof n);
    CHECK(store_notify_get(c, ACCOUNT, REGION, "n.example", &n) == STORE_NOT_FOUND);
    CHECK_STR(n.account_id, ACCOUNT);
    CHECK_STR(n.region, REGION);
    CHECK_STR(n.identity, "n.example");
    CHECK(n.forwarding && !n.bounce_topic[0] && !n.complaint_topic[0] && !n.delivery_topic[0]);

    uint64_t before = store_generation(STORE_TOPIC_IDENTITIES);
    notify_put(c, "n.example", TOPIC_A, TOPIC_B, "", false);
    CHECK(store_generation(STORE_TOPIC_IDENTITIES) != before);
    CHECK(store_notify_get(c, ACCOUNT, REGION, "n.example", &n) == STORE_OK);
    CHECK_STR(n.bounce_topic, TOPIC_A);
    CHECK_STR(n.complaint_topic, TOPIC_B);
    CHECK_STR(n.delivery_topic, "");
    CHECK(!n.forwarding);
    /* Keys are compared as given, and per region. */
    CHECK(store_notify_get(c, ACCOUNT, "eu-west-1", "n.example", &n) == STORE_NOT_FOUND);
    CHECK(store_notify_get(c, ACCOUNT, REGION, "N.example", &n) == STORE_NOT_FOUND);

    notify_put(c, "a@n.example", "", "", TOPIC_A, true);
    notify_put(c, "b@n.example", "", TOPIC_B, "", true);
    struct notify_seen a = {0}, b = {0}, none = {0};
    CHECK(store_notify_list_topic(c, TOPIC_A, notify_collect, &a) == STORE_OK && a.n == 2);
    CHECK_STR(a.names[0], "a@n.example");
    CHECK_STR(a.names[1], "n.example");
    CHECK(store_notify_list_topic(c, TOPIC_B, notify_collect, &b) == STORE_OK && b.n == 2);
    CHECK(store_notify_list_topic(c, "", notify_collect, &none) == STORE_OK && none.n == 0);

    CHECK(store_notify_delete(c, ACCOUNT, REGION, "b@n.example") == STORE_OK);
    CHECK(store_notify_delete(c, ACCOUNT, REGION, "b@n.example") == STORE_NOT_FOUND);
    CHECK(store_notify_get(c, ACCOUNT, REGION, "b@n.example", &n) == STORE_NOT_FOUND &&
          n.forwarding);
}

/* A deleted identity forgets its settings; a domain only its own, not its addresses'. */
static void test_identity_delete(struct store_conn *c)
{
    struct store_identity id = {.account_id = ACCOUNT,
                                .region = REGION,
                                .identity = "del.example",
                                .kind = IDENTITY_DOMAIN,
                                .status = "Success",
                                .token = "tok"};
    struct store_identity email = id;
    strcpy(email.identity, "x@del.example");
    email.kind = IDENTITY_EMAIL;
    CHECK(store_identity_put(c, &id) == STORE_OK);
    CHECK(store_identity_put(c, &email) == STORE_OK);
    notify_put(c, id.identity, TOPIC_A, TOPIC_A, "", false);
    notify_put(c, email.identity, TOPIC_B, TOPIC_B, "", false);
    struct store_notify n;
    CHECK(store_identity_delete(c, ACCOUNT, REGION, id.identity) == STORE_OK);
    CHECK(store_notify_get(c, ACCOUNT, REGION, id.identity, &n) == STORE_NOT_FOUND);
    CHECK(store_notify_get(c, ACCOUNT, REGION, email.identity, &n) == STORE_OK && !n.forwarding);
    CHECK(store_identity_delete(c, ACCOUNT, REGION, email.identity) == STORE_OK);
    CHECK(store_notify_get(c, ACCOUNT, REGION, email.identity, &n) == STORE_NOT_FOUND);
    /* Settings without an identity go too; the identity still reports it was not there. */
    notify_put(c, "gone.example", TOPIC_A, TOPIC_A, "", false);
    CHECK(store_identity_delete(c, ACCOUNT, REGION, "gone.example") == STORE_NOT_FOUND);
    CHECK(store_notify_get(c, ACCOUNT, REGION, "gone.example", &n) == STORE_NOT_FOUND);
}

/* ---- topics and subscriptions ---- */

struct names_seen {
    char names[8][STORE_ARN_LEN + 40];
    int n;
};

static void names_add(struct names_seen *s, const char *name)
{
    if (s->n < 8)
        snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
    s->n++;
}

static void topic_collect(const struct store_topic *t, void *ctx)
{
    names_add(ctx, t->arn);
}

static void subscription_collect(const struct store_subscription *s, void *ctx)
{
    names_add(ctx, s->arn);
}

static void outbox_collect(const struct store_outbox *o, void *ctx)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)o->id);
    names_add(ctx, id);
}

static void topic_insert(struct store_conn *c, const char *account, const char *region,
                         const char *name)
{
    struct store_topic t = {.created_ms = 10};
    snprintf(t.arn, sizeof t.arn, "arn:aws:sns:%s:%s:%s", region, account, name);
    snprintf(t.account_id, sizeof t.account_id, "%s", account);
    snprintf(t.region, sizeof t.region, "%s", region);
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.display_name, sizeof t.display_name, "Display %s", name);
    CHECK(store_topic_insert(c, &t) == STORE_OK);
    CHECK(store_topic_insert(c, &t) == STORE_EXISTS);
}

static void test_topics(struct store_conn *c)
{
    topic_insert(c, ACCOUNT, REGION, "b");
    topic_insert(c, ACCOUNT, REGION, "a");
    topic_insert(c, ACCOUNT, REGION, "c");
    topic_insert(c, ACCOUNT, "eu-west-1", "a");
    topic_insert(c, OTHER, REGION, "a");
    struct store_topic t;
    CHECK(store_topic_get(c, TOPIC_A, &t) == STORE_OK && t.created_ms == 10);
    CHECK_STR(t.account_id, ACCOUNT);
    CHECK_STR(t.region, REGION);
    CHECK_STR(t.name, "a");
    CHECK_STR(t.display_name, "Display a");
    CHECK(store_topic_get(c, "arn:aws:sns:us-east-1:111122223333:zz", &t) == STORE_NOT_FOUND);
    /* By ARN, one account and region, paged. */
    struct names_seen all = {0}, page = {0};
    CHECK(store_topic_list(c, ACCOUNT, REGION, "", 10, topic_collect, &all) == STORE_OK &&
          all.n == 3);
    CHECK_STR(all.names[0], TOPIC_A);
    CHECK_STR(all.names[2], "arn:aws:sns:us-east-1:111122223333:c");
    CHECK(store_topic_list(c, ACCOUNT, REGION, TOPIC_A, 1, topic_collect, &page) == STORE_OK &&
          page.n == 1);
    CHECK_STR(page.names[0], TOPIC_B);
}

static void subscription_put(struct store_conn *c, const char *topic, const char *id,
                             const char *endpoint, bool confirmed)
{
    struct store_subscription s = {.account_id = ACCOUNT,
                                   .region = REGION,
                                   .protocol = "https",
                                   .confirmed = confirmed,
                                   .created_ms = 20};
    snprintf(s.arn, sizeof s.arn, "%s:%s", topic, id);
    snprintf(s.topic_arn, sizeof s.topic_arn, "%s", topic);
    snprintf(s.endpoint, sizeof s.endpoint, "%s", endpoint);
    snprintf(s.token, sizeof s.token, "token-%s", id);
    CHECK(store_subscription_put(c, &s) == STORE_OK);
}

static void test_subscriptions(struct store_conn *c)
{
    subscription_put(c, TOPIC_A, "2", "https://hook.example/a2", false);
    subscription_put(c, TOPIC_A, "1", "https://hook.example/a1", false);
    subscription_put(c, TOPIC_B, "3", "https://hook.example/b3", true);
    struct store_subscription s;
    CHECK(store_subscription_get(c, TOPIC_A ":1", &s) == STORE_OK && !s.confirmed &&
          s.created_ms == 20);
    CHECK_STR(s.topic_arn, TOPIC_A);
    CHECK_STR(s.protocol, "https");
    CHECK_STR(s.endpoint, "https://hook.example/a1");
    CHECK_STR(s.token, "token-1");
    /* Put replaces: confirming. */
    CHECK(!s.authenticate_unsubscribe);
    s.confirmed = s.authenticate_unsubscribe = true;
    CHECK(store_subscription_put(c, &s) == STORE_OK);
    CHECK(store_subscription_get(c, TOPIC_A ":1", &s) == STORE_OK && s.confirmed &&
          s.authenticate_unsubscribe);
    CHECK(store_subscription_find(c, TOPIC_A, "https", "https://hook.example/a2", &s) == STORE_OK &&
          !strcmp(s.arn, TOPIC_A ":2"));
    CHECK(store_subscription_find(c, TOPIC_A, "http", "https://hook.example/a2", &s) ==
          STORE_NOT_FOUND);
    CHECK(store_subscription_find(c, TOPIC_B, "https", "https://hook.example/a2", &s) ==
          STORE_NOT_FOUND);
    /* by confirmation token, within one topic only; an empty token matches nothing */
    CHECK(store_subscription_by_token(c, TOPIC_A, "token-2", &s) == STORE_OK &&
          !strcmp(s.arn, TOPIC_A ":2"));
    CHECK(store_subscription_by_token(c, TOPIC_B, "token-2", &s) == STORE_NOT_FOUND);
    CHECK(store_subscription_by_token(c, TOPIC_A, "token-9", &s) == STORE_NOT_FOUND);
    CHECK(store_subscription_by_token(c, TOPIC_A, "", &s) == STORE_NOT_FOUND);

    struct names_seen topic = {0}, account = {0}, page = {0}, other = {0};
    CHECK(store_subscription_list(c, ACCOUNT, TOPIC_A, "", 10, subscription_collect, &topic) ==
              STORE_OK &&
          topic.n == 2);
    CHECK_STR(topic.names[0], TOPIC_A ":1");
    CHECK_STR(topic.names[1], TOPIC_A ":2");
    CHECK(store_subscription_list(c, ACCOUNT, NULL, "", 10, subscription_collect, &account) ==
              STORE_OK &&
          account.n == 3);
    CHECK_STR(account.names[2], TOPIC_B ":3");
    CHECK(store_subscription_list(c, ACCOUNT, NULL, TOPIC_A ":1", 1, subscription_collect, &page) ==
              STORE_OK &&
          page.n == 1);
    CHECK_STR(page.names[0], TOPIC_A ":2");
    CHECK(store_subscription_list(c, OTHER, TOPIC_A, "", 10, subscription_collect, &other) ==
              STORE_OK &&
          other.n == 0);

    CHECK(store_subscription_delete(c, TOPIC_A ":2") == STORE_OK);
    CHECK(store_subscription_delete(c, TOPIC_A ":2") == STORE_NOT_FOUND);
    CHECK(store_subscription_get(c, TOPIC_A ":2", &s) == STORE_NOT_FOUND);
    subscription_put(c, TOPIC_A, "2", "https://hook.example/a2", false);
}

/* ---- the outbox ---- */

static int64_t outbox_insert(struct store_conn *c, const char *topic, const char *sub,
                             int64_t next_ms, const char *body)
{
    struct store_outbox o = {.message_type = "Notification",
                             .message_id = "6e1b0c3a-0000-4000-8000-000000000001",
                             .body = body,
                             .created_ms = 30,
                             .next_ms = next_ms};
    snprintf(o.topic_arn, sizeof o.topic_arn, "%s", topic);
    snprintf(o.subscription_arn, sizeof o.subscription_arn, "%s:%s", topic, sub);
    snprintf(o.url, sizeof o.url, "https://hook.example/%s", sub);
    CHECK(store_outbox_insert(c, &o) == STORE_OK && o.id > 0);
    return o.id;
}

struct forwarded_seen {
    int64_t id;
    int found;
    bool forwarded;
};

static void forwarded_keep(const struct store_outbox *o, void *ctx)
{
    struct forwarded_seen *s = ctx;
    if (o->id == s->id) {
        s->found++;
        s->forwarded = o->forwarded;
    }
}

/* A row inserted forwarded reads back so, is never claimed; another message's row is not
 * touched by a claim. Far in the future: no other test's due rows change. */
static void test_outbox_forwarded(struct store_conn *c)
{
    struct store_outbox o = {.message_type = "Notification",
                             .message_id = "6e1b0c3a-0000-4000-8000-000000000009",
                             .body = "{}",
                             .created_ms = 30,
                             .next_ms = INT64_C(4000000000000),
                             .forwarded = true};
    snprintf(o.topic_arn, sizeof o.topic_arn, "%s", TOPIC_B);
    snprintf(o.subscription_arn, sizeof o.subscription_arn, "%s:9", TOPIC_B);
    snprintf(o.url, sizeof o.url, "https://hook.example/9");
    CHECK(store_outbox_insert(c, &o) == STORE_OK);
    struct store_outbox other = o;
    other.forwarded = false;
    snprintf(other.message_id, sizeof other.message_id, "6e1b0c3a-0000-4000-8000-00000000000a");
    CHECK(store_outbox_insert(c, &other) == STORE_OK);
    CHECK(store_outbox_forwarded(c, o.message_id) == STORE_NOT_FOUND);
    struct forwarded_seen a = {o.id, 0, false}, b = {other.id, 0, true};
    CHECK(store_outbox_due(c, INT64_C(4000000000000), 0, 1000, forwarded_keep, &a) == STORE_OK);
    CHECK(store_outbox_due(c, INT64_C(4000000000000), 0, 1000, forwarded_keep, &b) == STORE_OK);
    CHECK(a.found == 1 && a.forwarded);
    CHECK(b.found == 1 && !b.forwarded);
    CHECK(store_outbox_delete(c, o.id) == STORE_OK);
    CHECK(store_outbox_delete(c, other.id) == STORE_OK);
}

static void count_row(const struct store_outbox *o, void *ctx)
{
    (void)o;
    (*(int *)ctx)++;
}

/* Failed rows are kept, the newest only; pending ones are never trimmed. Last of the
 * tests: it trims every failed row but two. */
static void test_outbox_trim_failed(struct store_conn *c)
{
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = outbox_insert(c, TOPIC_B, "t", INT64_C(4000000000000), "{}");
        CHECK(store_outbox_update(c, ids[i], 10, INT64_C(4000000000000), true, "HTTP 500") ==
              STORE_OK);
    }
    int64_t pending = outbox_insert(c, TOPIC_B, "t", INT64_C(4000000000000), "{}");
    CHECK(store_outbox_trim_failed(c, 2) == STORE_OK);
    int failed = 0, all = 0;
    CHECK(store_outbox_list(c, "failed", 1000, count_row, &failed) == STORE_OK && failed == 2);
    struct forwarded_seen newest = {ids[4], 0, false}, oldest = {ids[2], 0, false};
    CHECK(store_outbox_list(c, "failed", 1000, forwarded_keep, &newest) == STORE_OK);
    CHECK(store_outbox_list(c, "failed", 1000, forwarded_keep, &oldest) == STORE_OK);
    CHECK(newest.found == 1 && oldest.found == 0);
    CHECK(store_outbox_list(c, "pending", 1000, count_row, &all) == STORE_OK && all >= 1);
    CHECK(store_outbox_trim_failed(c, 10) == STORE_OK); /* fewer than kept: nothing */
    failed = 0;
    CHECK(store_outbox_list(c, "failed", 1000, count_row, &failed) == STORE_OK && failed == 2);
    CHECK(store_outbox_delete(c, pending) == STORE_OK);
}

struct outbox_seen {
    struct store_outbox last;
    char body[64];
    int n;
};

static void outbox_keep(const struct store_outbox *o, void *ctx)
{
    struct outbox_seen *s = ctx;
    s->last = *o;
    snprintf(s->body, sizeof s->body, "%s", o->body);
    s->last.body = NULL; /* borrowed: gone after the callback */
    s->n++;
}

static void test_outbox(struct store_conn *c)
{
    int64_t first = outbox_insert(c, TOPIC_B, "3", 100, "{\"n\":1}");
    int64_t second = outbox_insert(c, TOPIC_B, "3", 200, "{\"n\":2}");
    int64_t later = outbox_insert(c, TOPIC_B, "3", 900, "{\"n\":3}");
    CHECK(first < second && second < later);
    /* Due: pending, next_ms <= now, after after_id, by id. */
    struct outbox_seen due = {0};
    CHECK(store_outbox_due(c, 500, 0, 10, outbox_keep, &due) == STORE_OK && due.n == 2);
    CHECK(due.last.id == second && due.last.next_ms == 200 && due.last.attempts == 0 &&
          due.last.created_ms == 30);
    CHECK_STR(due.body, "{\"n\":2}");
    CHECK_STR(due.last.state, "pending");
    CHECK_STR(due.last.url, "https://hook.example/3");
    CHECK_STR(due.last.subscription_arn, TOPIC_B ":3");
    CHECK_STR(due.last.topic_arn, TOPIC_B);
    CHECK_STR(due.last.message_type, "Notification");
    CHECK_STR(due.last.message_id, "6e1b0c3a-0000-4000-8000-000000000001");
    CHECK(!due.last.forwarded);
    /* One fallback forward claims every row of the SNS message, once. */
    CHECK(store_outbox_forwarded(c, "6e1b0c3a-0000-4000-8000-000000000001") == STORE_OK);
    CHECK(store_outbox_forwarded(c, "6e1b0c3a-0000-4000-8000-000000000001") == STORE_NOT_FOUND);
    CHECK(store_outbox_forwarded(c, "no-such-message") == STORE_NOT_FOUND);
    struct outbox_seen marked = {0};
    CHECK(store_outbox_due(c, 500, 0, 10, outbox_keep, &marked) == STORE_OK && marked.n == 2 &&
          marked.last.forwarded);
    struct outbox_seen one = {0}, after = {0};
    CHECK(store_outbox_due(c, 500, 0, 1, outbox_keep, &one) == STORE_OK && one.n == 1 &&
          one.last.id == first);
    CHECK(store_outbox_due(c, 500, first, 10, outbox_keep, &after) == STORE_OK && after.n == 1 &&
          after.last.id == second);

    /* Another attempt later: not due now. */
    CHECK(store_outbox_update(c, first, 1, 1000, false, "HTTP 500") == STORE_OK);
    struct outbox_seen retried = {0};
    CHECK(store_outbox_due(c, 500, 0, 10, outbox_keep, &retried) == STORE_OK && retried.n == 1 &&
          retried.last.id == second);
    struct outbox_seen at_1000 = {0};
    CHECK(store_outbox_due(c, 1000, 0, 1, outbox_keep, &at_1000) == STORE_OK &&
          at_1000.last.id == first && at_1000.last.attempts == 1);
    CHECK_STR(at_1000.last.last_error, "HTTP 500");
    /* Failed: kept, never due again. */
    CHECK(store_outbox_update(c, second, 5, 0, true, "gave up") == STORE_OK);
    struct outbox_seen none = {0}, failed = {0}, all = {0};
    CHECK(store_outbox_due(c, 500, 0, 10, outbox_keep, &none) == STORE_OK && none.n == 0);
    CHECK(store_outbox_list(c, "failed", 10, outbox_keep, &failed) == STORE_OK && failed.n == 1 &&
          failed.last.id == second && failed.last.attempts == 5);
    CHECK_STR(failed.last.state, "failed");
    CHECK_STR(failed.last.last_error, "gave up");
    /* Every row, newest first. */
    struct names_seen ids = {0};
    CHECK(store_outbox_list(c, NULL, 10, outbox_collect, &ids) == STORE_OK && ids.n == 3);
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)later);
    CHECK_STR(ids.names[0], want);
    CHECK(store_outbox_list(c, "pending", 1, outbox_keep, &all) == STORE_OK && all.n == 1 &&
          all.last.id == later);

    CHECK(store_outbox_delete(c, later) == STORE_OK);
    CHECK(store_outbox_delete(c, later) == STORE_NOT_FOUND);
    CHECK(store_outbox_update(c, later, 1, 1, false, "") == STORE_NOT_FOUND);
    CHECK(store_outbox_delete(c, first) == STORE_OK && store_outbox_delete(c, second) == STORE_OK);
}

/* Deleting a topic takes its subscriptions and waiting deliveries, nothing else. */
static void test_topic_delete(struct store_conn *c)
{
    int64_t pending = outbox_insert(c, TOPIC_A, "1", 100, "{}");
    int64_t failed = outbox_insert(c, TOPIC_A, "1", 100, "{}");
    int64_t other = outbox_insert(c, TOPIC_B, "3", 100, "{}");
    CHECK(store_outbox_update(c, failed, 3, 0, true, "refused") == STORE_OK);
    notify_put(c, "keeps.example", TOPIC_A, TOPIC_A, "", false);

    CHECK(store_topic_delete(c, TOPIC_A) == STORE_OK);
    struct store_topic t;
    struct store_subscription s;
    CHECK(store_topic_get(c, TOPIC_A, &t) == STORE_NOT_FOUND);
    CHECK(store_topic_get(c, TOPIC_B, &t) == STORE_OK);
    CHECK(store_subscription_get(c, TOPIC_A ":1", &s) == STORE_NOT_FOUND);
    CHECK(store_subscription_get(c, TOPIC_A ":2", &s) == STORE_NOT_FOUND);
    CHECK(store_subscription_get(c, TOPIC_B ":3", &s) == STORE_OK);
    struct names_seen left = {0};
    CHECK(store_outbox_list(c, NULL, 10, outbox_collect, &left) == STORE_OK && left.n == 2);
    char want[2][32];
    snprintf(want[0], sizeof want[0], "%lld", (long long)other);
    snprintf(want[1], sizeof want[1], "%lld", (long long)failed);
    CHECK_STR(left.names[0], want[0]);
    CHECK_STR(left.names[1], want[1]);
    CHECK(store_outbox_delete(c, pending) == STORE_NOT_FOUND);
    /* Settings naming it are the caller's affair. */
    struct store_notify n;
    CHECK(store_notify_get(c, ACCOUNT, REGION, "keeps.example", &n) == STORE_OK &&
          !strcmp(n.bounce_topic, TOPIC_A));
    CHECK(store_topic_delete(c, TOPIC_A) == STORE_NOT_FOUND);
    /* Another account's topic of the same name is its own. */
    CHECK(store_topic_get(c, "arn:aws:sns:us-east-1:" OTHER ":a", &t) == STORE_OK);
}

/* ---- feedback reports kept aside ---- */

struct reports_seen {
    int64_t ids[4];
    char kinds[4][16];
    size_t lens[4];
    bool binary_ok;
    int n;
};

static void report_collect(const struct store_feedback_report *r, void *ctx)
{
    struct reports_seen *s = ctx;
    if (s->n < 4) {
        s->ids[s->n] = r->id;
        snprintf(s->kinds[s->n], sizeof s->kinds[0], "%s", r->kind);
        s->lens[s->n] = r->len;
    }
    if (!strcmp(r->kind, "unknown"))
        s->binary_ok = r->len == 5 && !memcmp(r->data, "a\0b\r\n", 5) && r->data[5] == '\0' &&
                       r->received_ms == 7 && !strcmp(r->mail_from, "") &&
                       !strcmp(r->rcpt, "fb@feedback.example") &&
                       !strcmp(r->reason, "no message matched");
    s->n++;
}

static void test_feedback_reports(struct store_conn *c)
{
    struct store_feedback_report dsn = {.received_ms = 6,
                                        .mail_from = "",
                                        .rcpt = "fb@feedback.example",
                                        .kind = "dsn",
                                        .reason = "unparsable",
                                        .data = "Subject: x\r\n\r\n",
                                        .len = 14};
    struct store_feedback_report unknown = {.received_ms = 7,
                                            .rcpt = "fb@feedback.example",
                                            .kind = "unknown",
                                            .reason = "no message matched",
                                            .data = "a\0b\r\n",
                                            .len = 5};
    CHECK(store_feedback_report_insert(c, &dsn) == STORE_OK && dsn.id > 0);
    CHECK(store_feedback_report_insert(c, &unknown) == STORE_OK && unknown.id > dsn.id);
    struct reports_seen all = {0}, one = {0}, limited = {0}, none = {0};
    CHECK(store_feedback_report_list(c, 0, 10, report_collect, &all) == STORE_OK && all.n == 2);
    CHECK(all.ids[0] == unknown.id && all.ids[1] == dsn.id && all.binary_ok);
    CHECK_STR(all.kinds[1], "dsn");
    CHECK(all.lens[1] == 14);
    CHECK(store_feedback_report_list(c, dsn.id, 10, report_collect, &one) == STORE_OK &&
          one.n == 1 && one.ids[0] == dsn.id);
    CHECK(store_feedback_report_list(c, 0, 1, report_collect, &limited) == STORE_OK &&
          limited.n == 1 && limited.ids[0] == unknown.id);
    CHECK(store_feedback_report_list(c, unknown.id + 100, 10, report_collect, &none) == STORE_OK &&
          none.n == 0);
    /* only the newest STORE_FEEDBACK_REPORTS_KEPT stay */
    CHECK(store_begin(c) == STORE_OK);
    struct store_feedback_report more = unknown;
    int inserted = 0;
    for (int i = 0; i < STORE_FEEDBACK_REPORTS_KEPT; i++)
        inserted += store_feedback_report_insert(c, &more) == STORE_OK;
    CHECK(inserted == STORE_FEEDBACK_REPORTS_KEPT);
    CHECK(store_commit(c) == STORE_OK);
    struct reports_seen first = {0}, newest = {0};
    CHECK(store_feedback_report_list(c, dsn.id, 1, report_collect, &first) == STORE_OK &&
          first.n == 0);
    CHECK(store_feedback_report_list(c, more.id, 1, report_collect, &newest) == STORE_OK &&
          newest.n == 1);
}

/* ---- derived keys ---- */

/* Confirmations sent: the account's emails in the window, the last per topic and endpoint,
 * and the account's older ones forgotten when the next is noted. */
static void test_confirmations(struct store_conn *c)
{
    const char *t1 = "arn:aws:sns:us-east-1:111111111111:one";
    const char *t2 = "arn:aws:sns:us-east-1:111111111111:two";
    struct store_confirmations got = {-1, -1};
    CHECK(store_confirmations_get(c, "acct-c", t1, "a@example.com", 0, &got) == STORE_OK);
    CHECK(got.emails == 0 && got.last_endpoint_ms == 0);
    CHECK(store_confirmation_note(c, "acct-c", t1, "a@example.com", true, 100, 0) == STORE_OK);
    CHECK(store_confirmation_note(c, "acct-c", t1, "a@example.com", true, 200, 0) == STORE_OK);
    CHECK(store_confirmation_note(c, "acct-c", t2, "https://h/x", false, 300, 0) == STORE_OK);
    CHECK(store_confirmation_note(c, "acct-d", t2, "b@example.com", true, 300, 0) == STORE_OK);
    CHECK(store_confirmations_get(c, "acct-c", t1, "a@example.com", 0, &got) == STORE_OK);
    CHECK(got.emails == 2 && got.last_endpoint_ms == 200);
    CHECK(store_confirmations_get(c, "acct-c", t2, "a@example.com", 0, &got) == STORE_OK);
    CHECK(got.emails == 2 && got.last_endpoint_ms == 0); /* another topic's endpoint */
    CHECK(store_confirmations_get(c, "acct-c", t1, "a@example.com", 150, &got) == STORE_OK);
    CHECK(got.emails == 1 && got.last_endpoint_ms == 200); /* the window */
    /* noting at 400 with a window from 250 forgets acct-c's 100 and 200, not acct-d's */
    CHECK(store_confirmation_note(c, "acct-c", t2, "https://h/x", false, 400, 250) == STORE_OK);
    CHECK(store_confirmations_get(c, "acct-c", t1, "a@example.com", 0, &got) == STORE_OK);
    CHECK(got.emails == 0 && got.last_endpoint_ms == 0);
    CHECK(store_confirmations_get(c, "acct-c", t2, "https://h/x", 0, &got) == STORE_OK);
    CHECK(got.last_endpoint_ms == 400);
    CHECK(store_confirmations_get(c, "acct-d", t2, "b@example.com", 0, &got) == STORE_OK);
    CHECK(got.emails == 1 && got.last_endpoint_ms == 300);
}

static void test_derive_key(const char *parent)
{
    char dir[256], other_dir[256];
    snprintf(dir, sizeof dir, "%s/keys", parent);
    snprintf(other_dir, sizeof other_dir, "%s/keys-other", parent);
    CHECK(mkdir(dir, 0700) == 0 && mkdir(other_dir, 0700) == 0);
    unsigned char a[32], again[32], b[32], reopened[32], elsewhere[32], zero[32] = {0};
    struct store *s = open_store(dir);
    if (!s)
        return;
    store_derive_key(s, "verp", a);
    store_derive_key(s, "verp", again);
    store_derive_key(s, "other", b);
    CHECK(!memcmp(a, again, 32) && memcmp(a, b, 32) != 0 && memcmp(a, zero, 32) != 0);
    store_close(s);
    /* The same store's key file: the same key after a restart; another store's: another. */
    s = open_store(dir);
    struct store *t = open_store(other_dir);
    if (!s || !t) {
        store_close(s);
        store_close(t);
        return;
    }
    store_derive_key(s, "verp", reopened);
    store_derive_key(t, "verp", elsewhere);
    CHECK(!memcmp(a, reopened, 32) && memcmp(a, elsewhere, 32) != 0);
    store_close(s);
    store_close(t);
}

/* ---- migration ---- */

static void old_event_collect(const struct store_event *e, void *ctx)
{
    struct events_seen *s = ctx;
    s->last[0] = *e;
    s->n++;
}

/* A store of schema 5 keeps its events (new fields empty) and gains the new tables and
 * columns (up to migration 8's final_recipient). */
static void test_migration_from_v5(const char *parent)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/v5", parent);
    CHECK(mkdir(dir, 0700) == 0);
    struct store *s = open_store(dir);
    store_close(s);
    raw_exec(dir, "DROP TABLE identity_notify; DROP TABLE topics; DROP TABLE subscriptions;"
                  "DROP TABLE outbox; DROP TABLE feedback_reports; DROP TABLE sns_confirmations;"
                  "ALTER TABLE events DROP COLUMN feedback_id;"
                  "ALTER TABLE events DROP COLUMN feedback_type;"
                  "ALTER TABLE events DROP COLUMN user_agent;"
                  "ALTER TABLE events DROP COLUMN arrival_ms;"
                  "ALTER TABLE events DROP COLUMN report_ms;"
                  "ALTER TABLE events DROP COLUMN final_recipient;"
                  "PRAGMA user_version=5;"
                  "INSERT INTO events (message_id, idx, account_id, region, type, bounce_type,"
                  " bounce_subtype, recipient, created_ms, processing_ms, smtp_response, status,"
                  " action, diagnostic, remote_mta, reporting_mta, simulator) VALUES ('old', 0,"
                  " '111122223333', 'us-east-1', 'Delivery', '', '', 'to@example.net', 9, 8,"
                  " '250 ok', '', '', '', 'mx.example.net', 'sesame', 0)");
    s = open_store(dir);
    if (!s)
        return;
    struct store_conn *c = store_conn_open(s);
    CHECK(store_schema_version(c) == 8);
    struct events_seen *seen = calloc(1, sizeof *seen);
    CHECK(store_event_list(c, "old", old_event_collect, seen) == STORE_OK && seen->n == 1);
    CHECK_STR(seen->last[0].smtp_response, "250 ok");
    CHECK_STR(seen->last[0].feedback_id, "");
    CHECK_STR(seen->last[0].final_recipient, "");
    CHECK(seen->last[0].created_ms == 9 && seen->last[0].arrival_ms == 0 &&
          seen->last[0].report_ms == 0);
    free(seen);
    topic_insert(c, ACCOUNT, REGION, "after-migration");
    notify_put(c, "m.example", "", "", "", true);
    store_conn_close(c);
    store_close(s);
}

int main(void)
{
    char dir[] = "/tmp/sesame-store-notify-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct store *s = open_store(dir);
    if (s) {
        struct store_conn *c = store_conn_open(s);
        test_message_get(c);
        test_events(c);
        test_notify(c);
        test_identity_delete(c);
        test_topics(c);
        test_subscriptions(c);
        test_outbox(c);
        test_outbox_forwarded(c);
        test_topic_delete(c);
        test_feedback_reports(c);
        test_confirmations(c);
        test_outbox_trim_failed(c);
        store_conn_close(c);
        store_close(s);
    }
    test_derive_key(dir);
    test_migration_from_v5(dir);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return UNIT_END();
}
