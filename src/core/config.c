/* The configuration: one INI file over embedded defaults. Every key lives in one table,
 * so parsing, validation and the example file cannot drift apart. */
#include "core/core.h"

#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum config_type { CT_INT, CT_DOUBLE, CT_BOOL, CT_STRING, CT_DURATION, CT_BYTES, CT_REGIONS };

struct config_key {
    const char *section;
    const char *name;
    enum config_type type;
    size_t offset;
    size_t size; /* string capacity */
    double min, max;
};

#define F(field) offsetof(struct sesame_config, field), sizeof(((struct sesame_config *)0)->field)
static const struct config_key config_keys[] = {
    {"server", "threads", CT_INT, F(threads), 0, 64},
    {"server", "hostname", CT_STRING, F(hostname), 0, 0},
    {"server", "log_level", CT_STRING, F(log_level), 0, 0},
    {"regions", "names", CT_REGIONS, F(regions), 0, 0},
    {"api", "http_listen", CT_STRING, F(api_http_listen), 0, 0},
    {"api", "https_listen", CT_STRING, F(api_https_listen), 0, 0},
    {"api", "max_body_bytes", CT_BYTES, F(api_max_body_bytes), 1024, 1e9},
    {"api", "non_send_rate", CT_DOUBLE, F(api_non_send_rate), 0, 1e6},
    {"api", "non_send_burst", CT_INT, F(api_non_send_burst), 1, 1e6},
    {"api", "max_identities", CT_INT, F(api_max_identities), 1, 1e7},
    {"api", "signature_skew", CT_DURATION, F(api_signature_skew_s), 1, 86400},
    {"api", "idle_timeout", CT_DURATION, F(api_idle_timeout_s), 1, 86400},
    {"api", "cache_ttl", CT_DURATION, F(api_cache_ttl_s), 0, 3600},
    {"auth", "failure_limit", CT_INT, F(auth_failure_limit), 0, 1000000},
    {"auth", "failure_window", CT_DURATION, F(auth_failure_window_s), 1, 86400},
    {"admin", "listen", CT_STRING, F(admin_listen), 0, 0},
    {"admin", "token", CT_STRING, F(admin_token), 0, 0},
    {"tls", "cert", CT_STRING, F(tls_cert), 0, 0},
    {"tls", "key", CT_STRING, F(tls_key), 0, 0},
    {"smtp", "starttls_listen", CT_STRING, F(smtp_starttls_listen), 0, 0},
    {"smtp", "tls_listen", CT_STRING, F(smtp_tls_listen), 0, 0},
    {"smtp", "command_timeout", CT_DURATION, F(smtp_command_timeout_s), 1, 3600},
    {"smtp", "data_timeout", CT_DURATION, F(smtp_data_timeout_s), 1, 3600},
    {"smtp", "max_connection_age", CT_DURATION, F(smtp_max_connection_age_s), 1, 86400},
    {"smtp", "max_messages", CT_INT, F(smtp_max_messages), 1, 1000000},
    {"smtp", "max_connections", CT_INT, F(smtp_max_connections), 1, 1000000},
    {"smtp", "max_auth_failures", CT_INT, F(smtp_max_auth_failures), 1, 100},
    {"feedback", "listen", CT_STRING, F(feedback_listen), 0, 0},
    {"feedback", "forward_from", CT_STRING, F(feedback_forward_from), 0, 0},
    {"feedback", "max_message_bytes", CT_BYTES, F(feedback_max_message_bytes), 1024, 1e9},
    {"feedback", "accept_local", CT_STRING, F(feedback_accept_local), 0, 0},
    {"notifications", "signing_key", CT_STRING, F(notify_signing_key), 0, 0},
    {"notifications", "signing_cert", CT_STRING, F(notify_signing_cert), 0, 0},
    {"notifications", "signature_version", CT_INT, F(notify_signature_version), 1, 2},
    {"notifications", "max_attempts", CT_INT, F(notify_max_attempts), 1, 1000},
    {"notifications", "failed_kept", CT_INT, F(notify_failed_kept), 0, 100000000},
    {"notifications", "confirmation_emails", CT_INT, F(notify_confirmation_emails), 0, 1000000},
    {"notifications", "retry_initial", CT_DURATION, F(notify_retry_initial_s), 1, 86400},
    {"notifications", "retry_max", CT_DURATION, F(notify_retry_max_s), 1, 86400},
    {"notifications", "timeout", CT_DURATION, F(notify_timeout_s), 1, 3600},
    {"notifications", "concurrency", CT_INT, F(notify_concurrency), 1, 10000},
    {"notifications", "tls_verify", CT_BOOL, F(notify_tls_verify), 0, 0},
    {"notifications", "ca_file", CT_STRING, F(notify_ca_file), 0, 0},
    {"notifications", "allow_private_endpoints", CT_BOOL, F(notify_allow_private), 0, 0},
    {"store", "backend", CT_STRING, F(store_backend), 0, 0},
    {"store", "path", CT_STRING, F(store_path), 0, 0},
    {"store", "secret_key_file", CT_STRING, F(store_secret_key_file), 0, 0},
    {"store", "fsync", CT_BOOL, F(store_fsync), 0, 0},
    {"store", "batch_max", CT_INT, F(store_batch_max), 1, 100000},
    {"accounts", "sandbox_max_24h", CT_DOUBLE, F(sandbox_max_24h), 0, 1e12},
    {"accounts", "sandbox_max_rate", CT_DOUBLE, F(sandbox_max_rate), 0, 1e9},
    {"accounts", "production_max_24h", CT_DOUBLE, F(production_max_24h), 0, 1e12},
    {"accounts", "production_max_rate", CT_DOUBLE, F(production_max_rate), 0, 1e9},
    {"verification", "auto_verify", CT_BOOL, F(auto_verify), 0, 0},
    {"verification", "dns_prefix", CT_STRING, F(dns_prefix), 0, 0},
    {"verification", "poll_interval", CT_DURATION, F(verify_poll_interval_s), 1, 86400 * 30},
    {"verification", "failure_window", CT_DURATION, F(verify_failure_window_s), 1, 86400 * 365},
    {"verification", "revocation_window", CT_DURATION, F(verify_revocation_window_s), 1,
     86400 * 365},
    {"verification", "email_link_ttl", CT_DURATION, F(email_link_ttl_s), 1, 86400 * 365},
    {"verification", "link_base_url", CT_STRING, F(link_base_url), 0, 0},
    {"verification", "sender", CT_STRING, F(verification_sender), 0, 0},
    {"dkim", "host_zone", CT_STRING, F(dkim_host_zone), 0, 0},
    {"dkim", "key_bits", CT_INT, F(dkim_key_bits), 1024, 4096},
    {"dkim", "ed25519", CT_BOOL, F(dkim_ed25519), 0, 0},
    {"dkim", "operator_domain", CT_STRING, F(dkim_operator_domain), 0, 0},
    {"dkim", "operator_selector", CT_STRING, F(dkim_operator_selector), 0, 0},
    {"dkim", "failure_window", CT_DURATION, F(dkim_failure_window_s), 1, 86400 * 365},
    {"dkim", "revocation_window", CT_DURATION, F(dkim_revocation_window_s), 1, 86400 * 365},
    {"dkim", "threads", CT_INT, F(dkim_threads), 0, 64},
    {"dns", "resolver", CT_STRING, F(dns_resolver), 0, 0},
    {"dns", "timeout_ms", CT_INT, F(dns_timeout_ms), 10, 600000},
    {"delivery", "mode", CT_STRING, F(delivery_mode), 0, 0},
    {"delivery", "relay", CT_STRING, F(delivery_relay), 0, 0},
    {"delivery", "mx_port", CT_INT, F(mx_port), 1, 65535},
    {"delivery", "allow_loopback_mx", CT_BOOL, F(allow_loopback_mx), 0, 0},
    {"delivery", "relay_tls", CT_STRING, F(delivery_relay_tls), 0, 0},
    {"delivery", "relay_username", CT_STRING, F(delivery_relay_username), 0, 0},
    {"delivery", "relay_password", CT_STRING, F(delivery_relay_password), 0, 0},
    {"delivery", "relay_tls_verify", CT_BOOL, F(delivery_relay_tls_verify), 0, 0},
    {"delivery", "tls", CT_STRING, F(delivery_tls), 0, 0},
    {"delivery", "tls_policy", CT_STRING, F(delivery_tls_policy), 0, 0},
    {"delivery", "bounce_domain", CT_STRING, F(bounce_domain), 0, 0},
    {"delivery", "max_age", CT_DURATION, F(delivery_max_age_s), 1, 86400 * 30},
    {"delivery", "retry_initial", CT_DURATION, F(delivery_retry_initial_s), 1, 86400},
    {"delivery", "retry_max", CT_DURATION, F(delivery_retry_max_s), 1, 86400},
    {"delivery", "retry_factor", CT_DOUBLE, F(delivery_retry_factor), 1, 10},
    {"delivery", "max_connections", CT_INT, F(delivery_max_connections), 1, 1000},
    {"delivery", "max_rate", CT_DOUBLE, F(delivery_max_rate), 0, 1e6},
    {"delivery", "max_recipients", CT_INT, F(delivery_max_recipients), 1, 1000},
    {"delivery", "connect_timeout", CT_DURATION, F(delivery_connect_timeout_s), 1, 3600},
    {"delivery", "command_timeout", CT_DURATION, F(delivery_command_timeout_s), 1, 3600},
    {"delivery", "data_timeout", CT_DURATION, F(delivery_data_timeout_s), 1, 3600},
    {"delivery", "final_timeout", CT_DURATION, F(delivery_final_timeout_s), 1, 3600},
    {"delivery", "idle_timeout", CT_DURATION, F(delivery_idle_timeout_s), 1, 3600},
    {"delivery", "suppression_ttl", CT_DURATION, F(suppression_ttl_s), 1, 86400 * 365},
    {"delivery", "memory", CT_BYTES, F(delivery_memory_bytes), 0, 1e12},
    {"limits", "max_message_bytes", CT_BYTES, F(max_message_bytes), 1024, 1e9},
    {"limits", "max_recipients", CT_INT, F(max_recipients), 1, 100000},
    {"limits", "message_id_domain", CT_STRING, F(message_id_domain), 0, 0},
};
#undef F

