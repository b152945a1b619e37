/* Delivery's pure parts (bounce classification, the simulator, VERP) and the store's
 * queue records: recipients' progress, events, the suppression list, control counters. */
#include "delivery/delivery.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check_class(int code, const char *enhanced, const char *text, bool final,
                        const char *type, const char *subtype)
{
    struct delivery_bounce_class c = {NULL, NULL};
    bool bounced = delivery_classify(code, enhanced, text, final, &c);
    if (!type) {
        CHECK(!bounced);
        return;
    }
    CHECK(bounced);
    CHECK_STR(c.type, type);
    CHECK_STR(c.subtype, subtype);
}

static void test_classify(void)
{
    check_class(250, "2.0.0", "Ok", false, NULL, NULL);
    check_class(550, "5.1.1", "No such user", false, "Permanent", "NoEmail");
    check_class(550, "5.1.10", "null MX", false, "Permanent", "NoEmail");
    check_class(550, "5.1.2", "bad domain", false, "Permanent", "NoEmail");
    check_class(550, "5.4.4", "no route", false, "Permanent", "General");
    check_class(550, "5.1.1", "attachment of user", false, "Permanent", "NoEmail");
    check_class(550, "", "Go away", false, "Permanent", "General");
    check_class(554, "5.7.1", "Message rejected as spam", false, "Transient", "ContentRejected");
    check_class(554, "5.7.1", "Relay access denied", false, "Permanent", "General");
    check_class(552, "5.3.4", "Message too big", false, "Transient", "MessageTooLarge");
    check_class(552, "", "Message size exceeds limit", false, "Transient", "MessageTooLarge");
    check_class(552, "5.2.2", "Mailbox full", false, NULL, NULL); /* a soft bounce: retried */
    check_class(552, "5.2.2", "Mailbox full", true, "Transient", "MailboxFull");
    check_class(554, "5.6.0", "bad content", false, "Transient", "ContentRejected");
    check_class(550, "5.7.0", "attachment not allowed", false, "Transient", "AttachmentRejected");
    /* 4xx and local failures: retried until final, then Transient. */
    check_class(451, "4.3.0", "try later", false, NULL, NULL);
    check_class(0, "", "timeout", false, NULL, NULL);
    check_class(451, "4.3.0", "try later", true, "Transient", "General");
    check_class(452, "4.2.2", "over quota", true, "Transient", "MailboxFull");
    check_class(0, "", "connection refused", true, "Transient", "General");
    check_class(999, "", "?", false, "Undetermined", "Undetermined");
}

static void test_simulator(void)
{
    CHECK(delivery_simulator("success@simulator.amazonses.com") == DELIVERY_SIM_SUCCESS);
    CHECK(delivery_simulator("SUCCESS@Simulator.AmazonSES.com") == DELIVERY_SIM_SUCCESS);
    CHECK(delivery_simulator("bounce+label1@simulator.amazonses.com") == DELIVERY_SIM_BOUNCE);
    CHECK(delivery_simulator("ooto@simulator.amazonses.com") == DELIVERY_SIM_OOTO);
    CHECK(delivery_simulator("complaint@simulator.amazonses.com") == DELIVERY_SIM_COMPLAINT);
    CHECK(delivery_simulator("suppressionlist@simulator.amazonses.com") == DELIVERY_SIM_SUPPRESSED);
    CHECK(delivery_simulator("bouncer@simulator.amazonses.com") == DELIVERY_SIM_UNKNOWN);
    CHECK(delivery_simulator("success@example.com") == DELIVERY_SIM_NONE);
    CHECK(delivery_simulator("success@sub.simulator.amazonses.com") == DELIVERY_SIM_NONE);
}

