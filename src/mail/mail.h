/* mail: RFC 5322 messages. Inspection of raw messages (header section, addresses, MIME
 * walk, attachment names), the rewrites made at acceptance, and the message SendEmail
 * builds. GMime does the MIME work; the rewrites work on the raw bytes so that every
 * header Sesame does not touch keeps its exact bytes (an existing DKIM signature over
 * them still verifies). */
#ifndef SESAME_MAIL_H
#define SESAME_MAIL_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAIL_MAX_LINE 998 /* octets, without the CRLF (RFC 5322 §2.1.1) */

enum mail_status {
    MAIL_OK = 0,
    MAIL_BARE_CR,       /* a CR not followed by LF */
    MAIL_NUL,           /* a NUL octet */
    MAIL_LINE_TOO_LONG, /* a line over 998 octets */
    MAIL_BAD_HEADER,    /* the header section does not parse */
    MAIL_BAD_ADDRESS,   /* an address header that does not parse */
    MAIL_NOT_ASCII,     /* a SendEmail address with non-ASCII (DECISIONS 17) */
    MAIL_INJECTION,     /* CR or LF in a SendEmail value that becomes a header */
};

/* Canonical line endings: a message whose lines all end in a bare LF becomes CRLF
 * (DECISIONS 12); a bare CR, a NUL or a line over 998 octets is refused. out receives
 * the canonical message. err gets a sentence for the error reply. */
enum mail_status mail_normalize(const char *raw, size_t len, struct buf *out, char *err,
                                size_t errlen);

/* What the accept pipeline needs to know about a canonical (CRLF) message. Addresses are
 * bare addr-specs (local@domain) as written, in header order; group syntax flattened. */
struct mail_inspection {
    char **from;
    int from_count;
    char *sender;      /* NULL when absent */
    char *return_path; /* NULL when absent */
    char **to, **cc, **bcc;
    int to_count, cc_count, bcc_count;
    char *subject;                /* decoded to UTF-8, NULL when absent */
    bool has_delivery_status;     /* a message/delivery-status part (DECISIONS 16) */
    char blocked_attachment[256]; /* first attachment with a blocked extension; "" if none */
    size_t header_len;            /* bytes of the header section, through the blank line */
    /* One text part by its header alone (no Content-Disposition, at most one Content-Type,
     * text/ and without a name parameter): it has no parts for the MIME walk to check. */
    bool single_text;
    int content_types;
};

enum mail_status mail_inspect(const char *msg, size_t len, struct mail_inspection *out, char *err,
                              size_t errlen);
void mail_inspection_free(struct mail_inspection *in);

/* True when the file name's last extension (case-insensitive) is on the list of
 * unsupported attachment types (spec 30 §5). */
bool mail_extension_blocked(const char *filename);

/* The rewrites at acceptance (DECISIONS 10, 11, 13): Date replaced with date_ms (UTC),
 * Message-ID replaced with message_id (given with its angle brackets), Return-Path and
 * Bcc removed, From added when add_from is set (the message has none). Every other byte
 * is kept. */
struct mail_rewrite {
    int64_t date_ms;
    const char *message_id;
    const char *add_from;
};
enum mail_status mail_rewrite(const char *msg, size_t len, const struct mail_rewrite *rw,
                              struct buf *out);

/* SendEmail's message (spec 10 §1.3): text, HTML or both (multipart/alternative),
 * quoted-printable or base64 as the content needs, RFC 2047 for non-ASCII subject and
 * display names, lines within 998 octets. Charsets default to UTF-8. Bcc is not written. */
struct mail_formatted {
    const char *source; /* From: may carry a display name */
    const char *const *to;
    int to_count;
    const char *const *cc;
    int cc_count;
    const char *const *reply_to;
    int reply_to_count;
    const char *subject;
    const char *subject_charset;
    const char *text; /* NULL: none */
    const char *text_charset;
    const char *html; /* NULL: none */
    const char *html_charset;
    int64_t date_ms;
    const char *message_id; /* with angle brackets */
};
enum mail_status mail_build(const struct mail_formatted *f, struct buf *out, char *err,
                            size_t errlen);

/* The bare address of one mailbox ("Name <a@b>" or "a@b"); false when it does not parse
 * as exactly one mailbox. out: at least 321 bytes. */
bool mail_mailbox_address(const char *mailbox, char *out, size_t outlen);

/* Identity and recipient rules (spec 30 §1.3): an ASCII addr-spec local@domain within
 * RFC 5321's lengths; a domain of DNS labels (at most 63 characters each, 253 in all,
 * at least two labels). */
bool mail_address_valid(const char *addr);
bool mail_domain_valid(const char *domain);
/* Lower-cases a domain identity; email identities stay as given (DECISIONS 9). */
void mail_identity_normalize(char *identity);

#endif
