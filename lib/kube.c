/* kube.c - a minimal Kubernetes API client: retries, credentials, node labels. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "topowire/assert.h"
#include "topowire/buf.h"
#include "topowire/clock.h"
#include "topowire/dnsname.h"
#include "topowire/error.h"
#include "topowire/httpstatus.h"
#include "topowire/jitter.h"
#include "topowire/json.h"
#include "topowire/kube.h"
#include "topowire/text.h"

#include "kube_int.h"

#define KUBE_MAX_BODY (4u * 1024 * 1024)
/* Room for a LIST continue token of TW_KUBE_CONTINUE_MAX bytes, percent-encoded. */
#define KUBE_URL_MAX (4 * TW_KUBE_CONTINUE_MAX)
/* Connecting may take this long, so that a black-holed address leaves time to retry. */
#define KUBE_CONNECT_TIMEOUT_MS 5000L
/* An answer in progress that sends nothing for this long is given up. */
#define KUBE_LOW_SPEED_MS 15000L
/* A watch is quiet between events; API servers send a bookmark about every minute. */
#define KUBE_WATCH_IDLE_MS 150000L
/* Backoff: full jitter over 200 ms doubling up to 2 s. */
#define KUBE_BACKOFF_BASE_MS 200L
#define KUBE_BACKOFF_CAP_MS  2000L
/* The longest Retry-After honoured; a longer one is waited this long. */
#define KUBE_RETRY_AFTER_CAP_MS 10000L
/* Attempts per call at most, even with time left (and the bound when there is no deadline). */
#define KUBE_MAX_ATTEMPTS 10
/* Another attempt is only worth starting with at least this much time left after the wait. */
#define KUBE_MIN_ATTEMPT_MS 50L

#define NODE_ACCEPT "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"

struct tw_kube_client {
    tw_kube_config *cfg; /* borrowed */
    char *user_agent;
    tw_http_client *http;
    int (*should_abort)(void *ud);
    void *abort_ud;
};

void tw_kube_client_set_abort(tw_kube_client *c, int (*should_abort)(void *ud), void *ud)
{
    c->should_abort = should_abort;
    c->abort_ud = ud;
}

static int aborted(const tw_kube_client *c)
{
    return c->should_abort != NULL && c->should_abort(c->abort_ud);
}

/* Sleeps ms (within deadline), waking every 100 ms to see whether the client was aborted. */
static void pause_abortable(const tw_kube_client *c, long ms, uint64_t deadline)
{
    uint64_t until = tw_now_ms() + (uint64_t)(ms > 0 ? ms : 0);
    if (deadline != 0 && deadline < until)
        until = deadline;
    for (;;) {
        uint64_t now = tw_now_ms();
        if (aborted(c) || now >= until)
            return;
        tw_sleep_ms(until - now < 100 ? (long)(until - now) : 100, until);
    }
}

tw_kube_client *tw_kube_client_new(tw_kube_config *cfg, const char *user_agent)
{
    tw_kube_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->cfg = cfg;
    c->user_agent = user_agent ? strdup(user_agent) : NULL;
    c->http = tw_http_client_new();
    if ((user_agent != NULL && c->user_agent == NULL) || c->http == NULL) {
        tw_kube_client_free(c);
        return NULL;
    }
    return c;
}

void tw_kube_client_free(tw_kube_client *c)
{
    if (c == NULL)
        return;
    tw_http_client_free(c->http);
    free(c->user_agent);
    free(c);
}

/* Makes a message safe to show in place (a server's text may carry line breaks, any bytes). */
static void flatten(char *s)
{
    size_t n = strlen(s);
    tw_text_show(s, n + 1, s, n);
}

/*
 * Overwrites every occurrence of secret in s with '*'. Secrets shorter than 8
 * bytes are not real tokens and would mangle ordinary words, so they are left.
 */
static void redact(char *s, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n < 8)
        return;
    for (char *p = strstr(s, secret); p != NULL; p = strstr(p + n, secret))
        memset(p, '*', n);
}

