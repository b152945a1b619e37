/* The domain verification state machine (DECISIONS 25). */
#include "dns/dns.h"
#include "unit.h"

#define H (3600 * 1000LL)

static struct store_identity pending(int64_t created)
{
    struct store_identity id = {
        .kind = IDENTITY_DOMAIN, .status = "Pending", .created_ms = created};
    return id;
}

int main(void)
{
    int64_t fail = 72 * H, revoke = 72 * H;
    struct store_identity id = pending(0);

    CHECK(!dns_verify_next(&id, false, false, 1 * H, fail, revoke));
    CHECK_STR(id.status, "Pending");
    CHECK(id.checked_ms == 1 * H);
    CHECK(dns_verify_next(&id, false, true, 2 * H, fail, revoke));
    CHECK_STR(id.status, "TemporaryFailure");
    CHECK(dns_verify_next(&id, true, false, 3 * H, fail, revoke));
    CHECK_STR(id.status, "Success");
    CHECK(id.status_ms == 3 * H);

    /* A verified domain: a failed lookup changes nothing; a missing record starts the clock. */
    CHECK(!dns_verify_next(&id, false, true, 4 * H, fail, revoke));
    CHECK(id.missing_since_ms == 0);
    CHECK(!dns_verify_next(&id, false, false, 5 * H, fail, revoke));
    CHECK(id.missing_since_ms == 5 * H);
    CHECK(!dns_verify_next(&id, true, false, 6 * H, fail, revoke));
    CHECK(id.missing_since_ms == 0);
    CHECK(!dns_verify_next(&id, false, false, 7 * H, fail, revoke));
    CHECK(!dns_verify_next(&id, false, false, 7 * H + revoke - 1, fail, revoke));
    CHECK_STR(id.status, "Success");
    CHECK(dns_verify_next(&id, false, false, 7 * H + revoke, fail, revoke));
    CHECK_STR(id.status, "Failed");

    /* Never found: Failed once the window has passed. */
    id = pending(0);
    CHECK(!dns_verify_next(&id, false, false, fail - 1, fail, revoke));
    CHECK(dns_verify_next(&id, false, false, fail, fail, revoke));
    CHECK_STR(id.status, "Failed");
    id = pending(0);
    CHECK(dns_verify_next(&id, false, true, fail + 1, fail, revoke));
    CHECK_STR(id.status, "Failed");
    return UNIT_END();
}
