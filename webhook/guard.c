/* guard.c - what a listener's connections may hold: slots, time to send a request, body memory. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "topowire/clock.h"
#include "topowire/error.h"

#include "webhook.h"

/*
 * libmicrohttpd only knows an idle timeout, reset by every byte, and a
 * connection limit that, once reached, leaves new connections waiting in the
 * kernel's backlog. The guard keeps its own table of a listener's
 * connections and enforces what that cannot:
 *
 * - a deadline for a complete request head (and TLS handshake) from accept,
 *   and for the next head of a keep-alive connection from the previous
 *   answer; a body deadline from the end of the head;
 * - a connection limit per client address and overall where a newcomer is
 *   never left waiting: room is made by closing the oldest connection that
 *   is still waiting for its request head (on the metrics listener, the
 *   oldest connection of any kind), or else the newcomer is closed at once;
 * - one memory budget for every request body held: a body that needs more
 *   takes it from the body that has gone longest without receiving data, or
 *   is refused.
 *
 * A connection is closed by shutdown(2) on its socket, from whichever thread
 * decides; libmicrohttpd then sees the end of the stream on its own thread
 * and closes it as usual. The socket stays valid while the guard can reach
 * it: libmicrohttpd reports a connection closed (hook_guard_closed) before
 * it closes the descriptor, and that call takes the guard's lock.
 */

typedef enum conn_state {
    CONN_HEAD, /* waiting for a request head (TLS handshake included) */
    CONN_BODY, /* head received, body arriving */
    CONN_BUSY  /* request complete, being answered */
} conn_state;

struct hook_conn {
    hook_conn *prev, *next;
    int fd;
    unsigned char addr[16]; /* IPv4 as v4-mapped IPv6 */
    conn_state state;
    uint64_t opened_ms;
    uint64_t deadline_ms;  /* of the current state; 0 = none */
    uint64_t last_data_ms; /* last body bytes received */
    size_t charged;        /* body bytes taken from the budget */
    bool served;           /* answered a request already (a keep-alive connection) */
    bool closing;          /* shut down by the guard */
    hook_guard_reason why; /* ... and why */
};

struct hook_guard {
    hook_guard_config cfg;
    pthread_mutex_t lock;
    hook_conn *head, *tail; /* oldest first */
    unsigned open;          /* connections in the table */
    unsigned closing;       /* ... of which shut down by the guard */
    size_t body_used;       /* charged to bodies */
    size_t body_releasing;  /* ... of which held by connections being closed */
};

