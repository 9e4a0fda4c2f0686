/* standin.h - shared parts of topowire-standin, the loopback kube-apiserver and metadata stand-ins.
 */
#ifndef TW_STANDIN_H
#define TW_STANDIN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "topowire/buf.h"

/*
 * The program serves one mode per process: `kube` (an API server over TLS) or
 * `imds` (one cloud's instance-metadata service). Both share the request
 * plumbing, the faults, the statistics, the request log and the control API
 * under /_control; the mode-specific parts live in kube*.c and imds.c.
 */

enum st_mode { ST_KUBE, ST_IMDS };
enum st_cloud { ST_AWS, ST_GCP, ST_AZURE };

/* Caps on what a client may send us. */
#define ST_BODY_MAX  (16u * 1024 * 1024)
#define ST_FILE_MAX  (32u * 1024 * 1024)
#define ST_MAX_FAULT 16

/* One active fault. `name` is the spec as given ("flaky:2:503"). */
typedef struct st_fault {
    char name[48];
    char kind[16]; /* the part before the first ':' */
    long ms;       /* slow: milliseconds to wait */
    long left;     /* flaky: requests still to fail */
    int code;      /* flaky: the status they get */
    long n;        /* watch-cut, long-continue, long-rv: the number given */
} st_fault;

/* Everything the command line can say; strings are borrowed from argv. */
typedef struct st_opts {
    enum st_mode mode;
    const char *listen;
    const char *port_file;
    const char *log;
    const char *faults[ST_MAX_FAULT];
    int nfaults;
    const char *tls_cert, *tls_key;
    /* kube */
    const char *token, *token_file, *nodes_dir;
    const char *webhook_configs[8];
    int nwebhook_configs;
    long bookmark_interval;
    long history;
    /* imds */
    enum st_cloud cloud;
    const char *fixtures;
} st_opts;

/* One request as the handlers see it; everything is borrowed from the connection. */
typedef struct st_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path; /* decoded path, no query */
    const char *uri;  /* path and query exactly as sent */
    const char *body; /* NUL-terminated */
    size_t body_len;
} st_req;

enum st_action {
    ST_SEND,   /* status + body */
    ST_HANG,   /* never answer until shutdown */
    ST_DROP,   /* close the connection without a word */
    ST_STALL,  /* headers and part of a body, then nothing until shutdown */
    ST_HUGE,   /* 200 with a 20 MiB JSON body */
    ST_STREAM, /* chunked body from `reader` */
};

#define ST_MAX_HEADERS 6
#define ST_HUGE_SIZE   (20u * 1024 * 1024)

/* The answer a handler builds; main.c turns it into a libmicrohttpd response. */
typedef struct st_resp {
    int status;
    enum st_action action;
    tw_buf body;
    const char *ctype; /* static string or NULL */
    char hname[ST_MAX_HEADERS][48];
    char hvalue[ST_MAX_HEADERS][256];
    int nheaders;
    MHD_ContentReaderCallback reader; /* ST_STREAM: owns reader_cls once queued */
    void *reader_cls;
    MHD_ContentReaderFreeCallback reader_free;
    char note[64]; /* extra word for the log line, such as "fault=429" */
} st_resp;

typedef struct st_kube st_kube;
typedef struct st_imds st_imds;

/* One request path and how often it was asked. */
typedef struct st_count {
    char *path;
    long n;
} st_count;

/* The server: options, faults, statistics, log, and the mode's state. */
typedef struct standin {
    st_opts opts;
    atomic_int stopping;
    pthread_mutex_t mu; /* faults, stats and the log */
    st_fault faults[ST_MAX_FAULT];
    int nfaults;
    long requests, redirect_hits, imds_v1, imds_v2;
    long kinds[3];          /* kube: node GETs, LISTs and WATCHes (ST_KIND_*) */
    struct st_count *paths; /* path -> count, open addressing */
    size_t npaths, cap_paths;
    char *last_accept, *last_ua, *last_method, *last_path;
    int last_bearer, seen_request;
    FILE *log;
    st_kube *kube;
    st_imds *imds;
} standin;