void tw__kube_status_message(const char *json, size_t len, long http_status, char *err)
{
    if (err == NULL)
        return;
    snprintf(err, TW_ERRLEN, "HTTP %ld", http_status);
    if (json == NULL || len == 0)
        return;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root))
        goto out;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(root, "reason");
    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "Status") != 0)
        goto out;
    const char *r = cJSON_IsString(reason) && reason->valuestring[0] ? reason->valuestring : NULL;
    const char *m = cJSON_IsString(msg) && msg->valuestring[0] ? msg->valuestring : NULL;
    if (r && m)
        snprintf(err, TW_ERRLEN, "%ld %s: %s", http_status, r, m);
    else if (r || m)
        snprintf(err, TW_ERRLEN, "%ld %s", http_status, r ? r : m);
    flatten(err);
out:
    cJSON_Delete(root);
}

/* Builds server + path into url (caller frees). */
static int make_url(const tw_kube_config *cfg, const char *path, char **url, char *err)
{
    if (cfg->server == NULL || cfg->server[0] == '\0')
        return tw_seterr(err, TW_EINVAL, "the Kubernetes configuration names no server");
    if (path == NULL || path[0] != '/')
        return tw_seterr(err, TW_EINVAL, "a Kubernetes API path must start with '/'");
    size_t n = strlen(cfg->server);
    while (n > 0 && cfg->server[n - 1] == '/')
        n--;
    tw_buf b;
    tw_buf_init(&b, KUBE_URL_MAX);
    int rc = tw_buf_printf(&b, "%.*s%s", (int)n, cfg->server, path);
    if (rc != TW_OK) {
        tw_buf_free(&b);
        return rc == TW_ETOOBIG ? tw_seterr(err, TW_EINVAL, "the Kubernetes API URL is too long")
                                : rc;
    }
    *url = tw_buf_detach(&b);
    return *url ? TW_OK : TW_ENOMEM;
}

/* Fetches the bearer token (NULL for certificate-only authentication) into *token. */
static int get_token(tw_kube_client *c, int refresh, uint64_t deadline, char **token, char *err)
{
    char *t = NULL;
    char cerr[TW_ERRLEN] = "";
    int rc = tw_kube_config_credentials(c->cfg, refresh, deadline, &t, cerr);
    if (rc != TW_OK)
        return tw_seterr(err, rc, "Kubernetes credentials: %s", cerr[0] ? cerr : tw_strerror(rc));
    if (t != NULL && t[0] == '\0') {
        free(t);
        t = NULL;
    }
    free(*token);
    *token = t;
    return TW_OK;
}

static void free_token(char *t)
{
    if (t == NULL)
        return;
    explicit_bzero(t, strlen(t));
    free(t);
}

/* Returns a new string a + b (caller frees), or NULL on out-of-memory. */
static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s%s", a, b);
    return s;
}

static void swap_responses(tw_http_response *a, tw_http_response *b)
{
    tw_http_response t = *a;
    *a = *b;
    *b = t;
}

/*
 * A request to the API server with the config's TLS settings and the client's
 * limits. With an exec plugin, which may swap the client certificate from
 * another thread, the pair is copied under the plugin's lock into pair[0] and
 * pair[1] (free with free_pair after the request). Returns 0 or TW_ENOMEM.
 */
static int api_request(const tw_kube_client *c, const char *url, const char *const *headers,
                       const char *token, uint64_t deadline, tw_http_request *req, char *pair[2])
{
    *req = (tw_http_request){
        .url = url,
        .headers = headers,
        .bearer_token = token,
        .ca_file = c->cfg->ca_file,
        .ca_pem = c->cfg->ca_pem,
        .client_cert_pem = c->cfg->client_cert_pem,
        .client_key_pem = c->cfg->client_key_pem,
        .insecure_skip_verify = c->cfg->insecure_skip_verify,
        .user_agent = c->user_agent,
        .deadline = deadline,
        .connect_timeout_ms = KUBE_CONNECT_TIMEOUT_MS,
        .low_speed_ms = KUBE_LOW_SPEED_MS,
        .max_body = KUBE_MAX_BODY,
    };
    pair[0] = pair[1] = NULL;
    if (c->cfg->exec == NULL)
        return TW_OK;
    if (tw_kube_config_client_pair(c->cfg, &pair[0], &pair[1]) != TW_OK)
        return TW_ENOMEM;
    req->client_cert_pem = pair[0];
    req->client_key_pem = pair[1];
    return TW_OK;
}

