/* http.h - a small HTTP(S) client over libcurl: deadlines, caps, no redirects. */
#ifndef TOPOWIRE_HTTP_H
#define TOPOWIRE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "topowire/buf.h"

/*
 * Call tw_http_global_init() once at program start (before threads) and
 * tw_http_global_cleanup() at exit.
 */
int tw_http_global_init(void);
void tw_http_global_cleanup(void);

/*
 * One request. Every pointer is borrowed for the duration of the call.
 * Redirects are never followed: a 3xx answer is returned as TW_EREDIRECT so a
 * bearer token can never be sent to another host.
 */
typedef struct tw_http_request {
    const char *method;         /* "GET" (default when NULL), "PUT", "POST" ... */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* NULL-terminated array of "Name: value", or NULL */
    const char *body;           /* request body, or NULL */
    size_t body_len;
    const char *bearer_token;    /* sent as "Authorization: Bearer ..."; never logged */
    const char *ca_file;         /* PEM CA bundle to verify the server against */
    const char *ca_pem;          /* or the same as PEM text in memory */
    const char *client_cert_pem; /* client certificate (PEM text), with client_key_pem */
    const char *client_key_pem;
    const char *client_cert_file; /* or as files */
    const char *client_key_file;
    int insecure_skip_verify; /* tests only: do not verify the server certificate */
    int no_proxy;             /* ignore *_proxy environment variables (instance metadata) */
    const char *user_agent;
    uint64_t deadline;       /* absolute tw_now_ms() deadline for the whole request; 0 = none */
    long connect_timeout_ms; /* 0 = bounded by the deadline only */
    long low_speed_ms;       /* abort when no byte arrives for this long (0 = off);
                                checked at least once a second */
    size_t max_body;         /* cap on the buffered response body (0 = 4 MiB); a larger
                                Content-Length is refused before the body is read */
    /*
     * Streaming: when on_data is set, the body is handed to it as it arrives
     * instead of being buffered (max_body does not apply: on_data decides).
     * Returning non-zero aborts the transfer: tw_http_do then returns that
     * value when it is a negative TW_E* code, TW_EINVAL for any other.
     */
    int (*on_data)(void *ud, const char *data, size_t len);
    void *on_data_ud;
    /*
     * Checked about every 200 ms while the transfer runs (a long watch, say):
     * returning non-zero stops it with TW_ECANCELED.
     */
    int (*should_abort)(void *ud);
    void *abort_ud;
} tw_http_request;

typedef struct tw_http_response {
    long status;            /* HTTP status, 0 when none was received */
    tw_buf body;            /* the buffered body (empty when streamed) */
    char content_type[128]; /* Content-Type, "" when absent */
    long retry_after_s;     /* Retry-After in seconds (delta or HTTP date), -1 when absent */
} tw_http_response;

/* Initialises a response for use. Cannot fail. */
void tw_http_response_init(tw_http_response *r);
/* Frees a response's memory. NULL-safe. */
void tw_http_response_free(tw_http_response *r);

/* A reusable client (keeps connections alive). Not thread-safe: one per thread. */
typedef struct tw_http_client tw_http_client;

/* Returns a new client or NULL on out-of-memory; free with tw_http_client_free(). */
tw_http_client *tw_http_client_new(void);
void tw_http_client_free(tw_http_client *c);

/*
 * Performs req and fills resp (which must be initialised). Returns 0 when an
 * HTTP answer of any status other than 3xx was received (the caller judges
 * the status), or: TW_ETIMEDOUT (deadline or stall; a deadline already past
 * fails before connecting), TW_ENET, TW_ETLS, TW_EREDIRECT, TW_ETOOBIG (body
 * over max_body), TW_EINVAL (bad URL, method, or a line break in a header,
 * token or user agent), TW_ENOMEM, or what on_data returned. On failure resp
 * still holds what was received (status 0 when no answer came). err names
 * the URL's host and the failure, never a header value.
 */
int tw_http_do(tw_http_client *c, const tw_http_request *req, tw_http_response *resp, char *err);

/*
 * Appends s percent-encoded for a URL path segment or query value (RFC 3986:
 * everything but unreserved characters is escaped) to b. Returns 0,
 * TW_ETOOBIG past b's cap (b unchanged) or TW_ENOMEM.
 */
int tw_http_append_escaped(tw_buf *b, const char *s);

#endif
