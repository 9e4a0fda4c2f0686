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
    int deny_nodes;
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

/* The server: options, faults, statistics, log, and the mode's state. */
typedef struct standin {
    st_opts opts;
    atomic_int stopping;
    pthread_mutex_t mu; /* faults, stats and the log */
    st_fault faults[ST_MAX_FAULT];
    int nfaults;
    long requests, redirect_hits, imds_v1, imds_v2;
    cJSON *paths; /* path -> count */
    char *last_accept, *last_ua, *last_method, *last_path;
    int last_bearer, seen_request;
    FILE *log;
    st_kube *kube;
    st_imds *imds;
} standin;

/* main.c / reply.c: request and response helpers. */
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
void st_add_header(st_resp *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Builds the MHD response for resp and queues it; releases resp. */
enum MHD_Result st_send(standin *st, struct MHD_Connection *conn, st_resp *resp);
/* Reads a whole file into a new NUL-terminated string (caller frees); NULL on failure. */
char *st_read_file(const char *path, size_t max, size_t *len);
/* Fills out (2*n+1 bytes) with n random bytes in hex. Returns 0 or -1. */
int st_random_hex(char *out, size_t n);

/* fault.c */
int st_fault_parse(const char *spec, st_fault *out, char *err);
/* Replaces (add=0) or extends (add=1) the faults with a comma-separated list. */
int st_faults_update(standin *st, const char *list, int add, char *err);
int st_fault_active(standin *st, const char *kind);
/* Applies the common faults to a data request; returns 1 when resp was decided. */
int st_fault_apply(standin *st, const st_req *req, st_resp *resp);
/* Writes the current faults as a JSON array into out (borrowed). */
void st_faults_json(standin *st, cJSON *out);

/* The mode's error body for a status, such as a kube Status or an IMDS page. */
void st_error(standin *st, const st_req *req, st_resp *resp, int code);

/* kube.c */
int kube_init(standin *st, char *err);
void kube_handle(standin *st, const st_req *req, st_resp *resp);
int kube_control(standin *st, const st_req *req, const char *what, st_resp *resp);
void kube_error(standin *st, const st_req *req, st_resp *resp, int code);
void kube_stats(standin *st, cJSON *out);
void kube_wake(standin *st);
void kube_free(standin *st);

/* imds.c */
int imds_init(standin *st, char *err);
void imds_handle(standin *st, const st_req *req, st_resp *resp);
void imds_error(standin *st, const st_req *req, st_resp *resp, int code);
void imds_free(standin *st);

/* yaml.c: reads a JSON or YAML file into a list of documents (a JSON array; caller frees). */
cJSON *st_load_documents(const char *path, char *err);

#endif