static void free_pair(char *pair[2])
{
    free(pair[0]);
    free_token(pair[1]); /* the key: wiped like a token */
    pair[0] = pair[1] = NULL;
}

/* Header lines a call sends at most (Accept, Content-Type), plus the terminating NULL. */
#define CALL_HEADERS 3

/* One call to the API server (tw_kube_do or a stream): what its attempts share. */
typedef struct call {
    tw_kube_client *c;
    uint64_t deadline;
    char *url;
    char *token; /* NULL: certificate-only authentication */
    char *accept_h, *ctype_h;
    const char *headers[CALL_HEADERS]; /* accept_h and ctype_h when set, NULL-terminated */
    int attempt;                       /* attempts started (tw_kube_do) */
    bool refreshed;                    /* the credentials were re-read after a 401 */
    char msg[TW_ERRLEN];               /* why the last attempt failed, token redacted */
} call;

/* Outcomes of one attempt of tw_kube_do. */
enum { STEP_DONE, STEP_NOW, STEP_WAIT };

/*
 * Starts a call: the URL, the headers and the credentials. Returns 0 or an
 * error with err set; call_close must follow either way.
 */
static int call_open(call *k, tw_kube_client *c, const char *path, const char *accept,
                     const char *content_type, uint64_t deadline, char *err)
{
    *k = (call){.c = c, .deadline = deadline};
    int rc = make_url(c->cfg, path, &k->url, err);
    if (rc != TW_OK)
        return rc;
    if ((accept && (k->accept_h = join("Accept: ", accept)) == NULL) ||
        (content_type && (k->ctype_h = join("Content-Type: ", content_type)) == NULL))
        return TW_ENOMEM;
    int nh = 0;
    if (k->accept_h)
        k->headers[nh++] = k->accept_h;
    if (k->ctype_h)
        k->headers[nh++] = k->ctype_h;
    TW_ASSERT(nh < CALL_HEADERS);
    return get_token(c, 0, deadline, &k->token, err);
}

/* Ends a call that returns rc: a failure's err made safe to show, without the token. */
static int call_close(call *k, int rc, char *err)
{
    if (rc != TW_OK && err != NULL) {
        flatten(err);
        redact(err, k->token);
    }
    free_token(k->token);
    free(k->url);
    free(k->accept_h);
    free(k->ctype_h);
    *k = (call){0};
    return rc;
}

/*
 * Sends rq once into cur; an answer received is swapped into resp, so resp
 * keeps the last answer actually received. *hrc and *status receive
 * tw_http_do's result and the answer's status. Returns 0 or TW_ENOMEM
 * (nothing sent).
 */
static int send_once(call *k, const tw_kube_request *rq, tw_http_response *resp,
                     tw_http_response *cur, int *hrc, long *status, char herr[TW_ERRLEN])
{
    /* Built per attempt: an exec plugin may have swapped the client certificate. */
    tw_http_request req;
    char *pair[2];
    if (api_request(k->c, k->url, k->headers, k->token, k->deadline, &req, pair) != TW_OK)
        return TW_ENOMEM;
    req.method = rq->method;
    req.body = rq->body;
    req.body_len = rq->body_len;
    req.should_abort = k->c->should_abort;
    req.abort_ud = k->c->abort_ud;
    *hrc = tw_http_do(k->c->http, &req, cur, herr);
    free_pair(pair);
    *status = cur->status;
    if (*status != 0)
        swap_responses(resp, cur);
    return TW_OK;
}

