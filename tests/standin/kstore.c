/* kstore.c - the kube stand-in's nodes: a sorted set, a global resourceVersion, an event history,
 * watches. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <microhttpd.h>

#include <cjson/cJSON.h>

#include "kube.h"
#include "standin.h"
#include "topowire/clock.h"
#include "topowire/error.h"

/*
 * A snapshot is one state of one node at one resourceVersion. It never changes
 * once made, so the store and the event history share it by reference count
 * and readers use its strings after the lock is released (holding a ref).
 */
typedef struct ksnap {
    atomic_int refs;
    char *name;
    long long rv;
    cJSON *obj;    /* the full Node, "kind" and "apiVersion" first */
    char *full;    /* obj, serialised */
    char *partial; /* the PartialObjectMetadata form, serialised */
} ksnap;

enum { EV_ADDED, EV_MODIFIED, EV_DELETED };
static const char *const ev_names[] = {"ADDED", "MODIFIED", "DELETED"};

typedef struct kevent {
    long long rv;
    int type;
    ksnap *snap;
} kevent;

/* What a file in the nodes directory looked like when we last read it. */
typedef struct kfile {
    char *fname;
    char *node; /* the name it defined */
    struct timespec mtime;
    off_t size;
    ino_t ino;
    int seen;
} kfile;

struct kstore {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC; signalled on every change */
    atomic_int *stopping;
    ksnap **nodes; /* sorted by name */
    size_t n, cap;
    kevent *ring;
    size_t hcap, head, count;
    long long rv;
    long long floor; /* every event after this RV is still in the ring */
    unsigned expire_gen, drop_gen;
    int watches;
    char *dir;
    pthread_mutex_t sync_mu; /* one directory scan at a time */
    kfile *files;
    size_t nfiles;
};

#define NODE_PREFIX    "{\"kind\":\"Node\",\"apiVersion\":\"v1\","
#define PARTIAL_PREFIX "{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/v1\","

/* ---- snapshots ---- */

static void snap_unref(ksnap *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    free(s->name);
    cJSON_Delete(s->obj);
    free(s->full);
    free(s->partial);
    free(s);
}