void config_defaults(struct sesame_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->hostname, "localhost");
    strcpy(cfg->log_level, "info");
    cfg->region_count = 1;
    strcpy(cfg->regions[0], "us-east-1");
    strcpy(cfg->api_https_listen, "0.0.0.0:443");
    cfg->api_max_body_bytes =
        20 * 1024 * 1024; /* a 10 MB message grows by base64 and form encoding */
    cfg->api_non_send_rate = 1;
    cfg->api_non_send_burst = 10;
    cfg->api_max_identities = 1000;
    cfg->api_signature_skew_s = 900;
    cfg->api_idle_timeout_s = 60;
    cfg->api_cache_ttl_s = 1;
    cfg->auth_failure_limit = 20;
    cfg->smtp_command_timeout_s = 300;
    cfg->smtp_data_timeout_s = 600;
    cfg->smtp_max_connection_age_s = 3600;
    cfg->smtp_max_messages = 1000;
    cfg->smtp_max_connections = 20000;
    cfg->smtp_max_auth_failures = 3;
    cfg->auth_failure_window_s = 60;
    strcpy(cfg->admin_listen, "127.0.0.1:8025");
    cfg->feedback_max_message_bytes = 10 * 1024 * 1024;
    strcpy(cfg->feedback_accept_local, "fbl,abuse,postmaster");
    cfg->notify_signature_version = 1;
    cfg->notify_max_attempts = 10;
    cfg->notify_failed_kept = 10000;
    cfg->notify_confirmation_emails = 100;
    cfg->notify_retry_initial_s = 20;
    cfg->notify_retry_max_s = 600;
    cfg->notify_timeout_s = 15;
    cfg->notify_concurrency = 64;
    cfg->notify_tls_verify = true;
    strcpy(cfg->store_backend, "sqlite");
    strcpy(cfg->store_path, "sesame.db");
    cfg->store_fsync = true;
    cfg->store_batch_max = 512;
    cfg->sandbox_max_24h = 200;
    cfg->sandbox_max_rate = 1;
    cfg->production_max_24h = 10000;
    cfg->production_max_rate = 5;
    strcpy(cfg->dns_prefix, "_amazonses");
    cfg->verify_poll_interval_s = 3600;
    cfg->verify_failure_window_s = 72 * 3600;
    cfg->verify_revocation_window_s = 72 * 3600;
    cfg->email_link_ttl_s = 24 * 3600;
    cfg->dkim_key_bits = 2048;
    strcpy(cfg->dkim_operator_selector, "sesame");
    cfg->dkim_failure_window_s = 72 * 3600;
    cfg->dkim_revocation_window_s = 5 * 86400;
    cfg->dns_timeout_ms = 5000;
    strcpy(cfg->delivery_mode, "deliver");
    cfg->mx_port = 25;
    strcpy(cfg->delivery_relay_tls, "opportunistic");
    cfg->delivery_relay_tls_verify = true;
    strcpy(cfg->delivery_tls, "opportunistic");
    cfg->delivery_max_age_s = 12 * 3600;
    cfg->delivery_retry_initial_s = 60;
    cfg->delivery_retry_max_s = 3600;
    cfg->delivery_retry_factor = 2;
    cfg->delivery_max_connections = 20;
    cfg->delivery_max_recipients = 50;
    cfg->delivery_connect_timeout_s = 30;
    cfg->delivery_command_timeout_s = 300;
    cfg->delivery_data_timeout_s = 180;
    cfg->delivery_final_timeout_s = 600;
    cfg->delivery_idle_timeout_s = 5;
    cfg->suppression_ttl_s = 14 * 86400;
    cfg->delivery_memory_bytes = (int64_t)256 * 1024 * 1024;
    cfg->max_message_bytes = 10485760;
    cfg->max_recipients = 50;
    strcpy(cfg->message_id_domain, "email.amazonses.com");
}

