/* Which verified identity governs an address (spec 20 §1.2, DECISIONS 9): the address
 * itself (case-sensitive), the address without its +label, then the domain and each
 * parent domain (case-insensitive). The first verified one wins. */
#include "send/send_internal.h"

#include <string.h>

static bool identity_verified(const struct send_sender *who, const char *name)
{
    struct store_identity id;
    return store_identity_get(who->conn, who->account->id, who->region, name, &id) == STORE_OK &&
           !strcmp(id.status, "Success");
}

static bool try_identity(const struct send_sender *who, const char *name, char *governing,
                         size_t len)
{
    if (!identity_verified(who, name))
        return false;
    core_strlcpy(governing, name, len);
    return true;
}

bool send_identity_find(const struct send_sender *who, const char *address, char *governing,
                        size_t len)
{
    const char *at = strrchr(address, '@');
    if (!at)
        return false;
    if (try_identity(who, address, governing, len))
        return true;
    const char *plus = memchr(address, '+', (size_t)(at - address));
    if (plus) {
        char base[STORE_IDENTITY_LEN];
        size_t local = (size_t)(plus - address);
        if (local + strlen(at) < sizeof base) {
            memcpy(base, address, local);
            strcpy(base + local, at);
            if (try_identity(who, base, governing, len))
                return true;
        }
    }
    char domain[STORE_IDENTITY_LEN];
    core_strlcpy(domain, at + 1, sizeof domain);
    for (char *p = domain; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p += 32;
    /* Parents down to two labels: a verified example.com covers a.b.example.com. */
    for (const char *d = domain; d && strchr(d, '.');
         d = strchr(d, '.') ? strchr(d, '.') + 1 : NULL)
        if (try_identity(who, d, governing, len))
            return true;
    return false;
}

bool send_is_simulator(const char *address)
{
    const char *at = strrchr(address, '@');
    return at && !core_strcasecmp(at + 1, "simulator.amazonses.com");
}