static void test_verp(void)
{
    const char *id = "000001a234a5fc15-f9beb79d-baed-4764-b24d-6888d77c59af-000000";
    const char *bd = "bounces.example.org";
    unsigned char key[DELIVERY_VERP_KEY_LEN], other[DELIVERY_VERP_KEY_LEN];
    memset(key, 7, sizeof key);
    memset(other, 8, sizeof other);
    char addr[200], back[100];
    int idx = -5;
    bool batch = true;
    delivery_verp_encode(key, id, 7, false, bd, addr, sizeof addr);
    CHECK(!strncmp(addr, "000001a234a5fc15f9beb79dbaed4764b24d6888d77c59af-7-", 51));
    CHECK(strlen(addr) == 51 + 8 + strlen("@bounces.example.org"));
    CHECK(strchr(addr, '@') - addr <= 64); /* RFC 5321's limit on a local part */
    CHECK(delivery_verp_decode(key, addr, "Bounces.Example.org", back, sizeof back, &idx, &batch));
    CHECK_STR(back, id);
    CHECK(idx == 7 && !batch);
    /* another key, or another recipient under the same MAC: not ours */
    CHECK(!delivery_verp_decode(other, addr, bd, back, sizeof back, &idx, &batch));
    char forged[200];
    snprintf(forged, sizeof forged, "%.49s8%s", addr, addr + 50);
    CHECK(!delivery_verp_decode(key, forged, bd, back, sizeof back, &idx, &batch));
    /* a batch's: its first recipient's index, marked, under its own MAC */
    char batch_addr[200];
    delivery_verp_encode(key, id, 7, true, bd, batch_addr, sizeof batch_addr);
    CHECK(!strncmp(batch_addr, "000001a234a5fc15f9beb79dbaed4764b24d6888d77c59af-b7-", 52));
    CHECK(delivery_verp_decode(key, batch_addr, bd, back, sizeof back, &idx, &batch));
    CHECK(idx == 7 && batch);
    snprintf(forged, sizeof forged, "%.49s%s", addr, batch_addr + 49); /* b7 with 7's MAC */
    memcpy(forged + 52, addr + 51, 8);
    CHECK(!delivery_verp_decode(key, forged, bd, back, sizeof back, &idx, &batch));
    /* the largest index still fits 64 octets, a batch's too */
    delivery_verp_encode(key, id, 99999, false, bd, addr, sizeof addr);
    CHECK(strchr(addr, '@') - addr <= 64);
    CHECK(delivery_verp_decode(key, addr, bd, back, sizeof back, &idx, &batch));
    CHECK(idx == 99999 && !batch);
    delivery_verp_encode(key, id, 99999, true, bd, addr, sizeof addr);
    CHECK(strchr(addr, '@') - addr == 64);
    CHECK(delivery_verp_decode(key, addr, bd, back, sizeof back, &idx, &batch));
    CHECK(idx == 99999 && batch);
    /* the whole message's (an earlier form), still read */
    delivery_verp_encode(key, id, -1, false, bd, addr, sizeof addr);
    CHECK(delivery_verp_decode(key, addr, bd, back, sizeof back, &idx, &batch));
    CHECK(idx == -1 && !batch);
    CHECK(!delivery_verp_decode(key, addr, "other.example.org", back, sizeof back, &idx, &batch));
    CHECK(
        !delivery_verp_decode(key, "bob@bounces.example.org", bd, back, sizeof back, &idx, &batch));
    /* the old unsigned form is refused */
    CHECK(!delivery_verp_decode(key,
                                "000001a234a5fc15-f9beb79d-baed-4764-b24d-6888d77c59af-000000-7@"
                                "bounces.example.org",
                                bd, back, sizeof back, &idx, &batch));
}

/* ---- the store's queue ---- */

static int rows;
static struct store_recipient last;

static void count_rcpt(const struct store_recipient *r, void *ctx)
{
    (void)ctx;
    rows++;
    last = *r;
}

static void count_event(const struct store_event *e, void *ctx)
{
    (void)e, (void)ctx;
    rows++;
}

static void count_suppressed(const struct store_suppressed *s, void *ctx)
{
    (void)s, (void)ctx;
    rows++;
}

