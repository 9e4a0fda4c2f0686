/* fault.c - the switchable faults: parsing, the active set, and what they do to a request. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "standin.h"
#include "topowire/error.h"

/* Faults that take no argument. The AWS ones only change what imds.c answers. */
static const char *const plain_faults[] = {
    "401",
    "403",
    "404",
    "429",
    "500",
    "503",
    "garbage",
    "stall",
    "hang",
    "redirect",
    "huge",
    "drop",
    "v2-only",
    "put-hang",
    "put-403",
    "no-zone-id",
    "bad-zone",
    /* kube: one kind of request only (kube.c) */
    "watch-gone",
    "watch-end",
    "list-hang",
    "get-hang",
    NULL,
};

/* Faults with a number (FAULT:N) that kube.c applies to one kind of request. */
static const struct {
    const char *kind;
    long lo, hi;
} numbered_faults[] = {
    {"watch-cut", 1, 1000000},
    {"long-continue", 1, 1048576},
    {"long-rv", 1, 65536},
};

/* Faults that never answer a request themselves: the mode's handler reads them. */
static int passive(const char *kind)
{
    static const char *const kinds[] = {
        "slow",      "v2-only",       "put-hang",  "put-403",   "no-zone-id",
        "bad-zone",  "watch-gone",    "watch-end", "list-hang", "get-hang",
        "watch-cut", "long-continue", "long-rv",   NULL,
    };
    for (int i = 0; kinds[i]; i++)
        if (strcmp(kind, kinds[i]) == 0)
            return 1;
    return 0;
}