static ksnap *snap_ref(ksnap *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

/* Returns obj's members behind "kind": "Node" and "apiVersion": "v1". Takes obj. */
static cJSON *normalize_node(cJSON *obj)
{
    cJSON *out = cJSON_CreateObject();
    if (out == NULL || cJSON_AddStringToObject(out, "kind", "Node") == NULL ||
        cJSON_AddStringToObject(out, "apiVersion", "v1") == NULL) {
        cJSON_Delete(out);
        cJSON_Delete(obj);
        return NULL;
    }
    cJSON *c = obj->child;
    while (c) {
        cJSON *next = c->next;
        if (c->string && strcmp(c->string, "kind") != 0 && strcmp(c->string, "apiVersion") != 0) {
            cJSON_DetachItemViaPointer(obj, c);
            cJSON_AddItemToObject(out, c->string, c);
        }
        c = next;
    }
    cJSON_Delete(obj);
    return out;
}

/*
 * Makes a snapshot of obj (taken, even on failure) at resourceVersion rv;
 * rv <= 0 keeps the object's own numeric resourceVersion. NULL when obj has
 * no metadata.name or memory runs out.
 */
static ksnap *snap_new(cJSON *obj, long long rv)
{
    ksnap *s = NULL;
    cJSON *partial = NULL;
    obj = normalize_node(obj);
    cJSON *md = obj ? cJSON_GetObjectItemCaseSensitive(obj, "metadata") : NULL;
    cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
    if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
        goto fail;
    if (rv <= 0) {
        cJSON *have = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
        rv = cJSON_IsString(have) ? strtoll(have->valuestring, NULL, 10) : 0;
        if (rv <= 0)
            rv = 1;
    }
    char rvs[32];
    snprintf(rvs, sizeof(rvs), "%lld", rv);
    if (cJSON_GetObjectItemCaseSensitive(md, "resourceVersion"))
        cJSON_ReplaceItemInObjectCaseSensitive(md, "resourceVersion", cJSON_CreateString(rvs));
    else
        cJSON_AddStringToObject(md, "resourceVersion", rvs);
    s = calloc(1, sizeof(*s));
    partial = cJSON_CreateObject();
    if (s == NULL || partial == NULL)
        goto fail;
    cJSON_AddStringToObject(partial, "kind", "PartialObjectMetadata");
    cJSON_AddStringToObject(partial, "apiVersion", "meta.k8s.io/v1");
    cJSON_AddItemToObject(partial, "metadata", cJSON_Duplicate(md, 1));
    atomic_init(&s->refs, 1);
    s->rv = rv;
    s->name = strdup(name->valuestring);
    s->full = cJSON_PrintUnformatted(obj);
    s->partial = cJSON_PrintUnformatted(partial);
    if (s->name == NULL || s->full == NULL || s->partial == NULL)
        goto fail;
    s->obj = obj;
    cJSON_Delete(partial);
    return s;
fail:
    if (s) {
        free(s->name);
        free(s->full);
        free(s->partial);
        free(s);
    }
    cJSON_Delete(partial);
    cJSON_Delete(obj);
    return NULL;
}

/* The object as a list item: list items carry no kind or apiVersion. */
static int append_item(tw_buf *out, const ksnap *s, int partial)
{
    const char *text = partial ? s->partial : s->full;
    const char *prefix = partial ? PARTIAL_PREFIX : NODE_PREFIX;
    size_t plen = strlen(prefix);
    if (strncmp(text, prefix, plen) != 0)
        return tw_buf_puts(out, text);
    int rc = tw_buf_puts(out, "{");
    return rc ? rc : tw_buf_puts(out, text + plen);
}

/* ---- the sorted node set and the history (callers hold mu) ---- */

static size_t find_node(const kstore *ks, const char *name, int *found)
{
    size_t lo = 0, hi = ks->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ks->nodes[mid]->name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static void push_event(kstore *ks, int type, ksnap *s)
{
    if (ks->count == ks->hcap) {
        kevent *old = &ks->ring[ks->head];
        ks->floor = old->rv;
        snap_unref(old->snap);
        ks->head = (ks->head + 1) % ks->hcap;
        ks->count--;
    }
    kevent *e = &ks->ring[(ks->head + ks->count) % ks->hcap];
    e->rv = s->rv;
    e->type = type;
    e->snap = snap_ref(s);
    ks->count++;
}

/* Puts s (taken) in place of any node of the same name; emits an event unless quiet. */
static int store_set(kstore *ks, ksnap *s, int quiet, int *created)
{
    int found;
    size_t at = find_node(ks, s->name, &found);
    if (found) {
        snap_unref(ks->nodes[at]);
        ks->nodes[at] = s;
    } else {
        if (ks->n == ks->cap) {
            size_t cap = ks->cap ? ks->cap * 2 : 64;
            ksnap **grown = realloc(ks->nodes, cap * sizeof(ksnap *));
            if (grown == NULL) {
                snap_unref(s);
                return TW_ENOMEM;
            }
            ks->nodes = grown;
            ks->cap = cap;
        }
        memmove(&ks->nodes[at + 1], &ks->nodes[at], (ks->n - at) * sizeof(ksnap *));
        ks->nodes[at] = s;
        ks->n++;
    }
    if (s->rv > ks->rv)
        ks->rv = s->rv;
    if (!quiet) {
        push_event(ks, found ? EV_MODIFIED : EV_ADDED, s);
        pthread_cond_broadcast(&ks->cv);
    }
    if (created)
        *created = !found;
    return TW_OK;
}

/* Removes the named node, emitting DELETED with its last state at a new RV. */
static int store_remove(kstore *ks, const char *name, long long *rv)
{
    int found;
    size_t at = find_node(ks, name, &found);
    if (!found)
        return TW_ENOTFOUND;
    ksnap *old = ks->nodes[at];
    ksnap *gone = snap_new(cJSON_Duplicate(old->obj, 1), ks->rv + 1);
    if (gone == NULL)
        return TW_ENOMEM;
    memmove(&ks->nodes[at], &ks->nodes[at + 1], (ks->n - at - 1) * sizeof(ksnap *));
    ks->n--;
    snap_unref(old);
    ks->rv = gone->rv;
    push_event(ks, EV_DELETED, gone);
    snap_unref(gone);
    pthread_cond_broadcast(&ks->cv);
    if (rv)
        *rv = ks->rv;
    return TW_OK;
}

/* ---- the nodes directory ---- */

static kfile *find_file(kstore *ks, const char *fname)
{
    for (size_t i = 0; i < ks->nfiles; i++)
        if (strcmp(ks->files[i].fname, fname) == 0)
            return &ks->files[i];
    return NULL;
}

/* Reads one file; returns a new Node object, or NULL when it is not one (yet). */
static cJSON *read_node_file(const char *path)
{
    char *text = st_read_file(path, ST_FILE_MAX, NULL);
    cJSON *obj = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
    const cJSON *name =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name");
    if (!cJSON_IsObject(obj) ||
        (kind && !(cJSON_IsString(kind) && strcmp(kind->valuestring, "Node") == 0)) ||
        !cJSON_IsString(name) || name->valuestring[0] == '\0') {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

/*
 * Brings the store in line with the directory. The first scan (initial=1)
 * keeps the files' resourceVersions and makes no events; later scans turn a
 * new file into ADDED, a changed one into MODIFIED and a removed one into
 * DELETED. A file that does not parse is left for the next scan.
 */
static void sync_dir(kstore *ks, int initial)
{
    if (ks->dir == NULL)
        return;
    pthread_mutex_lock(&ks->sync_mu);
    DIR *d = opendir(ks->dir);
    if (d == NULL) {
        pthread_mutex_unlock(&ks->sync_mu);
        return;
    }
    for (size_t i = 0; i < ks->nfiles; i++)
        ks->files[i].seen = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", ks->dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        kfile *f = find_file(ks, de->d_name);
        if (f && f->size == sb.st_size && f->ino == sb.st_ino &&
            f->mtime.tv_sec == sb.st_mtim.tv_sec && f->mtime.tv_nsec == sb.st_mtim.tv_nsec) {
            f->seen = 1;
            continue;
        }
        cJSON *obj = read_node_file(path);
        if (obj == NULL) {
            if (f)
                f->seen = 1;
            continue;
        }
        char *name = strdup(cJSON_GetObjectItemCaseSensitive(
                                cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name")
                                ->valuestring);
        if (f == NULL) {
            kfile *grown = realloc(ks->files, (ks->nfiles + 1) * sizeof(*grown));
            if (grown == NULL || name == NULL) {
                free(name);
                cJSON_Delete(obj);
                if (grown)
                    ks->files = grown;
                continue;
            }
            ks->files = grown;
            f = &ks->files[ks->nfiles++];
            memset(f, 0, sizeof(*f));
            f->fname = strdup(de->d_name);
        }
        pthread_mutex_lock(&ks->mu);
        if (f->node && name && strcmp(f->node, name) != 0)
            store_remove(ks, f->node, NULL);
        ksnap *s = snap_new(obj, initial ? 0 : ks->rv + 1);
        if (s)
            store_set(ks, s, initial, NULL);
        pthread_mutex_unlock(&ks->mu);
        free(f->node);
        f->node = name;
        f->seen = 1;
        f->size = sb.st_size;
        f->ino = sb.st_ino;
        f->mtime = sb.st_mtim;
    }
    closedir(d);
    for (size_t i = 0; i < ks->nfiles;) {
        kfile *f = &ks->files[i];
        if (f->seen || f->fname == NULL) {
            i++;
            continue;
        }
        pthread_mutex_lock(&ks->mu);
        if (f->node)
            store_remove(ks, f->node, NULL);
        pthread_mutex_unlock(&ks->mu);
        free(f->fname);
        free(f->node);
        ks->files[i] = ks->files[--ks->nfiles];
    }
    pthread_mutex_unlock(&ks->sync_mu);
}

void kstore_sync(kstore *ks)
{
    sync_dir(ks, 0);
}

kstore *kstore_new(const char *dir, long history, atomic_int *stopping, char *err)
{
    kstore *ks = calloc(1, sizeof(*ks));
    if (ks == NULL) {
        tw_seterr(err, TW_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ks->mu, NULL);
    pthread_mutex_init(&ks->sync_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ks->cv, &ca);
    pthread_condattr_destroy(&ca);
    ks->stopping = stopping;
    ks->hcap = (size_t)history;
    ks->ring = calloc(ks->hcap, sizeof(*ks->ring));
    ks->rv = 1;
    if (ks->ring == NULL) {
        tw_seterr(err, TW_ENOMEM, "out of memory");
        kstore_free(ks);
        return NULL;
    }
    if (dir) {
        DIR *d = opendir(dir);
        if (d == NULL) {
            tw_seterr(err, TW_EIO, "cannot read the nodes directory %s: %s", dir, strerror(errno));
            kstore_free(ks);
            return NULL;
        }
        closedir(d);
        ks->dir = strdup(dir);
        sync_dir(ks, 1);
    }
    /*
     * Nothing happened before start-up as far as watches know: a watch from
     * any loaded node's own resourceVersion is current, an older one is not.
     */
    ks->floor = ks->rv;
    for (size_t i = 0; i < ks->n; i++)
        if (ks->nodes[i]->rv < ks->floor)
            ks->floor = ks->nodes[i]->rv;
    return ks;
}

void kstore_free(kstore *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->n; i++)
        snap_unref(ks->nodes[i]);
    free(ks->nodes);
    for (size_t i = 0; ks->ring && i < ks->count; i++)
        snap_unref(ks->ring[(ks->head + i) % ks->hcap].snap);
    free(ks->ring);
    for (size_t i = 0; i < ks->nfiles; i++) {
        free(ks->files[i].fname);
        free(ks->files[i].node);
    }
    free(ks->files);
    free(ks->dir);
    pthread_cond_destroy(&ks->cv);
    pthread_mutex_destroy(&ks->mu);
    pthread_mutex_destroy(&ks->sync_mu);
    free(ks);
}

void kstore_wake(kstore *ks)
{
    pthread_mutex_lock(&ks->mu);
    pthread_cond_broadcast(&ks->cv);
    pthread_mutex_unlock(&ks->mu);
}

/* ---- reads ---- */

int kstore_get(kstore *ks, const char *name, int partial, tw_buf *out)
{
    pthread_mutex_lock(&ks->mu);
    int found;
    size_t at = find_node(ks, name, &found);
    ksnap *s = found ? snap_ref(ks->nodes[at]) : NULL;
    pthread_mutex_unlock(&ks->mu);
    if (s == NULL)
        return TW_ENOTFOUND;
    int rc = tw_buf_puts(out, partial ? s->partial : s->full);
    snap_unref(s);
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int kstore_list(kstore *ks, int partial, long limit, const char *cont, const kshape *shape,
                tw_buf *out, char *err)
{
    /* The continue token is the hex of the last name sent, then any padding after a '-'. */
    char after[1024] = "";
    if (cont && cont[0]) {
        size_t n = strcspn(cont, "-");
        if (n % 2 || n / 2 >= sizeof(after))
            return tw_seterr(err, TW_EINVAL, "continue key is not valid");
        for (size_t i = 0; i < n / 2; i++) {
            int hi = hexval(cont[2 * i]), lo = hexval(cont[2 * i + 1]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return tw_seterr(err, TW_EINVAL, "continue key is not valid");
            after[i] = (char)(hi * 16 + lo);
        }
        after[n / 2] = '\0';
    }
    pthread_mutex_lock(&ks->mu);
    size_t start = 0;
    if (after[0]) {
        int found;
        start = find_node(ks, after, &found);
        if (found)
            start++;
    }
    tw_buf items;
    tw_buf_init(&items, out->max);
    int rc = TW_OK;
    long sent = 0, remaining = 0;
    const char *last = NULL;
    for (size_t i = start; i < ks->n && rc == TW_OK; i++) {
        ksnap *s = ks->nodes[i];
        if (limit > 0 && sent == limit) {
            remaining++;
            continue;
        }
        if (sent > 0)
            rc = tw_buf_puts(&items, ",");
        if (rc == TW_OK)
            rc = append_item(&items, s, partial);
        last = s->name;
        sent++;
    }
    if (rc == TW_OK) {
        rc = tw_buf_printf(
            out,
            "{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%0*lld\"",
            partial ? "PartialObjectMetadataList" : "NodeList", partial ? "meta.k8s.io/v1" : "v1",
            (int)shape->rv_len, ks->rv);
    }
    if (rc == TW_OK && remaining > 0 && last) {
        rc = tw_buf_puts(out, ",\"continue\":\"");
        size_t start_len = out->len;
        for (const char *p = last; *p && rc == TW_OK; p++)
            rc = tw_buf_printf(out, "%02x", (unsigned char)*p);
        /* Real tokens are base64url and grow with the storage key; pad with that alphabet. */
        long pad = shape->cont_len - (long)(out->len - start_len) - 1;
        if (rc == TW_OK && pad >= 0)
            rc = tw_buf_puts(out, "-");
        for (long i = 0; i < pad && rc == TW_OK; i++)
            rc = tw_buf_puts(out, "A");
        if (rc == TW_OK)
            rc = tw_buf_printf(out, "\",\"remainingItemCount\":%ld", remaining);
    }
    pthread_mutex_unlock(&ks->mu);
    if (rc == TW_OK)
        rc = tw_buf_printf(out, "},\"items\":[%s]}", tw_buf_cstr(&items));
    tw_buf_free(&items);
    if (rc != TW_OK)
        return tw_seterr(err, rc, "the list does not fit in memory");
    return TW_OK;
}

/* ---- changes ---- */

int kstore_put(kstore *ks, const cJSON *node, int *created, long long *rv, char *err)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(node, "metadata"), "name");
    if (!cJSON_IsObject(node) || !cJSON_IsString(name) || name->valuestring[0] == '\0')
        return tw_seterr(err, TW_EINVAL, "the node has no metadata.name");
    pthread_mutex_lock(&ks->mu);
    ksnap *s = snap_new(cJSON_Duplicate(node, 1), ks->rv + 1);
    int rc = s ? store_set(ks, s, 0, created) : TW_ENOMEM;
    if (rc == TW_OK && rv)
        *rv = ks->rv;
    pthread_mutex_unlock(&ks->mu);
    if (rc != TW_OK)
        return tw_seterr(err, rc, "out of memory");
    return TW_OK;
}

int kstore_label(kstore *ks, const char *name, const char *key, const char *value, long long *rv)
{
    pthread_mutex_lock(&ks->mu);
    int found, rc = TW_OK;
    size_t at = find_node(ks, name, &found);
    if (!found) {
        rc = TW_ENOTFOUND;
        goto out;
    }
    cJSON *obj = cJSON_Duplicate(ks->nodes[at]->obj, 1);
    cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
    if (!cJSON_IsObject(labels)) {
        cJSON_DeleteItemFromObjectCaseSensitive(md, "labels");
        labels = cJSON_AddObjectToObject(md, "labels");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(labels, key);
    if (value && value[0])
        cJSON_AddStringToObject(labels, key, value);
    ksnap *s = snap_new(obj, ks->rv + 1);
    rc = s ? store_set(ks, s, 0, NULL) : TW_ENOMEM;
    if (rc == TW_OK && rv)
        *rv = ks->rv;
out:
    pthread_mutex_unlock(&ks->mu);
    return rc;
}

int kstore_delete(kstore *ks, const char *name, long long *rv)
{
    pthread_mutex_lock(&ks->mu);
    int rc = store_remove(ks, name, rv);
    pthread_mutex_unlock(&ks->mu);
    return rc;
}

/* A node as EKS managed node groups make them; i picks the address, the zone is given. */
static cJSON *synth_node(long i, const char *zone, const char *zone_id)
{
    char name[64], ip[32], uid[40], provider[96];
    long a = 64 + (i >> 16), b = (i >> 8) & 255, c = i & 255;
    snprintf(name, sizeof(name), "ip-10-%ld-%ld-%ld.ec2.internal", a, b, c);
    snprintf(ip, sizeof(ip), "10.%ld.%ld.%ld", a, b, c);
    snprintf(uid, sizeof(uid), "5e1d0c2a-%04lx-4b7e-9c3d-%012lx", (i >> 12) & 0xffff, i);
    snprintf(provider, sizeof(provider), "aws:///%s/i-0%016lx", zone, 0x5a17c0de000000L + i);
    cJSON *n = cJSON_CreateObject();
    cJSON_AddStringToObject(n, "kind", "Node");
    cJSON_AddStringToObject(n, "apiVersion", "v1");
    cJSON *md = cJSON_AddObjectToObject(n, "metadata");
    cJSON_AddStringToObject(md, "name", name);
    cJSON_AddStringToObject(md, "uid", uid);
    cJSON_AddStringToObject(md, "creationTimestamp", "2026-11-20T08:14:03Z");
    cJSON *l = cJSON_AddObjectToObject(md, "labels");
    cJSON_AddStringToObject(l, "beta.kubernetes.io/arch", "amd64");
    cJSON_AddStringToObject(l, "beta.kubernetes.io/instance-type", "m6i.2xlarge");
    cJSON_AddStringToObject(l, "beta.kubernetes.io/os", "linux");
    cJSON_AddStringToObject(l, "eks.amazonaws.com/capacityType", "ON_DEMAND");
    cJSON_AddStringToObject(l, "eks.amazonaws.com/nodegroup", "bench-executors");
    cJSON_AddStringToObject(l, "failure-domain.beta.kubernetes.io/region", "us-east-1");
    cJSON_AddStringToObject(l, "failure-domain.beta.kubernetes.io/zone", zone);
    cJSON_AddStringToObject(l, "kubernetes.io/arch", "amd64");
    cJSON_AddStringToObject(l, "kubernetes.io/hostname", name);
    cJSON_AddStringToObject(l, "kubernetes.io/os", "linux");
    cJSON_AddStringToObject(l, "node.kubernetes.io/instance-type", "m6i.2xlarge");
    cJSON_AddStringToObject(l, "topology.ebs.csi.aws.com/zone", zone);
    cJSON_AddStringToObject(l, "topology.k8s.aws/zone-id", zone_id);
    cJSON_AddStringToObject(l, "topology.kubernetes.io/region", "us-east-1");
    cJSON_AddStringToObject(l, "topology.kubernetes.io/zone", zone);
    cJSON *an = cJSON_AddObjectToObject(md, "annotations");
    cJSON_AddStringToObject(an, "alpha.kubernetes.io/provided-node-ip", ip);
    cJSON_AddStringToObject(an, "node.alpha.kubernetes.io/ttl", "0");
    cJSON_AddStringToObject(an, "volumes.kubernetes.io/controller-managed-attach-detach", "true");
    cJSON *spec = cJSON_AddObjectToObject(n, "spec");
    cJSON_AddStringToObject(spec, "providerID", provider);
    cJSON *status = cJSON_AddObjectToObject(n, "status");
    cJSON *addrs = cJSON_AddArrayToObject(status, "addresses");
    cJSON *ad = cJSON_CreateObject();
    cJSON_AddStringToObject(ad, "type", "InternalIP");
    cJSON_AddStringToObject(ad, "address", ip);
    cJSON_AddItemToArray(addrs, ad);
    ad = cJSON_CreateObject();
    cJSON_AddStringToObject(ad, "type", "Hostname");
    cJSON_AddStringToObject(ad, "address", name);
    cJSON_AddItemToArray(addrs, ad);
    cJSON *conds = cJSON_AddArrayToObject(status, "conditions");
    cJSON *cd = cJSON_CreateObject();
    cJSON_AddStringToObject(cd, "type", "Ready");
    cJSON_AddStringToObject(cd, "status", "True");
    cJSON_AddStringToObject(cd, "reason", "KubeletReady");
    cJSON_AddStringToObject(cd, "message", "kubelet is posting ready status");
    cJSON_AddItemToArray(conds, cd);
    cJSON *ni = cJSON_AddObjectToObject(status, "nodeInfo");
    cJSON_AddStringToObject(ni, "architecture", "amd64");
    cJSON_AddStringToObject(ni, "containerRuntimeVersion", "containerd://1.7.23");
    cJSON_AddStringToObject(ni, "kubeletVersion", "v1.31.4-eks-aeac579");
    cJSON_AddStringToObject(ni, "operatingSystem", "linux");
    cJSON_AddStringToObject(ni, "osImage", "Amazon Linux 2023.6.20241212");
    return n;
}

int kstore_generate(kstore *ks, long count, long zones, long long *rv)
{
    /* us-east-1 zone names and the zone IDs they map to in the fixtures' account. */
    static const char *const zone_names[] = {"us-east-1a", "us-east-1b", "us-east-1c",
                                             "us-east-1d", "us-east-1e", "us-east-1f"};
    static const char *const zone_ids[] = {"use1-az2", "use1-az4", "use1-az6",
                                           "use1-az1", "use1-az3", "use1-az5"};
    if (count < 1 || count > 1000000 || zones < 1 || zones > 6)
        return TW_EINVAL;
    int rc = TW_OK;
    pthread_mutex_lock(&ks->mu);
    for (long i = 0; i < count && rc == TW_OK; i++) {
        ksnap *s = snap_new(synth_node(i, zone_names[i % zones], zone_ids[i % zones]), ks->rv + 1);
        rc = s ? store_set(ks, s, 0, NULL) : TW_ENOMEM;
    }
    if (rv)
        *rv = ks->rv;
    pthread_mutex_unlock(&ks->mu);
    return rc;
}

void kstore_expire(kstore *ks)
{
    pthread_mutex_lock(&ks->mu);
    for (size_t i = 0; i < ks->count; i++)
        snap_unref(ks->ring[(ks->head + i) % ks->hcap].snap);
    ks->head = ks->count = 0;
    ks->floor = ks->rv;
    ks->expire_gen++;
    pthread_cond_broadcast(&ks->cv);
    pthread_mutex_unlock(&ks->mu);
}

void kstore_drop_watches(kstore *ks)
{
    pthread_mutex_lock(&ks->mu);
    ks->drop_gen++;
    pthread_cond_broadcast(&ks->cv);
    pthread_mutex_unlock(&ks->mu);
}

long long kstore_bump(kstore *ks)
{
    pthread_mutex_lock(&ks->mu);
    long long rv = ++ks->rv;
    pthread_cond_broadcast(&ks->cv);
    pthread_mutex_unlock(&ks->mu);
    return rv;
}

long long kstore_rv(kstore *ks)
{
    pthread_mutex_lock(&ks->mu);
    long long rv = ks->rv;
    pthread_mutex_unlock(&ks->mu);
    return rv;
}

void kstore_stats(kstore *ks, cJSON *out)
{
    char rvs[32];
    pthread_mutex_lock(&ks->mu);
    snprintf(rvs, sizeof(rvs), "%lld", ks->rv);
    cJSON_AddStringToObject(out, "resourceVersion", rvs);
    cJSON_AddNumberToObject(out, "nodes", (double)ks->n);
    cJSON_AddNumberToObject(out, "watches", ks->watches);
    cJSON_AddNumberToObject(out, "history", (double)ks->count);
    pthread_mutex_unlock(&ks->mu);
}

/* ---- watch streams ---- */

typedef struct kwatch {
    kstore *ks;
    int partial, bookmarks;
    long long next; /* every event up to this RV has been considered */
    uint64_t deadline_ms, bookmark_ms, interval_ms;
    unsigned expire_gen, drop_gen;
    tw_buf out;
    size_t off;
    int done;
    kshape shape;
    long events; /* event lines queued so far */
} kwatch;

static void watch_expired(kwatch *w, long long asked)
{
    tw_buf_printf(&w->out,
                  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                  "\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: "
                  "%lld (%lld)\",\"reason\":\"Expired\",\"code\":410}}\n",
                  asked, w->ks->floor + 1);
    w->done = 1;
}

static void watch_event(kwatch *w, const char *type, const ksnap *s)
{
    if (w->shape.cut_after > 0 && w->events >= w->shape.cut_after)
        return;
    w->events++;
    tw_buf_printf(&w->out, "{\"type\":\"%s\",\"object\":%s}\n", type,
                  w->partial ? s->partial : s->full);
}

int kwatch_open(kstore *ks, int partial, int bookmarks, const char *rv, long timeout_s,
                long interval_s, const kshape *shape, void **out, char *err)
{
    long long from = 0;
    if (rv && rv[0]) {
        char *end;
        errno = 0;
        from = strtoll(rv, &end, 10);
        if (*end != '\0' || errno || from < 0)
            return tw_seterr(err, TW_EINVAL, "resourceVersion: Invalid value: \"%s\"", rv);
    }
    kwatch *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return tw_seterr(err, TW_ENOMEM, "out of memory");
    w->ks = ks;
    w->partial = partial;
    w->bookmarks = bookmarks;
    w->shape = *shape;
    tw_buf_init(&w->out, 512u * 1024 * 1024);
    uint64_t now = tw_now_ms();
    w->deadline_ms = timeout_s > 0 ? now + (uint64_t)timeout_s * 1000 : 0;
    w->interval_ms = (uint64_t)interval_s * 1000;
    w->bookmark_ms = now + w->interval_ms;
    pthread_mutex_lock(&ks->mu);
    ks->watches++;
    w->expire_gen = ks->expire_gen;
    w->drop_gen = ks->drop_gen;
    if (from == 0) {
        /* No resourceVersion: the current state first, as ADDED events. */
        for (size_t i = 0; i < ks->n; i++)
            watch_event(w, "ADDED", ks->nodes[i]);
        w->next = ks->rv;
    } else if (from < ks->floor) {
        watch_expired(w, from);
    } else {
        w->next = from;
    }
    pthread_mutex_unlock(&ks->mu);
    *out = w;
    return TW_OK;
}

/* Appends the events after w->next (up to a batch) to w->out. Caller holds mu. */
static void watch_collect(kwatch *w)
{
    kstore *ks = w->ks;
    size_t lo = 0, hi = ks->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ks->ring[(ks->head + mid) % ks->hcap].rv <= w->next)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < ks->count; i++) {
        const kevent *e = &ks->ring[(ks->head + i) % ks->hcap];
        watch_event(w, ev_names[e->type], e->snap);
        w->next = e->rv;
        if (w->out.len > 256 * 1024)
            return;
    }
    /* Nothing left in the ring: changes outside the node set moved the RV too. */
    w->next = ks->rv;
}

ssize_t kwatch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    kwatch *w = cls;
    kstore *ks = w->ks;
    (void)pos;
    for (;;) {
        if (w->off < w->out.len) {
            size_t n = w->out.len - w->off;
            if (n > max)
                n = max;
            memcpy(buf, w->out.data + w->off, n);
            w->off += n;
            if (w->off == w->out.len) {
                tw_buf_reset(&w->out);
                w->off = 0;
            }
            return (ssize_t)n;
        }
        if (w->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (w->shape.cut_after > 0 && w->events >= w->shape.cut_after)
            return MHD_CONTENT_READER_END_WITH_ERROR; /* cut, as a flaky proxy would */
        kstore_sync(ks);
        pthread_mutex_lock(&ks->mu);
        if (atomic_load(ks->stopping) || ks->drop_gen != w->drop_gen) {
            pthread_mutex_unlock(&ks->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (ks->expire_gen != w->expire_gen) {
            watch_expired(w, w->next);
        } else if (ks->rv > w->next) {
            if (w->next < ks->floor)
                watch_expired(w, w->next);
            else
                watch_collect(w);
        } else {
            uint64_t now = tw_now_ms();
            if (w->deadline_ms && now >= w->deadline_ms) {
                w->done = 1;
            } else if (w->bookmarks && now >= w->bookmark_ms) {
                tw_buf_printf(&w->out,
                              "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":"
                              "\"%s\",\"metadata\":{\"resourceVersion\":\"%0*lld\"}}}\n",
                              w->partial ? "PartialObjectMetadata" : "Node",
                              w->partial ? "meta.k8s.io/v1" : "v1", (int)w->shape.rv_len, w->next);
                w->bookmark_ms = now + w->interval_ms;
            } else {
                /* Sleep until a change, the next bookmark, the deadline, or a directory check. */
                uint64_t until = now + 500;
                if (w->bookmarks && w->bookmark_ms < until)
                    until = w->bookmark_ms;
                if (w->deadline_ms && w->deadline_ms < until)
                    until = w->deadline_ms;
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t wait_ms = until > now ? until - now : 0;
                ts.tv_sec += (time_t)(wait_ms / 1000);
                ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&ks->cv, &ks->mu, &ts);
            }
        }
        pthread_mutex_unlock(&ks->mu);
    }
}

void kwatch_free(void *cls)
{
    kwatch *w = cls;
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->ks->mu);
    w->ks->watches--;
    pthread_mutex_unlock(&w->ks->mu);
    tw_buf_free(&w->out);
    free(w);
}