static void test_store_queue(struct store_conn *c)
{
    struct store_message m = {.id = "m1",
                              .account_id = "111122223333",
                              .region = "us-east-1",
                              .source = "a@example.com",
                              .created_ms = 1000,
                              .data = "hello\r\n",
                              .data_len = 7,
                              .meta = "{}"};
    const char *rcpts[2] = {"x@example.net", "y@example.net"};
    CHECK(store_message_insert(c, &m, rcpts, 2) == STORE_OK);
    rows = 0;
    CHECK(store_queue_list(c, NULL, true, count_rcpt, NULL) == STORE_OK && rows == 2);
    CHECK(last.size == 7 && last.created_ms == 1000 && !strcmp(last.account_id, "111122223333"));
    struct store_recipient r = last;
    strcpy(r.state, "delivered");
    r.attempts = 1;
    strcpy(r.last_result, "250 ok");
    CHECK(store_recipient_update(c, &r) == STORE_OK);
    CHECK(store_recipient_update(c, &r) == STORE_NOT_FOUND); /* only while queued */
    rows = 0;
    CHECK(store_queue_list(c, "m1", true, count_rcpt, NULL) == STORE_OK && rows == 1);
    int n = 0;
    CHECK(store_queue_retry(c, NULL, 5000, &n) == STORE_OK && n == 1);
    CHECK(store_queue_drop(c, "m1", &n) == STORE_OK && n == 1);
    rows = 0;
    CHECK(store_queue_list(c, NULL, true, count_rcpt, NULL) == STORE_OK && rows == 0);
    char *data = NULL;
    size_t len = 0;
    /* Dropping the last queued recipient released the bytes. */
    CHECK(store_message_data(c, "m1", &data, &len) == STORE_OK && len == 0);
    free(data);
    CHECK(store_message_release(c, "m1") == STORE_OK);
    struct store_message kept;
    char *meta = NULL; /* a released row keeps every column but the bytes */
    CHECK(store_message_get(c, "m1", &kept, &meta) == STORE_OK && !strcmp(meta, "{}") &&
          !strcmp(kept.source, "a@example.com") && kept.created_ms == 1000 &&
          !strcmp(kept.region, "us-east-1") && !strcmp(kept.account_id, "111122223333") &&
          !kept.captured);
    free(meta);
    CHECK(store_message_data(c, "nope", &data, &len) == STORE_NOT_FOUND);
    free(data);
    struct store_event e = {.message_id = "m1", .type = "Bounce", .bounce_type = "Permanent"};
    CHECK(store_event_insert(c, &e) == STORE_OK);
    rows = 0;
    CHECK(store_event_list(c, "m1", count_event, NULL) == STORE_OK && rows == 1);
    struct store_suppressed s = {.region = "us-east-1",
                                 .address = "Bob@Example.NET",
                                 .reason = "BOUNCE",
                                 .created_ms = 1,
                                 .expires_ms = 100};
    CHECK(store_suppressed_put(c, &s) == STORE_OK);
    CHECK(store_suppressed_get(c, "us-east-1", "bob@example.net", 50, NULL) == STORE_OK);
    CHECK(store_suppressed_get(c, "us-east-1", "BOB@example.net", 150, NULL) == STORE_NOT_FOUND);
    CHECK(store_suppressed_get(c, "eu-west-1", "bob@example.net", 50, NULL) == STORE_NOT_FOUND);
    strcpy(s.region, "eu-west-1");
    CHECK(store_suppressed_put(c, &s) == STORE_OK);
    rows = 0;
    CHECK(store_suppressed_list(c, "BOB@example.net", 50, count_suppressed, NULL) == STORE_OK &&
          rows == 2);
    CHECK(store_suppressed_delete(c, "bob@EXAMPLE.net") == STORE_OK); /* every region */
    rows = 0;
    CHECK(store_suppressed_list(c, NULL, 50, count_suppressed, NULL) == STORE_OK && rows == 0);
    int64_t v = -1;
    CHECK(store_control_get(c, "queue", &v) == STORE_OK && v == 0);
    CHECK(store_control_bump(c, "queue") == STORE_OK && store_control_bump(c, "queue") == STORE_OK);
    CHECK(store_control_get(c, "queue", &v) == STORE_OK && v == 2);
}

int main(void)
{
    test_classify();
    test_simulator();
    test_verp();
    char dir[] = "/tmp/sesame-delivery-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct sesame_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.store_path, sizeof cfg.store_path, "%s/test.db", dir);
    struct store *s = NULL;
    char err[256];
    CHECK(store_open(&cfg, &s, err, sizeof err) == STORE_OK);
    struct store_conn *c = s ? store_conn_open(s) : NULL;
    if (c) {
        test_store_queue(c);
        store_conn_close(c);
    }
    store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return UNIT_END();
}