struct config_parse {
    struct sesame_config *cfg;
    char *err;
    size_t errlen;
};

static bool parse_bool(const char *v, bool *out)
{
    if (!core_strcasecmp(v, "true") || !core_strcasecmp(v, "yes") || !strcmp(v, "1") ||
        !core_strcasecmp(v, "on"))
        return *out = true, true;
    if (!core_strcasecmp(v, "false") || !core_strcasecmp(v, "no") || !strcmp(v, "0") ||
        !core_strcasecmp(v, "off"))
        return *out = false, true;
    return false;
}

static bool parse_bytes(const char *v, int64_t *out)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || n < 0)
        return false;
    int64_t unit = 1;
    if (!strcmp(end, "k") || !strcmp(end, "K"))
        unit = 1024;
    else if (!strcmp(end, "M"))
        unit = 1024 * 1024;
    else if (*end)
        return false;
    *out = n * unit;
    return true;
}

static bool region_name_valid(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n >= CONFIG_REGION_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
            return false;
    return true;
}

static bool parse_regions(const char *v, struct sesame_config *cfg)
{
    char copy[1024];
    if (!core_strlcpy(copy, v, sizeof copy))
        return false;
    cfg->region_count = 0;
    for (char *save, *tok = strtok_r(copy, ", \t", &save); tok;
         tok = strtok_r(NULL, ", \t", &save)) {
        if (cfg->region_count == CONFIG_MAX_REGIONS || !region_name_valid(tok) ||
            config_has_region(cfg, tok))
            return false;
        strcpy(cfg->regions[cfg->region_count++], tok);
    }
    return cfg->region_count > 0;
}

