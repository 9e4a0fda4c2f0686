/* arena.c - a per-thread bump allocator for the JSON trees of one review (cJSON's hooks). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "webhook.h"

/*
 * A review parses a few hundred small JSON nodes, builds a patch of as many,
 * and frees them all at the end. With the system allocator that is most of
 * the server's CPU under load (allocator locks, fastbin consolidation when
 * the larger buffers come and go). While a thread's arena is active, cJSON
 * allocates from it by bumping a pointer and frees are no-ops; the arena is
 * rewound when the review is done. Outside an active arena cJSON uses
 * malloc and free as usual, so the rest of the program is unaffected.
 */

#define CHUNK_SIZE (64 * 1024)
/*
 * The most one review may take. A 3 MiB review of real objects (mostly
 * strings) needs a few MiB; a body of three million tiny values would need
 * over 100 MiB of nodes. Past the cap allocations fail and the review is
 * refused, so memory stays bounded by threads x cap.
 */
#define ARENA_MAX (24 * 1024 * 1024)
/*
 * What all threads' arenas may take together beyond their first chunk, so
 * that memory does not grow with the number of worker threads (one per core
 * by default): one review at the per-review cap still leaves room for the
 * ordinary reviews of every other thread.
 */
#define ARENA_SHARED_MAX (HOOK_ARENA_SHARED_MIB * 1024 * 1024)
#define ALIGN            16

typedef struct chunk {
    struct chunk *next;
    size_t size; /* usable bytes after the header */
    size_t used;
} chunk;

typedef struct arena {
    chunk *first; /* kept between reviews */
    chunk *cur;
    size_t taken;  /* bytes of chunks in use for this review */
    size_t shared; /* ... of which taken from the shared allowance */
    int active;
    int exhausted; /* an allocation was refused for being past ARENA_MAX */
} arena;

/* Each thread's arena; the key's destructor frees it when the thread ends. */
static __thread arena *thread_arena;
static atomic_size_t shared_taken;
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

#define HEADER        ((sizeof(chunk) + ALIGN - 1) & ~(size_t)(ALIGN - 1))
#define CHUNK_DATA(c) ((char *)(c) + HEADER)

static chunk *chunk_new(size_t want)
{
    size_t size = want > CHUNK_SIZE ? want : CHUNK_SIZE;
    chunk *c = malloc(HEADER + size);
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

static void *arena_malloc(size_t n)
{
    arena *a = thread_arena;
    if (a == NULL || !a->active)
        return malloc(n);
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (a->cur == NULL || a->cur->size - a->cur->used < n) {
        size_t size = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        if (a->taken + n > ARENA_MAX ||
            atomic_fetch_add(&shared_taken, size) + size > ARENA_SHARED_MAX) {
            if (a->taken + n <= ARENA_MAX)
                atomic_fetch_sub(&shared_taken, size);
            a->exhausted = 1;
            return NULL;
        }
        chunk *c = chunk_new(n);
        if (c == NULL) {
            atomic_fetch_sub(&shared_taken, size);
            return NULL;
        }
        a->shared += size;
        if (a->cur == NULL)
            a->first = c;
        else
            a->cur->next = c;
        a->cur = c;
        a->taken += c->size;
    }
    void *p = CHUNK_DATA(a->cur) + a->cur->used;
    a->cur->used += n;
    return p;
}

static int arena_owns(const arena *a, const void *p)
{
    for (const chunk *c = a->first; c != NULL; c = c->next) {
        const char *d = CHUNK_DATA(c);
        if ((const char *)p >= d && (const char *)p < d + c->size)
            return 1;
    }
    return 0;
}

static void arena_free(void *p)
{
    arena *a = thread_arena;
    if (p == NULL || (a != NULL && a->active && arena_owns(a, p)))
        return;
    free(p);
}

static void arena_destroy(void *p)
{
    arena *a = p;
    atomic_fetch_sub(&shared_taken, a->shared);
    chunk *c = a->first;
    while (c != NULL) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

static void make_key(void)
{
    pthread_key_create(&arena_key, arena_destroy);
}

void hook_arena_install(void)
{
    pthread_once(&arena_once, make_key);
    cJSON_Hooks hooks = {arena_malloc, arena_free};
    cJSON_InitHooks(&hooks);
}

int hook_arena_begin(void)
{
    arena *a = thread_arena;
    if (a == NULL) {
        a = calloc(1, sizeof(*a));
        if (a == NULL)
            return -1;
        a->first = chunk_new(CHUNK_SIZE);
        if (a->first == NULL || pthread_setspecific(arena_key, a) != 0) {
            free(a->first);
            free(a);
            return -1;
        }
        thread_arena = a;
    }
    a->cur = a->first;
    a->first->used = 0;
    a->taken = a->first->size;
    a->exhausted = 0;
    a->active = 1;
    return 0;
}

void hook_arena_end(void)
{
    arena *a = thread_arena;
    if (a == NULL)
        return;
    a->active = 0;
    /* Keep the first chunk for the next review; give back what a big one needed. */
    chunk *c = a->first->next;
    while (c != NULL) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    a->first->next = NULL;
    a->first->used = 0;
    a->cur = a->first;
    atomic_fetch_sub(&shared_taken, a->shared);
    a->shared = 0;
}

bool hook_arena_exhausted(void)
{
    return thread_arena != NULL && thread_arena->exhausted;
}
