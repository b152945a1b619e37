/* Core helpers and the configuration loader. */
#include "core/core.h"
#include "unit.h"

#include <stdlib.h>
#include <unistd.h>

static void test_encodings(void)
{
    char out[64];
    unsigned char raw[64];
    core_base64_encode((const unsigned char *)"hello", 5, out);
    CHECK_STR(out, "aGVsbG8=");
    CHECK(core_base64_decode("aGVsbG8=", 8, raw) == 5 && !memcmp(raw, "hello", 5));
    CHECK(core_base64_decode("aGVsbA==", 8, raw) == 4);
    CHECK(core_base64_decode("aGVsbG8", 7, raw) == -1);
    CHECK(core_base64_decode("aGV=bG8=", 8, raw) == -1);
    CHECK(core_base64_decode("aGV sbG8", 8, raw) == -1);
    core_hex_encode((const unsigned char *)"\x01\xab", 2, out);
    CHECK_STR(out, "01ab");
    CHECK(core_utf8_valid("plain", 5));
    CHECK(core_utf8_valid("\xe2\x82\xac", 3));
    CHECK(!core_utf8_valid("\xe2\x82", 2));
    CHECK(!core_utf8_valid("\xff", 1));
}

static void test_ids_and_time(void)
{
    char id[64], uuid[37];
    core_message_id(0x1271b15238aLL, id, sizeof id);
    CHECK(strlen(id) == 16 + 1 + 36 + 7);
    CHECK(!strncmp(id, "000001271b15238a-", 17));
    CHECK(!strcmp(id + strlen(id) - 7, "-000000"));
    core_uuid4(uuid);
    CHECK(strlen(uuid) == 36 && uuid[14] == '4');
    char stamp[32];
    core_iso8601(1312399380000LL, stamp, sizeof stamp);
    CHECK_STR(stamp, "2011-08-03T19:23:00Z");
    CHECK(core_parse_duration("5s") == 5);
    CHECK(core_parse_duration("72h") == 72 * 3600);
    CHECK(core_parse_duration("14d") == 14 * 86400);
    CHECK(core_parse_duration("90") == 90);
    CHECK(core_parse_duration("5x") == -1);
    CHECK(core_parse_duration("") == -1);
    CHECK(core_parse_duration("-5") == -1);
}

static int load(const char *text, struct sesame_config *cfg, char *err, size_t errlen)
{
    char path[] = "/tmp/sesame-test-XXXXXX";
    int fd = mkstemp(path);
    if (write(fd, text, strlen(text)) < 0)
        return -2;
    close(fd);
    config_defaults(cfg);
    int rc = config_load(path, cfg, err, errlen);
    unlink(path);
    return rc;
}

static void test_config(void)
{
    struct sesame_config cfg;
    char err[512] = "";
    CHECK(load("[regions]\nnames = us-east-1, eu-west-1\n[api]\nnon_send_rate = 0.5\n"
               "[verification]\npoll_interval = 5s\nauto_verify = true\n",
               &cfg, err, sizeof err) == 0);
    CHECK(cfg.region_count == 2 && !strcmp(cfg.regions[1], "eu-west-1"));
    CHECK(cfg.api_non_send_rate == 0.5);
    CHECK(cfg.verify_poll_interval_s == 5 && cfg.auto_verify);
    CHECK(config_has_region(&cfg, "us-east-1") && !config_has_region(&cfg, "us-west-2"));

    CHECK(load("[api]\nhttp_listen = 127.0.0.1:1\n\n[api]\nbogus = 1\n", &cfg, err, sizeof err) ==
          -1);
    CHECK(strstr(err, ":5:") && strstr(err, "bogus"));
    CHECK(load("[store]\nfsync = maybe\n", &cfg, err, sizeof err) == -1);
    CHECK(strstr(err, ":2:") && strstr(err, "store.fsync"));
    CHECK(load("[api]\nmax_identities = 0\n", &cfg, err, sizeof err) == -1);
    CHECK(load("[regions]\nnames = us-east-1, us-east-1\n", &cfg, err, sizeof err) == -1);
    CHECK(load("[regions]\nnames = US_EAST\n", &cfg, err, sizeof err) == -1);
    CHECK(load("[delivery]\nmode = teleport\n", &cfg, err, sizeof err) == -1);
    CHECK(strstr(err, "delivery.mode") != NULL);
    CHECK(load("[api]\nhttps_listen = nowhere\n", &cfg, err, sizeof err) == -1);
    CHECK(strstr(err, "api.https_listen") != NULL);
    CHECK(load("not ini at all\n", &cfg, err, sizeof err) == -1);

    /* The documented example holds every key with a valid value. */
    config_defaults(&cfg);
    CHECK(config_load("../../etc/sesame.conf.example", &cfg, err, sizeof err) == 0);
    CHECK(cfg.verify_poll_interval_s == 3600 && cfg.api_max_body_bytes == 20 * 1024 * 1024);

    char host[64];
    int port;
    CHECK(config_split_addr("127.0.0.1:4500", host, sizeof host, &port) && port == 4500 &&
          !strcmp(host, "127.0.0.1"));
    CHECK(config_split_addr("[::1]:53", host, sizeof host, &port) && port == 53 &&
          !strcmp(host, "::1"));
    CHECK(!config_split_addr("127.0.0.1", host, sizeof host, &port));
    CHECK(!config_split_addr("h:99999", host, sizeof host, &port));
}

int main(void)
{
    test_encodings();
    test_ids_and_time();
    test_config();
    return UNIT_END();
}