static bool config_set(const struct config_key *k, struct sesame_config *cfg, const char *v)
{
    char *field = (char *)cfg + k->offset;
    char *end;
    switch (k->type) {
    case CT_INT: {
        long n = strtol(v, &end, 10);
        if (end == v || *end || n < k->min || n > k->max)
            return false;
        if (k->size == sizeof(int64_t))
            *(int64_t *)field = n;
        else
            *(int *)field = (int)n;
        return true;
    }
    case CT_DOUBLE: {
        double d = strtod(v, &end);
        if (end == v || *end || d < k->min || d > k->max)
            return false;
        *(double *)field = d;
        return true;
    }
    case CT_BOOL:
        return parse_bool(v, (bool *)field);
    case CT_STRING:
        return core_strlcpy(field, v, k->size);
    case CT_DURATION: {
        int64_t d = core_parse_duration(v);
        if (d < k->min || d > k->max)
            return false;
        *(int64_t *)field = d;
        return true;
    }
    case CT_BYTES: {
        int64_t n;
        if (!parse_bytes(v, &n) || n < k->min || n > k->max)
            return false;
        *(int64_t *)field = n;
        return true;
    }
    case CT_REGIONS:
        return parse_regions(v, cfg);
    }
    return false;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
    struct config_parse *p = user;
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        const struct config_key *k = &config_keys[i];
        if (strcmp(k->section, section) || strcmp(k->name, name))
            continue;
        if (config_set(k, p->cfg, value))
            return 1;
        snprintf(p->err, p->errlen, "invalid value '%s' for key '%s.%s'", value, section, name);
        return 0;
    }
    snprintf(p->err, p->errlen, "unknown key '%s' in section [%s]", name, section);
    return 0;
}

