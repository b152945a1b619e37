/* mail: what the module's files share and nothing else includes. */
#ifndef SESAME_MAIL_INTERNAL_H
#define SESAME_MAIL_INTERNAL_H

#include "mail/mail.h"

#include <gmime/gmime.h>

/* ---- the raw header section (header.c) ---- */

/* One header field as raw bytes of the message. */
struct mail_field {
    const char *name; /* without the colon or any WSP before it */
    size_t name_len;
    const char *value; /* after the colon, through the last continuation line */
    size_t value_len;  /* without the final CRLF */
    size_t start, end; /* the field's first byte; past its final CRLF */
};

struct mail_fields {
    const char *msg;
    size_t len;
    size_t pos;
    size_t header_len; /* set when mail_fields_next returns 0 */
};

void mail_fields_init(struct mail_fields *it, const char *msg, size_t len);
/* 1: *f is the next field; 0: the header section ended; -1: a line that is neither a
 * field nor a continuation line (or no header at all). Input: canonical CRLF. */
int mail_fields_next(struct mail_fields *it, struct mail_field *f);
bool mail_field_is(const struct mail_field *f, const char *name);
/* The value unfolded (CRLFs removed) and trimmed of WSP; malloc'd. */
char *mail_field_unfold(const struct mail_field *f);

/* RFC 5322 date-time in UTC, e.g. "Tue, 01 Dec 2026 21:50:10 +0000". out: 32 bytes. */
void mail_date_format(int64_t ms, char *out, size_t outlen);

/* ---- addresses (syntax.c, address.c) ---- */

/* Whether value is a valid address-list (RFC 5322 §3.4, see syntax.c for the details);
 * an empty value is not. */
bool mail_address_list_syntax(const char *value);

/* Parses an address header value strictly: NULL when any address in it fails to parse
 * or an addr-spec is not local@domain in ASCII. */
InternetAddressList *mail_address_list_parse(const char *value);
/* The addr-spec of a mailbox, in ASCII (IDN domains as A-labels). */
const char *mail_mailbox_addr(InternetAddress *ia);
/* Appends the addr-specs of every mailbox in list (groups flattened) to *out. */
void mail_address_list_flatten(InternetAddressList *list, char ***out, int *count);
/* True for a value that is one plain addr-spec (dot-atom local part, no A-label domain):
 * a list of it flattens to the value itself, without asking GMime (fuzz_mail checks). */
bool mail_address_plain(const char *value);
/* Parses a list and appends its addr-specs to *out (out NULL: checks only); false when
 * mail_address_list_parse refuses it. */
bool mail_address_list_take(const char *value, char ***out, int *count);

/* ---- GMime 3.2.13 defects (gmime_quirks.c) ---- */

#endif
