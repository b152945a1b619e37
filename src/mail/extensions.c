/* Unsupported attachment types (spec 30 §5, DECISIONS 15): the 90 extensions SES
 * refuses, matched on the last extension of the file name, case-insensitively. */
#include "mail/mail.h"

#include <string.h>

static const char *const blocked[] = {
    "ade",      "adp",     "app",  "asp",  "bas", "bat", "cer",    "chm",  "cmd",  "com",
    "cpl",      "crt",     "csh",  "der",  "exe", "fxp", "gadget", "hlp",  "hta",  "inf",
    "ins",      "isp",     "its",  "js",   "jse", "ksh", "lib",    "lnk",  "mad",  "maf",
    "mag",      "mam",     "maq",  "mar",  "mas", "mat", "mau",    "mav",  "maw",  "mda",
    "mdb",      "mde",     "mdt",  "mdw",  "mdz", "msc", "msh",    "msh1", "msh2", "mshxml",
    "msh1xml",  "msh2xml", "msi",  "msp",  "mst", "ops", "pcd",    "pif",  "plg",  "prf",
    "prg",      "reg",     "scf",  "scr",  "sct", "shb", "shs",    "sys",  "ps1",  "ps1xml",
    "ps2",      "ps2xml",  "psc1", "psc2", "tmp", "url", "vb",     "vbe",  "vbs",  "vps",
    "vsmacros", "vss",     "vst",  "vsw",  "vxd", "ws",  "wsc",    "wsf",  "wsh",  "xnk",
};

static bool ext_equal(const char *ext, size_t n, const char *entry)
{
    if (strlen(entry) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = ext[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != entry[i])
            return false;
    }
    return true;
}

bool mail_extension_blocked(const char *filename)
{
    /* Windows drops trailing dots and spaces, so "x.exe." and "x.exe " run as x.exe. */
    size_t n = strlen(filename);
    while (n > 0 && (filename[n - 1] == '.' || filename[n - 1] == ' '))
        n--;
    const char *dot = NULL;
    for (size_t i = 0; i < n; i++) {
        if (filename[i] == '.')
            dot = filename + i;
    }
    if (!dot)
        return false;
    size_t ext_len = (size_t)(filename + n - dot - 1);
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++) {
        if (ext_equal(dot + 1, ext_len, blocked[i]))
            return true;
    }
    return false;
}