static bool config_tls_ok(const char *policy, bool relay)
{
    return !strcmp(policy, "none") || !strcmp(policy, "opportunistic") ||
           !strcmp(policy, "required") || (relay && !strcmp(policy, "implicit"));
}

/* A DNS name of letters, digits, '-' and '_' labels (1..63 each, len at most max). */
static bool config_dns_name(const char *s, size_t max, bool dots)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > max)
        return false;
    for (const char *p = s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_';
        if (*p == '.' && dots && label > 0)
            label = 0;
        else if (!ok || ++label > 63)
            return false;
    }
    return label > 0;
}

/* The operator's selector is stored as a token (up to 39 characters): a longer one would
 * be cut, then differ from the configuration at every start and make a new key. */
static bool config_dkim_ok(const struct sesame_config *cfg, char *err, size_t errlen)
{
    if (cfg->dkim_operator_domain[0] && !config_dns_name(cfg->dkim_operator_domain, 253, true))
        return snprintf(err, errlen, "invalid domain '%s' for key 'dkim.operator_domain'",
                        cfg->dkim_operator_domain),
               false;
    if (!config_dns_name(cfg->dkim_operator_selector, 39, true))
        return snprintf(err, errlen,
                        "invalid selector '%s' for key 'dkim.operator_selector' (1 to 39 "
                        "letters, digits, '-', '_' and '.')",
                        cfg->dkim_operator_selector),
               false;
    return true;
}