static int parse_num(const char *s, size_t n, long lo, long hi, long *out)
{
    if (n == 0 || n > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/*
 * Parses one fault spec ("429", "slow:200", "flaky:2:503") into out. Returns 0
 * or TW_EINVAL with a sentence in err.
 */
int st_fault_parse(const char *spec, st_fault *out, char *err)
{
    st_fault f;
    memset(&f, 0, sizeof(f));
    size_t len = strlen(spec);
    if (len == 0 || len >= sizeof(f.name))
        return tw_seterr(err, TW_EINVAL, "fault name is empty or too long");
    memcpy(f.name, spec, len + 1);
    const char *colon = strchr(spec, ':');
    size_t klen = colon ? (size_t)(colon - spec) : len;
    if (klen >= sizeof(f.kind))
        return tw_seterr(err, TW_EINVAL, "unknown fault '%s'", spec);
    memcpy(f.kind, spec, klen);
    f.kind[klen] = '\0';
    if (strcmp(f.kind, "slow") == 0) {
        if (colon == NULL || parse_num(colon + 1, strlen(colon + 1), 0, 600000, &f.ms) != 0)
            return tw_seterr(err, TW_EINVAL, "fault slow wants slow:MILLISECONDS (0..600000)");
    } else if (strcmp(f.kind, "flaky") == 0) {
        const char *c2 = colon ? strchr(colon + 1, ':') : NULL;
        long code = 0;
        if (c2 == NULL ||
            parse_num(colon + 1, (size_t)(c2 - colon - 1), 0, 1000000, &f.left) != 0 ||
            parse_num(c2 + 1, strlen(c2 + 1), 100, 599, &code) != 0 ||
            (code != 429 && code != 500 && code != 503))
            return tw_seterr(err, TW_EINVAL,
                             "fault flaky wants flaky:COUNT:CODE, CODE 429, 500 or 503");
        f.code = (int)code;
    } else if (colon != NULL) {
        int known = 0;
        for (size_t i = 0; i < sizeof(numbered_faults) / sizeof(numbered_faults[0]); i++) {
            if (strcmp(f.kind, numbered_faults[i].kind) != 0)
                continue;
            if (parse_num(colon + 1, strlen(colon + 1), numbered_faults[i].lo,
                          numbered_faults[i].hi, &f.n) != 0)
                return tw_seterr(err, TW_EINVAL, "fault %s wants %s:N, N in %ld..%ld", f.kind,
                                 f.kind, numbered_faults[i].lo, numbered_faults[i].hi);
            known = 1;
        }
        if (!known)
            return tw_seterr(err, TW_EINVAL, "unknown fault '%s'", spec);
    } else {
        int known = 0;
        for (int i = 0; plain_faults[i]; i++)
            known |= strcmp(spec, plain_faults[i]) == 0;
        if (!known)
            return tw_seterr(err, TW_EINVAL, "unknown fault '%s'", spec);
    }
    *out = f;
    return TW_OK;
}

/*
 * Replaces (add=0) or extends (add=1) the active faults with the
 * comma-separated list; an empty list with add=0 clears them. All or nothing:
 * on an error nothing changes.
 */
int st_faults_update(standin *st, const char *list, int add, char *err)
{
    st_fault parsed[ST_MAX_FAULT];
    int n = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            char one[64];
            if (len >= sizeof(one))
                return tw_seterr(err, TW_EINVAL, "fault name too long");
            memcpy(one, p, len);
            one[len] = '\0';
            if (n == ST_MAX_FAULT)
                return tw_seterr(err, TW_EINVAL, "too many faults (at most %d)", ST_MAX_FAULT);
            int rc = st_fault_parse(one, &parsed[n], err);
            if (rc != TW_OK)
                return rc;
            n++;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    int rc = TW_OK;
    pthread_mutex_lock(&st->mu);
    if (!add)
        st->nfaults = 0;
    if (st->nfaults + n > ST_MAX_FAULT) {
        rc = tw_seterr(err, TW_EINVAL, "too many faults (at most %d)", ST_MAX_FAULT);
    } else {
        memcpy(&st->faults[st->nfaults], parsed, (size_t)n * sizeof(parsed[0]));
        st->nfaults += n;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int st_fault_active(standin *st, const char *kind)
{
    int on = 0;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->nfaults && !on; i++)
        on = strcmp(st->faults[i].kind, kind) == 0;
    pthread_mutex_unlock(&st->mu);
    return on;
}

long st_fault_number(standin *st, const char *kind)
{
    long n = -1;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->nfaults && n < 0; i++)
        if (strcmp(st->faults[i].kind, kind) == 0)
            n = st->faults[i].n;
    pthread_mutex_unlock(&st->mu);
    return n;
}

void st_faults_json(standin *st, cJSON *out)
{
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->nfaults; i++) {
        const st_fault *f = &st->faults[i];
        if (strcmp(f->kind, "flaky") == 0) {
            /* Show how many failures are still to come. */
            char s[64];
            snprintf(s, sizeof(s), "flaky:%ld:%d", f->left, f->code);
            cJSON_AddItemToArray(out, cJSON_CreateString(s));
        } else {
            cJSON_AddItemToArray(out, cJSON_CreateString(f->name));
        }
    }
    pthread_mutex_unlock(&st->mu);
}

/* What a stalled answer starts with: a believable prefix of the real thing. */
static void stall_prefix(standin *st, st_resp *resp)
{
    if (st->opts.mode == ST_KUBE)
        st_reply(resp, 200, "application/json",
                 "{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"");
    else if (st->opts.cloud == ST_AZURE)
        st_reply(resp, 200, "application/json; charset=utf-8", "{\"compute\":{\"location\":\"");
    else if (st->opts.cloud == ST_GCP)
        st_reply(resp, 200, "application/text", "projects/");
    else
        st_reply(resp, 200, "text/plain", "us-east-");
}

/*
 * Applies the active common faults to one data request. hang and drop win over
 * everything; slow waits and lets the others decide; then the first deciding
 * fault in the order they were set answers. Returns 1 when resp was decided.
 */
int st_fault_apply(standin *st, const st_req *req, st_resp *resp)
{
    int hang = 0, drop = 0;
    long slow = 0;
    st_fault decide;
    int decided = 0;
    memset(&decide, 0, sizeof(decide));
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->nfaults; i++) {
        st_fault *f = &st->faults[i];
        if (strcmp(f->kind, "hang") == 0)
            hang = 1;
        else if (strcmp(f->kind, "drop") == 0)
            drop = 1;
        else if (strcmp(f->kind, "slow") == 0)
            slow += f->ms;
    }
    for (int i = 0; i < st->nfaults && !decided && !hang && !drop; i++) {
        st_fault *f = &st->faults[i];
        if (strcmp(f->kind, "flaky") == 0) {
            if (f->left > 0) {
                f->left--;
                decide = *f;
                decided = 1;
            }
        } else if (!passive(f->kind)) {
            decide = *f;
            decided = 1;
        }
    }
    pthread_mutex_unlock(&st->mu);

    if (hang) {
        resp->action = ST_HANG;
        snprintf(resp->note, sizeof(resp->note), "fault=hang");
        return 1;
    }
    if (drop) {
        resp->action = ST_DROP;
        snprintf(resp->note, sizeof(resp->note), "fault=drop");
        return 1;
    }
    if (slow > 0 && st_sleep(st, slow)) {
        resp->action = ST_DROP;
        return 1;
    }
    if (!decided)
        return 0;
    snprintf(resp->note, sizeof(resp->note), "fault=%s", decide.name);
    if (strcmp(decide.kind, "flaky") == 0) {
        st_error(st, req, resp, decide.code);
    } else if (strcmp(decide.kind, "garbage") == 0) {
        st_reply(resp, 200, "application/json",
                 "<html><head><title>OK</title></head><body>upstream answered garbage</body>"
                 "</html>\n");
    } else if (strcmp(decide.kind, "huge") == 0) {
        resp->status = 200;
        resp->ctype = "application/json";
        resp->action = ST_HUGE;
    } else if (strcmp(decide.kind, "stall") == 0) {
        stall_prefix(st, resp);
        resp->action = ST_STALL;
    } else if (strcmp(decide.kind, "redirect") == 0) {
        st_reply(resp, 302, "text/html", "<a href=\"/_control/redirect-target\">Found</a>.\n");
        st_add_header(resp, "Location", "/_control/redirect-target");
    } else {
        st_error(st, req, resp, (int)strtol(decide.kind, NULL, 10));
    }
    return 1;
}
