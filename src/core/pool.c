/* The CPU pool: a few threads for work too heavy for an event loop (RSA signatures, key
 * generation). Jobs wait in one FIFO; the finished job's done callback is posted back to
 * the caller's event base, so the caller's state is only ever touched by its own thread. */
#include "core/core.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define POOL_MAX_THREADS 64

struct pool_job {
    struct pool_job *next;
    struct event_base *base;
    core_pool_fn work, done;
    void *ctx;
};

struct core_pool {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct pool_job *head, *tail;
    bool stopping; /* the threads leave once the queue is empty */
    bool stopped;  /* they have left: core_pool_run works inline */
    int thread_count;
    pthread_t threads[POOL_MAX_THREADS];
    char name[16];
};

static void pool_job_complete(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct pool_job *job = arg;
    struct event *self = event_base_get_running_event(job->base);
    job->done(job->ctx);
    free(job);
    event_free(self);
}

static void pool_job_finish(struct pool_job *job)
{
    if (!job->done || !job->base) {
        if (job->done)
            job->done(job->ctx);
        free(job);
        return;
    }
    struct event *ev = event_new(job->base, -1, 0, pool_job_complete, job);
    if (!ev)
        abort();
    event_active(ev, 0, 0);
}

static struct pool_job *pool_take(struct core_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (!p->head && !p->stopping)
        pthread_cond_wait(&p->ready, &p->lock);
    struct pool_job *job = p->head;
    if (job && !(p->head = job->next))
        p->tail = NULL;
    pthread_mutex_unlock(&p->lock);
    return job;
}

static void *pool_main(void *arg)
{
    struct core_pool *p = arg;
    pthread_setname_np(pthread_self(), p->name);
    struct pool_job *job;
    while ((job = pool_take(p))) { /* NULL only when stopping and empty */
        job->work(job->ctx);
        pool_job_finish(job);
    }
    return NULL;
}

struct core_pool *core_pool_new(int threads, const char *name)
{
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (int)cores : 1;
    }
    if (threads > POOL_MAX_THREADS)
        threads = POOL_MAX_THREADS;
    struct core_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->ready, NULL);
    core_strlcpy(p->name, name ? name : "sesame-pool", sizeof p->name);
    for (; p->thread_count < threads; p->thread_count++)
        if (pthread_create(&p->threads[p->thread_count], NULL, pool_main, p) != 0) {
            log_error("pool: cannot start thread %d of %d", p->thread_count + 1, threads);
            core_pool_free(p);
            return NULL;
        }
    return p;
}

void core_pool_run(struct core_pool *p, struct event_base *base, core_pool_fn work,
                   core_pool_fn done, void *ctx)
{
    struct pool_job *job = calloc(1, sizeof *job);
    if (!job)
        abort();
    *job = (struct pool_job){NULL, base, work, done, ctx};
    pthread_mutex_lock(&p->lock);
    if (p->stopped) { /* draining: the caller's thread does it */
        pthread_mutex_unlock(&p->lock);
        work(ctx);
        if (done)
            done(ctx);
        free(job);
        return;
    }
    if (p->tail)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->lock);
}

void core_pool_stop(struct core_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    bool joined = p->stopped;
    p->stopping = true;
    pthread_cond_broadcast(&p->ready);
    pthread_mutex_unlock(&p->lock);
    if (joined)
        return;
    for (int i = 0; i < p->thread_count; i++)
        pthread_join(p->threads[i], NULL);
    /* The threads took every job queued before this point; later ones run inline. */
    pthread_mutex_lock(&p->lock);
    p->stopped = true;
    struct pool_job *left = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->lock);
    for (struct pool_job *job = left, *next; job; job = next) {
        next = job->next; /* queued between the threads' exit and the flag */
        job->work(job->ctx);
        pool_job_finish(job);
    }
}

void core_pool_free(struct core_pool *p)
{
    if (!p)
        return;
    core_pool_stop(p);
    pthread_cond_destroy(&p->ready);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int core_pool_threads(const struct core_pool *p)
{
    return p->thread_count;
}
