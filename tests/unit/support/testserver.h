/* testserver.h - a loopback HTTP(S) server for unit tests, on libmicrohttpd. */
#ifndef TW_TESTSERVER_H
#define TW_TESTSERVER_H

#include <stddef.h>

/* What the handler sees of one request. Everything is borrowed. */
typedef struct tw_testreq {
    const char *method;
    const char *url;   /* path without query */
    const char *query; /* raw query string after '?', "" when none */
    const char *body;
    size_t body_len;
    void *conn; /* for tw_testreq_header */
} tw_testreq;

/* Returns a request header's value (case-insensitive name), or NULL. */
const char *tw_testreq_header(const tw_testreq *req, const char *name);

/* What the handler answers. Strings are copied by the server. */
typedef struct tw_testresp {
    int status;       /* HTTP status; 0 = 200 */
    const char *body; /* NULL = empty */
    size_t body_len;  /* 0 = strlen(body) */
    const char *content_type;
    const char *headers[8]; /* extra "Name: value" lines, NULL-terminated */
    long delay_ms;          /* sleep this long before answering */
    int stall;              /* send headers, then never finish the body (until the server stops) */
    int drop;               /* close the connection without answering */
} tw_testresp;

typedef void (*tw_testserver_handler)(void *ud, const tw_testreq *req, tw_testresp *resp);

typedef struct tw_testserver tw_testserver;

/*
 * Starts a server on 127.0.0.1 with an ephemeral port, calling handler for
 * every request (from the server's threads). With cert_pem/key_pem set it
 * speaks TLS. Returns NULL on failure.
 */
tw_testserver *tw_testserver_start(tw_testserver_handler handler, void *ud, const char *cert_pem,
                                   const char *key_pem);
/* The port it listens on. */
int tw_testserver_port(const tw_testserver *s);
/* Base URL such as "http://127.0.0.1:43121" (owned by the server). */
const char *tw_testserver_url(const tw_testserver *s);
/* Number of requests handled so far. */
int tw_testserver_requests(const tw_testserver *s);
/* Stops the server (releasing stalled responses) and frees it. NULL-safe. */
void tw_testserver_stop(tw_testserver *s);

/*
 * Makes a throw-away CA and a server certificate for 127.0.0.1/localhost with
 * the openssl command into dir: ca.pem, server.pem, server-key.pem. Returns 0
 * or -1.
 */
int tw_testserver_make_certs(const char *dir);

/* Reads a whole file into a new NUL-terminated string (caller frees), or NULL. */
char *tw_test_read_file(const char *path, size_t *len);

/* Path of a fixture under tests/fixtures (static buffer). */
const char *tw_fixture_path(const char *rel);

#endif