/* A 401: re-reads the credentials once and tries again at once if time allows. */
static int reauth(call *k, int *rc, char *err)
{
    k->refreshed = true;
    char cerr[TW_ERRLEN] = "";
    *rc = get_token(k->c, 1, k->deadline, &k->token, cerr);
    if (*rc != TW_OK) {
        tw_seterr(err, *rc, "%s, then %s", k->msg, cerr);
        return STEP_DONE;
    }
    if (k->attempt < KUBE_MAX_ATTEMPTS && (k->deadline == 0 || tw_remaining_ms(k->deadline) > 0))
        return STEP_NOW;
    *rc = tw_seterr(err, TW_EUNAUTH, "%s (no time left to try the re-read token)", k->msg);
    return STEP_DONE;
}

/*
 * Judges one attempt: tw_http_do's result hrc (herr its message) and, when an
 * answer came, its status and body (in resp). Returns STEP_DONE with *rc the
 * call's result (err set on failure), STEP_NOW to try again at once, or
 * STEP_WAIT to try again after a wait, with k->msg saying what failed.
 */
static int judge(call *k, int hrc, long status, const char *herr, const tw_http_response *resp,
                 int *rc, char *err)
{
    if (hrc == TW_ENET) {
        snprintf(k->msg, sizeof(k->msg), "%s", herr);
        return STEP_WAIT;
    }
    if (hrc == TW_ETIMEDOUT && k->attempt > 1) {
        *rc = tw_seterr(err, TW_ETIMEDOUT, "deadline passed on attempt %d (before: %s): %s",
                        k->attempt, k->msg, herr);
        return STEP_DONE;
    }
    if (hrc != TW_OK) {
        *rc = tw_seterr(err, hrc, "%s", herr);
        return STEP_DONE;
    }
    if (status >= 200 && status < 300) {
        *rc = TW_OK;
        return STEP_DONE;
    }
    tw__kube_status_message(resp->body.data, resp->body.len, status, k->msg);
    redact(k->msg, k->token); /* the token may be replaced below */
    if (status == 401 && !k->refreshed)
        return reauth(k, rc, err);
    if (tw_http_status_retryable(status))
        return STEP_WAIT;
    *rc = tw_http_status_error(status);
    if (*rc == TW_EUNAUTH)
        tw_seterr(err, *rc, "%s (also after re-reading the credentials)", k->msg);
    else
        tw_seterr(err, *rc, "%s", k->msg);
    return STEP_DONE;
}

/* The wait before the next attempt: as the server told (capped), else jittered backoff. */
static long retry_wait(const call *k, int hrc, const tw_http_response *resp)
{
    if (hrc == TW_OK && resp->retry_after_s >= 0)
        return resp->retry_after_s > KUBE_RETRY_AFTER_CAP_MS / 1000 ? KUBE_RETRY_AFTER_CAP_MS
                                                                    : resp->retry_after_s * 1000;
    TW_ASSERT(k->attempt >= 1);
    int doublings = k->attempt - 1 < 4 ? k->attempt - 1 : 4;
    long ceiling = KUBE_BACKOFF_BASE_MS << doublings;
    return tw_jitter(ceiling < KUBE_BACKOFF_CAP_MS ? ceiling : KUBE_BACKOFF_CAP_MS);
}

/*
 * Waits wait ms before another attempt, if the attempts and the deadline
 * allow one. Returns 0 to try again, or TW_ERETRY / TW_ECANCELED with err set.
 */
static int wait_to_retry(const call *k, long wait, char *err)
{
    int attempt = k->attempt;
    bool time_left = k->deadline == 0 || tw_remaining_ms(k->deadline) - wait >= KUBE_MIN_ATTEMPT_MS;
    if (attempt >= KUBE_MAX_ATTEMPTS || !time_left) {
        if (time_left)
            return tw_seterr(err, TW_ERETRY, "%s (gave up after %d attempts)", k->msg, attempt);
        return tw_seterr(err, TW_ERETRY,
                         "%s (gave up after %d attempt%s: waiting %ld ms more would pass "
                         "the deadline)",
                         k->msg, attempt, attempt == 1 ? "" : "s", wait);
    }
    pause_abortable(k->c, wait, k->deadline);
    if (aborted(k->c))
        return tw_seterr(err, TW_ECANCELED, "%s (stopped while waiting to retry)", k->msg);
    return TW_OK;
}