static bool config_validate(const struct sesame_config *cfg, char *err, size_t errlen)
{
    if (!config_dkim_ok(cfg, err, errlen))
        return false;
    static const char *modes[] = {"deliver", "relay", "capture"};
    bool mode_ok = false;
    for (size_t i = 0; i < 3; i++)
        mode_ok |= !strcmp(cfg->delivery_mode, modes[i]);
    if (!mode_ok)
        return snprintf(err, errlen, "invalid value '%s' for key 'delivery.mode'",
                        cfg->delivery_mode),
               false;
    if (!config_tls_ok(cfg->delivery_tls, false) || !config_tls_ok(cfg->delivery_relay_tls, true))
        return snprintf(err, errlen,
                        "invalid TLS policy '%s' for key 'delivery.%s' (want none, "
                        "opportunistic, required%s)",
                        config_tls_ok(cfg->delivery_tls, false) ? cfg->delivery_relay_tls
                                                                : cfg->delivery_tls,
                        config_tls_ok(cfg->delivery_tls, false) ? "relay_tls" : "tls",
                        config_tls_ok(cfg->delivery_tls, false) ? " or implicit" : ""),
               false;
    if (!strcmp(cfg->delivery_mode, "relay") && !cfg->delivery_relay[0])
        return snprintf(err, errlen, "delivery.mode is relay but delivery.relay is empty"), false;
    if (strcmp(cfg->store_backend, "sqlite"))
        return snprintf(err, errlen,
                        "invalid value '%s' for key 'store.backend' (this build has: sqlite)",
                        cfg->store_backend),
               false;
    const char *listens[][2] = {{cfg->api_http_listen, "api.http_listen"},
                                {cfg->api_https_listen, "api.https_listen"},
                                {cfg->admin_listen, "admin.listen"},
                                {cfg->dns_resolver, "dns.resolver"},
                                {cfg->delivery_relay, "delivery.relay"}};
    for (size_t i = 0; i < 5; i++) {
        char host[CONFIG_ADDR_LEN];
        int port;
        if (listens[i][0][0] && !config_split_addr(listens[i][0], host, sizeof host, &port))
            return snprintf(err, errlen, "invalid address '%s' for key '%s' (want host:port)",
                            listens[i][0], listens[i][1]),
                   false;
    }
    if (!cfg->api_http_listen[0] && !cfg->api_https_listen[0])
        return snprintf(err, errlen, "no API listener: set api.https_listen or api.http_listen"),
               false;
    return true;
}

int config_load(const char *path, struct sesame_config *cfg, char *err, size_t errlen)
{
    char msg[512] = "";
    struct config_parse p = {cfg, msg, sizeof msg};
    int rc = ini_parse(path, config_handler, &p);
    if (rc == -1)
        return snprintf(err, errlen, "%s: cannot open", path), -1;
    if (rc != 0) {
        if (!msg[0])
            snprintf(msg, sizeof msg, "syntax error");
        return snprintf(err, errlen, "%s:%d: %s", path, rc, msg), -1;
    }
    if (!config_validate(cfg, msg, sizeof msg))
        return snprintf(err, errlen, "%s: %s", path, msg), -1;
    return 0;
}

bool config_has_region(const struct sesame_config *cfg, const char *region)
{
    for (int i = 0; i < cfg->region_count; i++)
        if (!strcmp(cfg->regions[i], region))
            return true;
    return false;
}

bool config_split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return false;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return false;
        h++, hl -= 2;
    }
    if (hl >= hostlen)
        return false;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return true;
}

void config_public_url(const struct sesame_config *cfg, char *out, size_t outlen)
{
    if (cfg->link_base_url[0]) {
        snprintf(out, outlen, "%s", cfg->link_base_url);
        return;
    }
    bool tls = cfg->api_https_listen[0] != '\0';
    char host[CONFIG_ADDR_LEN] = "localhost";
    int port = tls ? 443 : 80;
    config_split_addr(tls ? cfg->api_https_listen : cfg->api_http_listen, host, sizeof host, &port);
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
        core_strlcpy(host, cfg->hostname, sizeof host);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, outlen, "%s://%s%s%s:%d", tls ? "https" : "http", v6 ? "[" : "", host,
             v6 ? "]" : "", port);
}