/*
 * Request and response helpers (reply.c, main.c). Header and query values are
 * borrowed from the connection. An st_resp owns its body and, for ST_STREAM,
 * its reader state until st_send queues it; st_resp_free releases what is
 * still owned.
 */
const char *st_header(const st_req *r, const char *name);
const char *st_arg(const st_req *r, const char *name);
int st_is_stopping(standin *st);
/* Sleeps ms milliseconds, waking early (returning 1) when the server stops. */
int st_sleep(standin *st, long ms);
void st_resp_init(st_resp *r);
void st_resp_free(st_resp *r);
/* Sets status, content type (static) and a copy of body (NULL = empty). */
void st_reply(st_resp *r, int status, const char *ctype, const char *body);
/* Sets status, content type and the unformatted serialisation of obj (borrowed). */
void st_reply_json(st_resp *r, int status, const char *ctype, const cJSON *obj);
/* Adds a response header (copied; at most ST_MAX_HEADERS, more are dropped). */
void st_add_header(st_resp *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Builds the MHD response for resp and queues it; releases resp in every case. */
enum MHD_Result st_send(standin *st, struct MHD_Connection *conn, st_resp *resp);
/* Reads a whole regular file of at most max bytes into a new NUL-terminated string (caller frees);
 * NULL on failure. */
char *st_read_file(const char *path, size_t max, size_t *len);
/* Fills out (2*n+1 bytes) with n random bytes in hex. Returns 0 or -1. */
int st_random_hex(char *out, size_t n);

/* Faults (fault.c). */
/* Parses one spec ("429", "slow:200", "flaky:2:503") into out; TW_EINVAL with err otherwise. */
int st_fault_parse(const char *spec, st_fault *out, char *err);
/* Replaces (add=0) or extends (add=1) the faults with a comma-separated list; all or nothing. */
int st_faults_update(standin *st, const char *list, int add, char *err);
/* 1 when a fault of that kind ("v2-only", "slow", ...) is active. */
int st_fault_active(standin *st, const char *kind);
/* The number of the first active fault of that kind ("watch-cut:3" gives 3), or -1 when none. */
long st_fault_number(standin *st, const char *kind);
/* Applies the common faults to a data request; returns 1 when resp was decided. */
int st_fault_apply(standin *st, const st_req *req, st_resp *resp);
/* Appends the active faults as strings to the JSON array out (borrowed). */
void st_faults_json(standin *st, cJSON *out);

/* The mode's error body for a status, such as a kube Status or an IMDS page. */
void st_error(standin *st, const st_req *req, st_resp *resp, int code);

/*
 * The kube mode (kube.c): kube_init builds st->kube from the options (0 or a
 * TW_E* code with err); kube_handle answers a data request; kube_control
 * answers the kube-only control endpoints and returns 0 for any other `what`;
 * kube_error fills a Status for a code; kube_stats adds the node store's
 * figures to out (borrowed); kube_wake rouses watch streams at shutdown;
 * kube_free releases st->kube (NULL-safe).
 */
int kube_init(standin *st, char *err);
void kube_handle(standin *st, const st_req *req, st_resp *resp);
int kube_control(standin *st, const st_req *req, const char *what, st_resp *resp);
void kube_error(standin *st, const st_req *req, st_resp *resp, int code);
void kube_stats(standin *st, cJSON *out);
/* What a kube data request is, for the per-kind counters: ST_KIND_GET/LIST/WATCH or -1. */
enum { ST_KIND_GET, ST_KIND_LIST, ST_KIND_WATCH };
int kube_kind(const st_req *req);
void kube_wake(standin *st);
void kube_free(standin *st);

/* The imds mode (imds.c), the same shape as the kube mode's entry points. */
int imds_init(standin *st, char *err);
void imds_handle(standin *st, const st_req *req, st_resp *resp);
void imds_error(standin *st, const st_req *req, st_resp *resp, int code);
void imds_free(standin *st);

#endif