int tw_kube_do(tw_kube_client *c, const tw_kube_request *rq, tw_http_response *resp, char *err)
{
    call k;
    tw_http_response cur;
    tw_http_response_init(&cur);
    resp->status = 0;
    tw_buf_reset(&resp->body);
    resp->content_type[0] = '\0';
    resp->retry_after_s = -1;
    int rc = call_open(&k, c, rq->path, rq->accept, rq->content_type, rq->deadline, err);
    while (rc == TW_OK) {
        k.attempt++;
        char herr[TW_ERRLEN] = "";
        int hrc = TW_OK;
        long status = 0;
        if ((rc = send_once(&k, rq, resp, &cur, &hrc, &status, herr)) != TW_OK)
            break;
        int step = judge(&k, hrc, status, herr, resp, &rc, err);
        if (step == STEP_DONE)
            break;
        if (step == STEP_WAIT)
            rc = wait_to_retry(&k, retry_wait(&k, hrc, resp), err);
    }
    tw_http_response_free(&cur);
    return call_close(&k, rc, err);
}

typedef struct line_splitter {
    tw_buf line;
    int (*on_line)(void *ud, const char *line, size_t len);
    void *ud;
    int stopped;  /* on_line asked to stop */
    tw_buf other; /* a body that is not a stream of events (a Status), for the message */
} line_splitter;

static int split_line(line_splitter *ls)
{
    const char *l = tw_buf_cstr(&ls->line);
    size_t n = ls->line.len;
    if (n > 0 && l[n - 1] == '\r')
        n--;
    if (n == 0)
        return 0;
    /* Watch events begin with {"type": ; anything else (a Status) is kept for err. */
    if (strncmp(l, "{\"type\"", 7) != 0) {
        tw_buf_reset(&ls->other);
        tw_buf_append(&ls->other, l, n);
        return 0;
    }
    if (ls->on_line(ls->ud, l, n) != 0) {
        ls->stopped = 1;
        return 1;
    }
    return 0;
}

static int on_stream_data(void *ud, const char *data, size_t len)
{
    line_splitter *ls = ud;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        int rc = tw_buf_append(&ls->line, data, take);
        if (rc != TW_OK)
            return rc;
        if (nl == NULL)
            return 0;
        if (split_line(ls))
            return 1;
        tw_buf_reset(&ls->line);
        data += take + 1;
        len -= take + 1;
    }
    return 0;
}

/* What one stream reads with and into. */
typedef struct stream {
    line_splitter ls;
    int (*should_abort)(void *ud);
    void *abort_ud;
    tw_http_response resp;
} stream;

/*
 * A stream refused with a non-2xx status: after a first 401 (may_refresh)
 * re-reads the credentials and sets *again; otherwise returns the status's
 * error with the server's message in err.
 */
static int stream_refused(call *k, stream *s, bool may_refresh, bool *again, char *err)
{
    long status = s->resp.status;
    char msg[TW_ERRLEN];
    tw__kube_status_message(s->ls.other.data, s->ls.other.len, status, msg);
    redact(msg, k->token);
    if (status == 401 && may_refresh) {
        int rc = get_token(k->c, 1, k->deadline, &k->token, err);
        *again = rc == TW_OK;
        return rc;
    }
    int rc = tw_http_status_error(status);
    tw_seterr(err, rc, "%s", msg);
    return rc;
}

