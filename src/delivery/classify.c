/* Bounce classification (spec 20 §5.5.4, DECISIONS 32): a reply, or a local failure
 * (code 0), becomes one of SES's nine type/subtype pairs. A 5xx is final at once, but a
 * full mailbox, which SES counts among the soft bounces it retries; a 4xx or a local
 * failure only when retries are over, and then it is Transient. Failures that say nothing
 * about the address (size, full mailbox, content) are Transient, so they neither count as
 * hard bounces nor list the address; size and content at once, as the same message
 * cannot fare better later. */
#include "delivery/delivery.h"

#include <string.h>
#include <strings.h>

static bool text_has(const char *text, const char *word)
{
    return text && strcasestr(text, word) != NULL;
}

static bool status_is(const char *enhanced, const char *prefix)
{
    size_t n = strlen(prefix);
    return enhanced && !strncmp(enhanced + 1, prefix, n) &&
           (!enhanced[1 + n] || prefix[n - 1] == '.');
}

/* The Transient subtype a status or text points at; NULL when none in particular. */
static const char *transient_subtype(const char *enhanced, const char *text)
{
    if (status_is(enhanced, ".1."))
        return NULL; /* an address problem, whatever the text says */
    if (status_is(enhanced, ".2.2"))
        return "MailboxFull";
    if (status_is(enhanced, ".3.4") || status_is(enhanced, ".2.3"))
        return "MessageTooLarge";
    if (text_has(text, "attachment"))
        return "AttachmentRejected";
    if (status_is(enhanced, ".6.") ||
        (status_is(enhanced, ".7.1") && (text_has(text, "spam") || text_has(text, "content"))))
        return "ContentRejected";
    return NULL;
}

static void set(struct delivery_bounce_class *out, const char *type, const char *subtype)
{
    out->type = type;
    out->subtype = subtype;
}

bool delivery_classify(int code, const char *enhanced, const char *text, bool final,
                       struct delivery_bounce_class *out)
{
    if (enhanced && !enhanced[0])
        enhanced = NULL;
    if (code >= 200 && code < 400)
        return false;
    const char *transient = transient_subtype(enhanced, text);
    if (code >= 500 && code < 600) {
        if (!enhanced && code == 552 &&
            (text_has(text, "size") || text_has(text, "too large") || text_has(text, "too big")))
            transient = "MessageTooLarge";
        if (transient && !strcmp(transient, "MailboxFull") && !final)
            return false; /* retried: the mailbox may have room later */
        if (transient)
            set(out, "Transient", transient);
        else if (status_is(enhanced, ".1.")) /* spec 20 §5.5.4: 5.1.x */
            set(out, "Permanent", "NoEmail");
        else
            set(out, "Permanent", "General");
        return true;
    }
    if (!final)
        return code == 0 || (code >= 400 && code < 500)
                   ? false
                   : (set(out, "Undetermined", "Undetermined"), true);
    if (code == 0 || (code >= 400 && code < 500))
        set(out, "Transient", transient ? transient : "General");
    else
        set(out, "Undetermined", "Undetermined");
    return true;
}
