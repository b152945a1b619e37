/* DKIM signing throughput of the CPU pool (bench/README.md, "DKIM"): M messages of SIZE
 * bytes signed through core_pool with T threads, the same code path sesamed uses
 * (mail_dkim_sign with a loaded key, c=relaxed/simple, the seed's header list). Prints
 * signatures per second; bench/dkim.sh puts it beside `openssl speed rsa2048`.
 * usage: dkim_bench [-t THREADS] [-m MESSAGES] [-s SIZE] [-b BITS (0: Ed25519)] */
#include "core/core.h"
#include "mail/mail.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct mail_dkim_key *key;
static struct buf message;
static atomic_int left;
static atomic_int failures;

static void sign_one(void *ctx)
{
    (void)ctx;
    struct buf out;
    buf_init(&out);
    struct mail_dkim_signer s = {.domain = "example.com",
                                 .selector = "abcdefghijklmnopqrstuvwxyz234567",
                                 .key = key,
                                 .time_s = 1796190744};
    char err[256];
    if (mail_dkim_sign(message.data, message.len, &s, &out, err, sizeof err) != 0)
        atomic_fetch_add(&failures, 1);
    buf_free(&out);
    atomic_fetch_sub(&left, 1);
}

static void build_message(size_t size)
{
    buf_init(&message);
    buf_puts(&message, "From: bench@example.com\r\nTo: rcpt@sink.bench\r\nSubject: bench\r\n"
                       "Date: Wed, 02 Dec 2026 05:00:00 +0000\r\n"
                       "Message-ID: <bench@email.amazonses.com>\r\nMIME-Version: 1.0\r\n"
                       "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    while (message.len + 78 < size)
        buf_puts(&message, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "0123456789ab\r\n");
}

int main(int argc, char **argv)
{
    int threads = 0, messages = 20000, bits = 2048, opt;
    size_t size = 10240;
    while ((opt = getopt(argc, argv, "t:m:s:b:")) != -1) {
        if (opt == 't')
            threads = atoi(optarg);
        else if (opt == 'm')
            messages = atoi(optarg);
        else if (opt == 's')
            size = (size_t)atol(optarg);
        else if (opt == 'b')
            bits = atoi(optarg);
        else
            return fprintf(stderr, "usage: dkim_bench [-t T] [-m M] [-s SIZE] [-b BITS]\n"), 2;
    }
    struct buf pem, pub;
    buf_init(&pem);
    buf_init(&pub);
    char err[256];
    if (mail_dkim_keygen(bits, &pem, &pub) != 0 ||
        !(key = mail_dkim_key_load(buf_cstr(&pem), err, sizeof err)))
        return fprintf(stderr, "dkim_bench: no key\n"), 1;
    build_message(size);
    struct core_pool *pool = core_pool_new(threads, "dkim-bench");
    atomic_store(&left, messages);
    int64_t t0 = core_monotonic_us();
    for (int i = 0; i < messages; i++)
        core_pool_run(pool, NULL, sign_one, NULL, NULL);
    while (atomic_load(&left) > 0)
        usleep(1000);
    int64_t us = core_monotonic_us() - t0;
    printf("dkim_bench: %d signatures (%s, %zu-byte messages) with %d pool threads in %.2f s: "
           "%.0f/s; %d failures\n",
           messages, bits ? "rsa-sha256" : "ed25519-sha256", message.len, core_pool_threads(pool),
           us / 1e6, messages * 1e6 / us, atomic_load(&failures));
    core_pool_free(pool);
    mail_dkim_key_free((struct mail_dkim_key *)key);
    buf_free(&pem);
    buf_free(&pub);
    buf_free(&message);
    return atomic_load(&failures) ? 1 : 0;
}