/* One attempt of a stream. Returns as tw_kube_stream_lines; *again asks for another. */
static int stream_once(call *k, stream *s, bool may_refresh, bool *again, char *err)
{
    tw_http_request req;
    char *pair[2];
    if (api_request(k->c, k->url, k->headers, k->token, k->deadline, &req, pair) != TW_OK)
        return TW_ENOMEM;
    req.low_speed_ms = KUBE_WATCH_IDLE_MS;
    req.on_data = on_stream_data;
    req.on_data_ud = &s->ls;
    req.should_abort = s->should_abort ? s->should_abort : k->c->should_abort;
    req.abort_ud = s->should_abort ? s->abort_ud : k->c->abort_ud;
    char herr[TW_ERRLEN] = "";
    tw_buf_reset(&s->ls.line);
    tw_buf_reset(&s->ls.other);
    int rc = tw_http_do(k->c->http, &req, &s->resp, herr);
    free_pair(pair);
    if (s->ls.stopped)
        return TW_OK;
    if (rc != TW_OK)
        return tw_seterr(err, rc, "%s", herr);
    if (s->resp.status >= 200 && s->resp.status < 300) {
        /* A last line without a newline still counts. */
        if (s->ls.line.len > 0)
            split_line(&s->ls);
        return TW_OK;
    }
    return stream_refused(k, s, may_refresh, again, err);
}

int tw_kube_stream_lines(tw_kube_client *c, const tw_kube_request *req, const tw_kube_stream *st,
                         char *err)
{
    call k;
    stream s = {.ls = {.on_line = st->on_line, .ud = st->ud},
                .should_abort = st->should_abort,
                .abort_ud = st->abort_ud};
    tw_buf_init(&s.ls.line, st->max_line);
    tw_buf_init(&s.ls.other, 64 * 1024);
    tw_http_response_init(&s.resp);
    int rc = call_open(&k, c, req->path, req->accept, NULL, req->deadline, err);
    /* A second attempt only after a first 401 and re-read credentials. */
    bool again = rc == TW_OK;
    for (int attempt = 0; again && attempt < 2; attempt++) {
        again = false;
        rc = stream_once(&k, &s, attempt == 0, &again, err);
    }
    rc = call_close(&k, rc, err);
    tw_buf_free(&s.ls.line);
    tw_buf_free(&s.ls.other);
    tw_http_response_free(&s.resp);
    return rc;
}

/* A string-valued label of a node, and the place of its key's first occurrence. */
typedef struct label_ref {
    const char *key;
    const char *value;
    size_t pos;
} label_ref;

static int ref_by_key(const void *a, const void *b)
{
    const label_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

static int ref_by_pos(const void *a, const void *b)
{
    const label_ref *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/*
 * Copies the string-valued members of the labels object into *out (a new
 * list; written only on success). A key given twice keeps the place of its
 * first occurrence and the value of its last, as tw_kvlist_set() would; but
 * that call scans the list, and a node can carry 100,000 labels within the
 * body cap, so the keys are sorted instead. Returns 0 or TW_ENOMEM.
 */
static int collect_labels(const cJSON *lab, tw_kvlist *out)
{
    size_t n = 0, m = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, lab)
    {
        if (cJSON_IsString(item) && item->string != NULL)
            n++;
    }
    if (n == 0)
        return TW_OK;
    label_ref *refs = calloc(n, sizeof(*refs));
    if (refs == NULL)
        return TW_ENOMEM;
    cJSON_ArrayForEach(item, lab)
    {
        if (cJSON_IsString(item) && item->string != NULL) {
            refs[m] = (label_ref){.key = item->string, .value = item->valuestring, .pos = m};
            m++;
        }
    }
    qsort(refs, n, sizeof(*refs), ref_by_key);
    m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && strcmp(refs[m - 1].key, refs[i].key) == 0)
            refs[m - 1].value = refs[i].value; /* a later occurrence: its value, the first place */
        else
            refs[m++] = refs[i];
    }
    qsort(refs, m, sizeof(*refs), ref_by_pos);
    int rc = TW_ENOMEM;
    tw_kvlist l = {0};
    if ((l.items = calloc(m, sizeof(*l.items))) == NULL)
        goto out;
    l.cap = m;
    for (size_t i = 0; i < m; i++) {
        char *k = strdup(refs[i].key), *v = strdup(refs[i].value);
        if (k == NULL || v == NULL) {
            free(k);
            free(v);
            goto out;
        }
        l.items[l.n++] = (tw_kv){.key = k, .value = v};
    }
    *out = l;
    l = (tw_kvlist){0};
    rc = TW_OK;
