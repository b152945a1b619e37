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

/* ---- DKIM (RFC 6376; Ed25519 per RFC 8463): keys and signing ---- */
enum mail_dkim_alg { MAIL_DKIM_RSA_SHA256, MAIL_DKIM_ED25519_SHA256 };
struct mail_dkim_key; /* a loaded private key; read-only once loaded, so threads may share it */
/* Generates a key: RSA of `bits` (1024..4096) or Ed25519 when bits == 0. private_pem gets the
 * PKCS#8 PEM, public_b64 the p= value of its DNS record (base64 of the DER
 * SubjectPublicKeyInfo for RSA, of the raw 32-byte public key for Ed25519). 0 on success. */
int mail_dkim_keygen(int bits, struct buf *private_pem, struct buf *public_b64);
/* Loads an unencrypted PEM private key (PKCS#8, or PKCS#1 "RSA PRIVATE KEY"): RSA of 1024 to
 * 4096 bits or Ed25519. NULL with err when it is anything else. */
struct mail_dkim_key *mail_dkim_key_load(const char *pem, char *err, size_t errlen);
void mail_dkim_key_free(struct mail_dkim_key *k);
enum mail_dkim_alg mail_dkim_key_alg(const struct mail_dkim_key *k);
int mail_dkim_key_public(const struct mail_dkim_key *k, struct buf *public_b64); /* p= */
/* The TXT record text: "v=DKIM1; k=rsa; p=..." or "v=DKIM1; k=ed25519; p=..." */
int mail_dkim_key_record(const struct mail_dkim_key *k, struct buf *txt);

#define MAIL_DKIM_DEFAULT_HEADERS                                                                  \
    "From:To:Subject:MIME-Version:Content-Type:Content-Transfer-Encoding:Date:Message-ID"
#define MAIL_DKIM_MAX_HEADERS 64 /* h= entries */

struct mail_dkim_signer {
    const char *domain;   /* d= */
    const char *selector; /* s= */
    const struct mail_dkim_key *key;
    int64_t time_s;    /* t= */
    bool relaxed_body; /* c=relaxed/relaxed; false (default): c=relaxed/simple */
    /* h= candidates, colon-separated. NULL: MAIL_DKIM_DEFAULT_HEADERS, of which only those
     * present in the message are listed. A caller's list is signed as given: a name listed
     * more often than it occurs signs the missing instances as absent (oversigning). */
    const char *headers;
};
/* Signs a canonical message (CRLF line ends, header section, blank line, body) and
 * appends one complete "DKIM-Signature: ...\r\n" header field (folded at most 78
 * columns, continuation lines starting with a tab) to out, meant to be placed before
 * the message's first header. The message must have a From field and h= must list it
 * (RFC 6376 §5.4); d= and s= are DNS names (letters, digits, '-', '.', '_'). A last
 * body line without CRLF is signed as SMTP will send it, with one. 0 on success; -1 with
 * err on failure, out unchanged. */
int mail_dkim_sign(const char *msg, size_t len, const struct mail_dkim_signer *s, struct buf *out,
                   char *err, size_t errlen);
/* Canonicalization, exposed for tests and the fuzzer. A header field is given whole
 * (name, colon, value with any folding CRLFs, final CRLF optional); relaxed form appended
 * to out with its CRLF. field must not point into out. */
void mail_dkim_canon_header_relaxed(const char *field, size_t len, struct buf *out);
/* SHA-256 of the body under simple or relaxed canonicalization (RFC 6376 §3.4.3/§3.4.4). */
void mail_dkim_body_hash(const char *body, size_t len, bool relaxed, unsigned char out[32]);

/* ---- GMime for other modules that parse MIME (feedback reports) ---- */
/* g_mime_init, once per process, from any thread. */
void mail_gmime_init(void);
/* In the copy of a message GMime will parse: hides the address fields from GMime's
 * address parser, which leaks and can overflow the stack (see gmime_quirks.c). */
void mail_gmime_defuse(char *msg, size_t len);
/* The addr-spec of the first mailbox of an address-list value (groups flattened), parsed
 * strictly; false when the value does not parse or holds no mailbox. */
bool mail_first_mailbox(const char *value, char *out, size_t outlen);

#endif
