/* sesame init: a new instance directory with its development config, certificate,
 * store, first account and key, and the credentials and endpoints files (DESIGN.md). */
#include "admin/admin_internal.h"
#include "auth/auth.h"
#include "net/net.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct init_plan {
    char dir[PATH_MAX];
    int port_base;
    const char *regions[ADMIN_MAX_REPEAT];
    int region_count;
    const char *resolver, *mode, *relay, *hostname;
    int mx_port;
    bool auto_verify, production;
    char admin_token[65];
};

static int parse_port(const char *text, int *out, int max)
{
    char *end;
    long n = strtol(text, &end, 10);
    if (end == text || *end || n < 1 || n > max)
        return -1;
    *out = (int)n;
    return 0;
}

static int init_plan_parse(struct admin_ctx *ctx, struct init_plan *p)
{
    const char *dir = admin_opt(ctx, "dir");
    const char *base = admin_opt(ctx, "port-base");
    const char *mx = admin_opt(ctx, "mx-port");
    if (!dir)
        return admin_usage_error(&admin_init_verb, "--dir is required");
    p->port_base = 4500;
    p->mx_port = 25;
    if (base && parse_port(base, &p->port_base, 65535 - 100))
        return admin_fail("--port-base takes a port number up to 65435, not '%s'", base);
    if (mx && parse_port(mx, &p->mx_port, 65535))
        return admin_fail("--mx-port takes a port number, not '%s'", mx);
    p->region_count = admin_opt_all(ctx, "region", p->regions, ADMIN_MAX_REPEAT);
    p->resolver = admin_opt(ctx, "resolver");
    p->mode = admin_opt(ctx, "mode");
    p->relay = admin_opt(ctx, "relay");
    p->hostname = admin_opt(ctx, "hostname");
    p->auto_verify = admin_flag(ctx, "auto-verify");
    p->production = admin_flag(ctx, "production");
    if (p->mode && strcmp(p->mode, "deliver") && strcmp(p->mode, "relay") &&
        strcmp(p->mode, "capture"))
        return admin_fail("--mode takes deliver, relay or capture, not '%s'", p->mode);
    if (mkdir(dir, 0700) && errno != EEXIST)
        return admin_fail("cannot create %s: %s", dir, strerror(errno));
    if (!realpath(dir, p->dir))
        return admin_fail("cannot resolve %s: %s", dir, strerror(errno));
    unsigned char raw[32];
    core_random_bytes(raw, sizeof raw);
    core_hex_encode(raw, sizeof raw, p->admin_token);
    return ADMIN_OK;
}

static void write_config(FILE *f, const struct init_plan *p)
{
    int b = p->port_base;
    fprintf(f, "# Sesame development instance, written by `sesame init`.\n"
               "# Every key is documented in etc/sesame.conf.example.\n\n");
    fprintf(f, "[server]\nhostname = %s\n\n[regions]\nnames =",
            p->hostname ? p->hostname : "localhost");
    for (int i = 0; i < p->region_count; i++)
        fprintf(f, "%s %s", i ? "," : "", p->regions[i]);
    if (p->region_count == 0)
        fprintf(f, " us-east-1");
    fprintf(f,
            "\n\n[api]\nhttp_listen = 127.0.0.1:%d\nhttps_listen = 127.0.0.1:%d\n"
            "non_send_rate = 0\n\n",
            b, b + 1);
    fprintf(f, "[admin]\nlisten = 127.0.0.1:%d\ntoken = %s\n\n", b + 2, p->admin_token);
    fprintf(f, "[tls]\ncert = %s/tls/cert.pem\nkey = %s/tls/key.pem\n\n", p->dir, p->dir);
    fprintf(f, "[smtp]\nstarttls_listen = 127.0.0.1:%d\ntls_listen = 127.0.0.1:%d\n\n", b + 87,
            b + 65);
    fprintf(f, "[feedback]\nlisten = 127.0.0.1:%d\n\n", b + 25);
    fprintf(f, "[store]\nbackend = sqlite\npath = %s/sesame.db\nfsync = true\n\n", p->dir);
    fprintf(f, "[verification]\nauto_verify = %s\npoll_interval = 5s\n\n",
            p->auto_verify ? "true" : "false");
    fprintf(f, "[dns]\nresolver = %s\n\n", p->resolver ? p->resolver : "");
    /* Development: a failed notification POST is retried soon; subscribers may run on this
     * machine. */
    fprintf(f, "[notifications]\nretry_initial = 2s\nretry_max = 1m\nallow_private_endpoints = "
               "true\n\n");
    fprintf(f, "[delivery]\nmode = %s\nrelay = %s\nmx_port = %d\nallow_loopback_mx = true\n",
            p->mode ? p->mode : "deliver", p->relay ? p->relay : "", p->mx_port);
    /* Development: soft failures are retried soon, so their outcome shows quickly. */
    fprintf(f, "retry_initial = 10s\nretry_max = 10m\n");
    /* Development relays (a local Postfix, a test server) have self-signed certificates. */
    fprintf(f, "relay_tls_verify = false\n");
}