out:
    tw_kvlist_free(&l);
    free(refs);
    return rc;
}

int tw__kube_parse_node_labels(const char *json, size_t len, tw_kvlist *labels, char *err)
{
    int rc = TW_OK;
    tw_kvlist out = {0};
    cJSON *root = NULL;
    /* tw_json_parse: an escaped NUL must not cut a label value short. */
    rc = tw_json_parse(json, len, &root, NULL);
    if (rc != TW_OK) {
        rc = rc == TW_ENOMEM ? TW_ENOMEM : tw_seterr(err, TW_EPARSE, "the node is not valid JSON");
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = tw_seterr(err, TW_EPARSE, "the node is not a JSON object");
        goto out;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    if (kind != NULL) {
        if (!cJSON_IsString(kind)) {
            rc = tw_seterr(err, TW_EPARSE, "the node's kind is not a string");
            goto out;
        }
        if (strcmp(kind->valuestring, "Node") != 0 &&
            strcmp(kind->valuestring, "PartialObjectMetadata") != 0) {
            rc = tw_seterr(err, TW_EPARSE, "expected a Node or PartialObjectMetadata, got %.64s",
                           kind->valuestring);
            goto out;
        }
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (!cJSON_IsObject(meta)) {
        rc = tw_seterr(err, TW_EPARSE, "the node has no metadata object");
        goto out;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    if (name != NULL && !cJSON_IsString(name)) {
        rc = tw_seterr(err, TW_EPARSE, "the node's metadata.name is not a string");
        goto out;
    }
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    if (lab == NULL || cJSON_IsNull(lab))
        goto done;
    if (!cJSON_IsObject(lab)) {
        rc = tw_seterr(err, TW_EPARSE, "the node's metadata.labels is not an object");
        goto out;
    }
    if ((rc = collect_labels(lab, &out)) != TW_OK)
        goto out;
done:
    *labels = out;
    out = (tw_kvlist){0};
out:
    if (rc != TW_OK && err != NULL)
        flatten(err); /* a kind from the server may carry anything */
    tw_kvlist_free(&out);
    cJSON_Delete(root);
    return rc;
}

int tw_kube_get_node_labels(tw_kube_client *c, const char *node, uint64_t deadline,
                            tw_kvlist *labels, char *err)
{
    if (node == NULL || !tw_dns_subdomain_valid(node)) {
        char shown[TW_TEXT_SHOWN_SIZE];
        const char *n = node ? node : "";
        return tw_seterr(err, TW_EINVAL, "node name \"%s\" is not a valid DNS subdomain",
                         tw_text_show(shown, sizeof(shown), n, strlen(n)));
    }
    tw_buf path;
    tw_buf_init(&path, 4 * 253 + 32);
    tw_http_response resp;
    tw_http_response_init(&resp);
    int rc = tw_buf_puts(&path, "/api/v1/nodes/");
    if (rc == TW_OK)
        rc = tw_http_append_escaped(&path, node);
    if (rc != TW_OK)
        goto out;
    tw_kube_request rq = {
        .method = "GET", .path = path.data, .accept = NODE_ACCEPT, .deadline = deadline};
    rc = tw_kube_do(c, &rq, &resp, err);
    if (rc != TW_OK)
        goto out;
    char perr[TW_ERRLEN] = "";
    rc = tw__kube_parse_node_labels(resp.body.data ? resp.body.data : "", resp.body.len, labels,
                                    perr);
    if (rc != TW_OK)
        tw_seterr(err, rc, "node %s: %s", node, perr);
out:
    tw_buf_free(&path);
    tw_http_response_free(&resp);
    return rc;
}
