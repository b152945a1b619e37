/* The mailbox simulator (spec 20 §9): fixed addresses under simulator.amazonses.com,
 * case-insensitive, with +label forms. Outcomes are produced without any network. */
#include "delivery/delivery.h"

#include <string.h>
#include <strings.h>

#define SIM_DOMAIN "simulator.amazonses.com"

enum delivery_sim delivery_simulator(const char *address)
{
    const char *at = strrchr(address, '@');
    if (!at || strcasecmp(at + 1, SIM_DOMAIN))
        return DELIVERY_SIM_NONE;
    size_t local = (size_t)(at - address);
    const char *plus = memchr(address, '+', local);
    if (plus)
        local = (size_t)(plus - address);
    static const struct {
        const char *name;
        enum delivery_sim sim;
    } fixed[] = {
        {"success", DELIVERY_SIM_SUCCESS},
        {"bounce", DELIVERY_SIM_BOUNCE},
        {"ooto", DELIVERY_SIM_OOTO},
        {"complaint", DELIVERY_SIM_COMPLAINT},
        {"suppressionlist", DELIVERY_SIM_SUPPRESSED},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strlen(fixed[i].name) == local && !strncasecmp(address, fixed[i].name, local))
            return fixed[i].sim;
    return DELIVERY_SIM_UNKNOWN;
}
