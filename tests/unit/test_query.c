/* Form parsing (spec 10 §2.3), lists (DECISIONS 4), address and domain rules. */
#include "api/api.h"
#include "mail/mail.h"
#include "unit.h"

static enum query_error parse(struct query_params *q, const char *s)
{
    char bad[64];
    query_params_init(q);
    return query_parse(q, s, strlen(s), bad, sizeof bad);
}

static void test_decoding(void)
{
    struct query_params q;
    CHECK(parse(&q, "Action=SendEmail&Source=user%40example.com&Message.Subject.Data=Hi+there%21"
                    "&Plus=%2B&Empty=&Flag") == QUERY_OK);
    CHECK_STR(query_get(&q, "Action"), "SendEmail");
    CHECK_STR(query_get(&q, "Source"), "user@example.com");
    CHECK_STR(query_get(&q, "Message.Subject.Data"), "Hi there!");
    CHECK_STR(query_get(&q, "Plus"), "+");
    CHECK_STR(query_get(&q, "Empty"), "");
    CHECK_STR(query_get(&q, "Flag"), "");
    CHECK(query_get(&q, "Missing") == NULL);
    query_params_free(&q);

    CHECK(parse(&q, "") == QUERY_OK && q.count == 0);
    query_params_free(&q);
    CHECK(parse(&q, "&&a=1&&") == QUERY_OK && q.count == 1);
    query_params_free(&q);
}

static void test_errors(void)
{
    struct query_params q;
    CHECK(parse(&q, "a=%zz") == QUERY_MALFORMED);
    query_params_free(&q);
    CHECK(parse(&q, "a=%4") == QUERY_MALFORMED);
    query_params_free(&q);
    CHECK(parse(&q, "a=%") == QUERY_MALFORMED);
    query_params_free(&q);
    CHECK(parse(&q, "=value") == QUERY_MALFORMED);
    query_params_free(&q);
    CHECK(parse(&q, "a%00b=1") == QUERY_MALFORMED);
    query_params_free(&q);
    CHECK(parse(&q, "a=1&a=2") == QUERY_DUPLICATE);
    query_params_free(&q);
    CHECK(parse(&q, "a=%ff%fe") == QUERY_NOT_UTF8);
    query_params_free(&q);
    CHECK(parse(&q, "a=%C3%A9") == QUERY_OK); /* é */
    query_params_free(&q);
    CHECK(parse(&q, "a=%ED%A0%80") == QUERY_NOT_UTF8); /* a surrogate */
    query_params_free(&q);
    CHECK(parse(&q, "a=%C0%AF") == QUERY_NOT_UTF8); /* overlong '/' */
    query_params_free(&q);
}

static void test_lists(void)
{
    struct query_params q;
    const char *out[8];
    CHECK(parse(&q, "D.member.3=c&D.member.1=a&D.member.10=d&Other.member.1=x&D.2=b") == QUERY_OK);
    int n = query_list(&q, "D", out, 8);
    CHECK(n == 4);
    if (n == 4) {
        CHECK_STR(out[0], "a");
        CHECK_STR(out[1], "b");
        CHECK_STR(out[2], "c");
        CHECK_STR(out[3], "d");
    }
    CHECK(query_list(&q, "D", out, 2) == -1);
    CHECK(query_list(&q, "Nothing", out, 8) == 0);
    query_params_free(&q);
    CHECK(parse(&q, "D.member.0=z&D.member.x=y&D.member.=w&DD.member.1=v") == QUERY_OK);
    CHECK(query_list(&q, "D", out, 8) == 0);
    query_params_free(&q);
}

static void test_addresses(void)
{
    CHECK(mail_address_valid("user@example.com"));
    CHECK(mail_address_valid("first.last+tag@sub.example.co.uk"));
    CHECK(!mail_address_valid("user@"));
    CHECK(!mail_address_valid("@example.com"));
    CHECK(!mail_address_valid("user@localhost"));
    CHECK(!mail_address_valid("us er@example.com"));
    CHECK(!mail_address_valid("user..x@example.com"));
    CHECK(!mail_address_valid(".user@example.com"));
    CHECK(!mail_address_valid("us\xc3\xa9r@example.com"));
    CHECK(!mail_address_valid("user@exa mple.com"));
    CHECK(mail_domain_valid("example.com"));
    CHECK(mail_domain_valid("a-b.example.com"));
    CHECK(!mail_domain_valid("-ab.example.com"));
    CHECK(!mail_domain_valid("ab-.example.com"));
    CHECK(!mail_domain_valid("example..com"));
    CHECK(!mail_domain_valid(".example.com"));
    CHECK(!mail_domain_valid("example"));
    char label64[80];
    memset(label64, 'a', 64);
    strcpy(label64 + 64, ".com");
    CHECK(!mail_domain_valid(label64));
    char label63[80];
    memset(label63, 'a', 63);
    strcpy(label63 + 63, ".com");
    CHECK(mail_domain_valid(label63));

    char id[64];
    strcpy(id, "Example.COM");
    mail_identity_normalize(id);
    CHECK_STR(id, "example.com");
    strcpy(id, "User@Example.COM");
    mail_identity_normalize(id);
    CHECK_STR(id, "User@Example.COM");
}

int main(void)
{
    test_decoding();
    test_errors();
    test_lists();
    test_addresses();
    return UNIT_END();
}