static void addr_key(const struct sockaddr *sa, unsigned char key[16])
{
    memset(key, 0, 16);
    if (sa != NULL && sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else if (sa != NULL && sa->sa_family == AF_INET) {
        key[10] = 0xff;
        key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
}

int hook_guard_new(const hook_guard_config *cfg, hook_guard **out)
{
    hook_guard *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return TW_ENOMEM;
    g->cfg = *cfg;
    pthread_mutex_init(&g->lock, NULL);
    *out = g;
    return TW_OK;
}

void hook_guard_free(hook_guard *g)
{
    if (g == NULL)
        return;
    hook_conn *c = g->head;
    while (c != NULL) {
        hook_conn *next = c->next;
        free(c);
        c = next;
    }
    pthread_mutex_destroy(&g->lock);
    free(g);
}

/* Shuts c down for why. Call with the lock held. */
static void close_conn(hook_guard *g, hook_conn *c, hook_guard_reason why)
{
    if (c->closing)
        return;
    c->closing = true;
    c->why = why;
    g->closing++;
    g->body_releasing += c->charged;
    shutdown(c->fd, SHUT_RDWR);
    hook_metrics_guard(g->cfg.listener, why);
    if (why == HOOK_GUARD_BODY_TIMEOUT)
        hook_metrics_error(HOOK_ERR_TIMEOUT); /* a request refused, as when data comes late */
}

static bool evictable(const hook_guard *g, const hook_conn *c)
{
    return !c->closing && (c->state == CONN_HEAD || g->cfg.evict_any);
}

/*
 * Closes the oldest evictable connection (of address key, when not NULL).
 * Returns whether there was one. Call with the lock held.
 */
static bool evict_oldest(hook_guard *g, const unsigned char *key)
{
    for (hook_conn *c = g->head; c != NULL; c = c->next) {
        if (evictable(g, c) && (key == NULL || memcmp(c->addr, key, 16) == 0)) {
            close_conn(g, c, HOOK_GUARD_EVICTED);
            return true;
        }
    }
    return false;
}

bool hook_guard_admit(hook_guard *g, const struct sockaddr *addr)
{
    unsigned char key[16];
    addr_key(addr, key);
    bool ok = true;
    pthread_mutex_lock(&g->lock);
    unsigned same = 0;
    for (hook_conn *c = g->head; c != NULL; c = c->next)
        if (!c->closing && memcmp(c->addr, key, 16) == 0)
            same++;
    if (same >= g->cfg.max_per_address && !evict_oldest(g, key)) {
        hook_metrics_guard(g->cfg.listener, HOOK_GUARD_REFUSED_PER_ADDRESS);
        ok = false;
    } else if (g->open - g->closing >= g->cfg.max_connections && !evict_oldest(g, NULL)) {
        hook_metrics_guard(g->cfg.listener, HOOK_GUARD_REFUSED_LIMIT);
        ok = false;
    }
    pthread_mutex_unlock(&g->lock);
    return ok;
}

hook_conn *hook_guard_opened(hook_guard *g, int fd, const struct sockaddr *addr)
{
    hook_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        /* Untracked: libmicrohttpd's own limits and idle timeout still hold it. */
        return NULL;
    }
    c->fd = fd;
    addr_key(addr, c->addr);
    c->state = CONN_HEAD;
    c->opened_ms = tw_now_ms();
    c->deadline_ms = c->opened_ms + (uint64_t)g->cfg.head_timeout_ms;
    pthread_mutex_lock(&g->lock);
    c->prev = g->tail;
    if (g->tail)
        g->tail->next = c;
    else
        g->head = c;
    g->tail = c;
    g->open++;
    pthread_mutex_unlock(&g->lock);
    return c;
}

/* Gives back c's body memory. Call with the lock held. */
static void release_body(hook_guard *g, hook_conn *c)
{
    g->body_used -= c->charged;
    if (c->closing)
        g->body_releasing -= c->charged;
    c->charged = 0;
}

void hook_guard_closed(hook_guard *g, hook_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    release_body(g, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        g->tail = c->prev;
    g->open--;
    if (c->closing)
        g->closing--;
    pthread_mutex_unlock(&g->lock);
    free(c);
}

void hook_guard_head_done(hook_guard *g, hook_conn *c, bool body_expected)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    uint64_t now = tw_now_ms();
    c->state = body_expected ? CONN_BODY : CONN_BUSY;
    c->deadline_ms = body_expected ? now + (uint64_t)g->cfg.request_timeout_ms : 0;
    c->last_data_ms = now;
    pthread_mutex_unlock(&g->lock);
}

void hook_guard_body_done(hook_guard *g, hook_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    c->state = CONN_BUSY;
    c->deadline_ms = 0;
    pthread_mutex_unlock(&g->lock);
}

void hook_guard_release_body(hook_guard *g, hook_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    release_body(g, c);
    pthread_mutex_unlock(&g->lock);
}

void hook_guard_request_done(hook_guard *g, hook_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    release_body(g, c);
    c->state = CONN_HEAD;
    c->served = true;
    c->deadline_ms = tw_now_ms() + (uint64_t)g->cfg.idle_timeout_ms;
    pthread_mutex_unlock(&g->lock);
}

/* The body still receiving that has gone longest without data, other than self. */
static hook_conn *most_idle_body(hook_guard *g, const hook_conn *self)
{
    hook_conn *best = NULL;
    for (hook_conn *c = g->head; c != NULL; c = c->next)
        if (c != self && !c->closing && c->state == CONN_BODY && c->charged > 0 &&
            (best == NULL || c->last_data_ms < best->last_data_ms))
            best = c;
    return best;
}

int hook_guard_body_reserve(hook_guard *g, hook_conn *c, size_t total)
{
    if (c == NULL)
        return TW_OK;
    int rc = TW_OK;
    pthread_mutex_lock(&g->lock);
    c->last_data_ms = tw_now_ms();
    if (total > c->charged) {
        size_t need = total - c->charged;
        hook_conn *victim;
        /* What connections being closed still hold is on its way back. */
        while (g->body_used - g->body_releasing + need > g->cfg.body_budget &&
               (victim = most_idle_body(g, c)) != NULL)
            close_conn(g, victim, HOOK_GUARD_BODY_EVICTED);
        if (g->body_used - g->body_releasing + need > g->cfg.body_budget) {
            rc = TW_ETOOBIG;
        } else {
            g->body_used += need;
            c->charged = total;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
}

void hook_guard_sweep(hook_guard *g)
{
    pthread_mutex_lock(&g->lock);
    uint64_t now = tw_now_ms();
    for (hook_conn *c = g->head; c != NULL; c = c->next) {
        if (c->closing || c->deadline_ms == 0 || now < c->deadline_ms)
            continue;
        if (c->state == CONN_HEAD)
            close_conn(g, c, c->served ? HOOK_GUARD_IDLE_TIMEOUT : HOOK_GUARD_HEAD_TIMEOUT);
        else if (c->state == CONN_BODY)
            close_conn(g, c, HOOK_GUARD_BODY_TIMEOUT);
    }
    pthread_mutex_unlock(&g->lock);
}

void hook_guard_stats(hook_guard *g, unsigned *open, size_t *body_bytes)
{
    pthread_mutex_lock(&g->lock);
    if (open)
        *open = g->open - g->closing;
    if (body_bytes)
        *body_bytes = g->body_used;
    pthread_mutex_unlock(&g->lock);
}