static int write_file(const char *dir, const char *name, mode_t mode,
                      void (*fill)(FILE *f, const void *arg), const void *arg)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mode_t old = umask((mode_t)(0777 & ~mode));
    FILE *f = fopen(path, "w");
    umask(old);
    if (!f)
        return admin_fail("cannot write %s: %s", path, strerror(errno));
    fill(f, arg);
    if (fclose(f))
        return admin_fail("cannot write %s: %s", path, strerror(errno));
    return ADMIN_OK;
}

static void fill_config(FILE *f, const void *arg)
{
    write_config(f, arg);
}

struct init_result {
    const struct init_plan *plan;
    const struct sesame_config *cfg;
    struct store_account acct;
    struct store_key key;
};

static void fill_credentials(FILE *f, const void *arg)
{
    const struct init_result *r = arg;
    fprintf(f, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\nregion = %s\n",
            r->key.key_id, r->key.secret, r->cfg->regions[0]);
}

static void fill_endpoints(FILE *f, const void *arg)
{
    const struct init_result *r = arg;
    int b = r->plan->port_base;
    char password[AUTH_SMTP_PASSWORD_LEN + 1];
    auth_smtp_password_v4(r->key.secret, r->cfg->regions[0], password);
    fprintf(f, "api_http = http://127.0.0.1:%d\napi_https = https://127.0.0.1:%d\n", b, b + 1);
    fprintf(f, "admin = http://127.0.0.1:%d\nsmtp_starttls = 127.0.0.1:%d\n", b + 2, b + 87);
    fprintf(f, "smtp_tls = 127.0.0.1:%d\nfeedback_smtp = 127.0.0.1:%d\n", b + 65, b + 25);
    fprintf(f, "smtp_username = %s\nsmtp_password = %s\nadmin_token = %s\n", r->key.key_id,
            password, r->plan->admin_token);
}

static int init_account_tx(struct admin_ctx *ctx, void *arg)
{
    struct init_result *r = arg;
    char err[ADMIN_ERR_LEN];
    int rc = admin_op_account_create(ctx->conn, &ctx->cfg, "default", NULL, r->plan->production,
                                     &r->acct, &r->key, err);
    return admin_op_report(rc, err);
}

static int init_run(struct admin_ctx *ctx)
{
    struct init_plan p = {0};
    int rc = init_plan_parse(ctx, &p);
    if (rc != ADMIN_OK)
        return rc;
    char path[PATH_MAX + 64], key_path[PATH_MAX + 64], err[512];
    snprintf(path, sizeof path, "%s/sesame.conf", p.dir);
    if (access(path, F_OK) == 0)
        return admin_fail("%s exists: this instance is already initialized", path);
    snprintf(path, sizeof path, "%s/tls", p.dir);
    if (mkdir(path, 0700) && errno != EEXIST)
        return admin_fail("cannot create %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/tls/cert.pem", p.dir);
    snprintf(key_path, sizeof key_path, "%s/tls/key.pem", p.dir);
    if (net_tls_self_signed(path, key_path, p.hostname ? p.hostname : "localhost", err, sizeof err))
        return admin_fail("%s", err);
    /* The config goes last of the files that define the instance, so a failed init can be
     * run again; it is written first to a temporary name that the store is opened from. */
    if ((rc = write_file(p.dir, "sesame.conf.new", 0600, fill_config, &p)) != ADMIN_OK)
        return rc;
    snprintf(path, sizeof path, "%s/sesame.conf.new", p.dir);
    ctx->config_path = path;
    if ((rc = admin_open(ctx)) != ADMIN_OK)
        return admin_close(ctx), rc;
    struct init_result r = {.plan = &p, .cfg = &ctx->cfg};
    rc = admin_write(ctx, init_account_tx, &r);
    if (rc == ADMIN_OK)
        rc = write_file(p.dir, "credentials", 0600, fill_credentials, &r);
    if (rc == ADMIN_OK)
        rc = write_file(p.dir, "endpoints", 0600, fill_endpoints, &r);
    admin_close(ctx);
    char final[PATH_MAX + 64];
    snprintf(final, sizeof final, "%s/sesame.conf", p.dir);
    if (rc == ADMIN_OK && rename(path, final))
        rc = admin_fail("cannot rename %s: %s", path, strerror(errno));
    if (rc != ADMIN_OK)
        return rc;
    printf("initialized %s\n", p.dir);
    admin_key_print(&r.key, &ctx->cfg, true);
    printf("api_http: http://127.0.0.1:%d\napi_https: https://127.0.0.1:%d\n", p.port_base,
           p.port_base + 1);
    return ADMIN_OK;
}

static const char *const init_value_opts[] = {"dir",   "port-base", "region",   "resolver", "mode",
                                              "relay", "mx-port",   "hostname", NULL};
static const char *const init_flags[] = {"auto-verify", "production", NULL};

const struct admin_verb admin_init_verb = {
    "init",
    "init --dir DIR [--port-base N] [--region R]... [--resolver HOST:PORT] "
    "[--mode deliver|relay|capture] [--relay HOST:PORT] [--mx-port N] [--hostname H] "
    "[--auto-verify] [--production]",
    init_value_opts,
    init_flags,
    init_run,
};
