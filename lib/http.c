/* http.c - a small HTTP(S) client over libcurl: deadlines, stall detection, caps, no redirects. */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/http.h"
#include "topowire/httpstatus.h"

#include "http_int.h"

#define HTTP_DEFAULT_MAX_BODY (4u * 1024 * 1024)
/* Longest wait a Retry-After may ask for; anything longer is taken as this. */
#define RETRY_AFTER_MAX_S 86400L
/* Longest Retry-After header value worth parsing (an HTTP date is 29 bytes). */
#define RETRY_AFTER_MAX_LEN 64

/*
 * One easy handle driven through a multi handle of its own: the multi handle
 * keeps the connection pool between requests, and driving the loop here lets
 * a stall be noticed when it happens rather than at libcurl's next second.
 */
struct tw_http_client {
    CURLM *m;
    CURL *h;
    char errbuf[CURL_ERROR_SIZE];
};

/* What the callbacks of one transfer share. */
typedef struct xfer {
    const tw_http_request *req;
    tw_http_response *resp;
    uint64_t last_byte_ms; /* when a byte last moved, for stall detection */
    curl_off_t last_ul;
    bool stalled;
    bool too_big;
    bool no_mem;
    bool aborted;
    int user_rc; /* what on_data returned when it aborted, else 0 */
} xfer;

int tw_http_global_init(void)
{
    CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (cc == CURLE_OUT_OF_MEMORY)
        return TW_ENOMEM;
    return cc == CURLE_OK ? TW_OK : TW_EINVAL;
}

void tw_http_global_cleanup(void)
{
    curl_global_cleanup();
}

void tw_http_response_init(tw_http_response *r)
{
    r->status = 0;
    tw_buf_init(&r->body, HTTP_DEFAULT_MAX_BODY);
    r->content_type[0] = '\0';
    r->retry_after_s = -1;
}

void tw_http_response_free(tw_http_response *r)
{
    if (r == NULL)
        return;
    tw_buf_free(&r->body);
}

tw_http_client *tw_http_client_new(void)
{
    tw_http_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->m = curl_multi_init();
    c->h = curl_easy_init();
    if (c->m == NULL || c->h == NULL) {
        tw_http_client_free(c);
        return NULL;
    }
    return c;
}

void tw_http_client_free(tw_http_client *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->h);
    curl_multi_cleanup(c->m);
    free(c);
}

long tw__http_parse_retry_after(const char *value, long now_epoch_s)
{
    if (value == NULL)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strnlen(value, RETRY_AFTER_MAX_LEN + 1);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n == 0 || n > RETRY_AFTER_MAX_LEN)
        return -1;

    /* delta-seconds = 1*DIGIT; a sign or anything else makes it not one. */
    size_t digits = strspn(value, "0123456789");
    if (digits == n) {
        long s = 0;
        for (size_t i = 0; i < n; i++) {
            s = s * 10 + (value[i] - '0');
            if (s > RETRY_AFTER_MAX_S)
                return RETRY_AFTER_MAX_S;
        }
        return s;
    }

    /*
     * An HTTP date always names a month and has a time of day; demanding both
     * keeps curl_getdate(), which is lenient, from reading a date into noise.
     */
    char date[RETRY_AFTER_MAX_LEN + 1];
    memcpy(date, value, n);
    date[n] = '\0';
    if (strchr(date, ':') == NULL || strpbrk(date, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == NULL)
        return -1;
    time_t t = curl_getdate(date, NULL);
    if (t == (time_t)-1)
        return -1;
    if ((long long)t <= (long long)now_epoch_s)
        return 0;
    /* t > now, so the true difference is positive and fits unsigned, whatever the clock says. */
    unsigned long long d = (unsigned long long)(long long)t - (unsigned long long)now_epoch_s;
    return d > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (long)d;
}

/* True when s holds a CR or LF, which would let a value start a new header line. */
static bool has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* True when header h is named name (case-insensitive). */
static bool header_is(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && (h[n] == ':' || h[n] == ';');
}

/* A method is a short token of upper-case letters. */
static bool method_valid(const char *m)
{
    size_t n = strlen(m);
    return n > 0 && n <= 16 && strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == n;
}

/*
 * Checks the URL and writes "host" or "host:port" into host (for messages).
 * Only http and https are accepted.
 */
static int url_host(const char *url, char *host, size_t size, char *err)
{
    int rc = TW_OK;
    char *scheme = NULL, *h = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (u == NULL)
        return TW_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK) {
        rc = tw_seterr(err, TW_EINVAL, "invalid URL for an HTTP request");
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = tw_seterr(err, TW_EINVAL, "URL scheme %.16s is not http or https", scheme);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
        snprintf(host, size, "%s:%s", h, port);
    else
        snprintf(host, size, "%s", h);
out:
    curl_free(scheme);
    curl_free(h);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    x->last_byte_ms = tw_now_ms();
    if (x->req->on_data != NULL) {
        int rc = x->req->on_data(x->req->on_data_ud, ptr, n);
        if (rc != 0) {
            x->user_rc = rc;
            return 0; /* anything but n makes curl stop with CURLE_WRITE_ERROR */
        }
        return n;
    }
    int rc = tw_buf_append(&x->resp->body, ptr, n);
    if (rc == TW_ETOOBIG) {
        x->too_big = true;
        return 0;
    }
    if (rc != TW_OK) {
        x->no_mem = true;
        return 0;
    }
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    (void)ptr;
    x->last_byte_ms = tw_now_ms();
    return size * nmemb;
}

/*
 * Runs the transfer set up on c->h to its end. With low_speed_ms set, wakes
 * up in time to notice when no byte moved either way for that long, and then
 * stops the transfer (x->stalled). Returns the transfer's CURLcode.
 */
static CURLcode run_transfer(tw_http_client *c, xfer *x)
{
    CURLMcode mc = curl_multi_add_handle(c->m, c->h);
    if (mc != CURLM_OK)
        return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
    CURLcode cc = CURLE_OK;
    long low = x->req->low_speed_ms;
    for (;;) {
        int running = 0;
        mc = curl_multi_perform(c->m, &running);
        if (mc != CURLM_OK) {
            cc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
            break;
        }
        if (running == 0) {
            int left = 0;
            CURLMsg *msg;
            while ((msg = curl_multi_info_read(c->m, &left)) != NULL)
                if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->h)
                    cc = msg->data.result;
            break;
        }
        long wait = 1000;
        if (x->req->should_abort != NULL) {
            if (x->req->should_abort(x->req->abort_ud)) {
                x->aborted = true;
                cc = CURLE_ABORTED_BY_CALLBACK;
                break;
            }
            wait = 200;
        }
        if (low > 0) {
            uint64_t now = tw_now_ms();
            curl_off_t ul = 0;
            if (curl_easy_getinfo(c->h, CURLINFO_SIZE_UPLOAD_T, &ul) == CURLE_OK &&
                ul != x->last_ul) {
                x->last_ul = ul;
                x->last_byte_ms = now;
            }
            uint64_t idle = now - x->last_byte_ms;
            if (idle >= (uint64_t)low) {
                x->stalled = true;
                cc = CURLE_OPERATION_TIMEDOUT;
                break;
            }
            if (low - (long)idle < wait)
                wait = low - (long)idle;
        }
        mc = curl_multi_poll(c->m, NULL, 0, (int)wait, NULL);
        if (mc != CURLM_OK) {
            cc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
            break;
        }
    }
    /* A finished connection stays in the multi handle's pool for the next request. */
    curl_multi_remove_handle(c->m, c->h);
    return cc;
}

/* Maps a libcurl failure to a topowire code and sentence. */
static int transfer_error(const tw_http_client *c, const xfer *x, CURLcode cc, const char *host,
                          char *err)
{
    const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
    if (x->aborted)
        return tw_seterr(err, TW_ECANCELED, "request to %s stopped by the caller", host);
    if (x->stalled)
        return tw_seterr(err, TW_ETIMEDOUT, "%s sent nothing for %ld ms", host,
                         x->req->low_speed_ms);
    if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED)
        return tw_seterr(err, TW_ETOOBIG, "%s sent a body over the %zu-byte cap", host,
                         x->resp->body.max);
    if (x->no_mem)
        return TW_ENOMEM;
    if (x->user_rc != 0) {
        int rc = x->user_rc < 0 ? x->user_rc : TW_EINVAL;
        return tw_seterr(err, rc, "reading the answer of %s stopped: %s", host, tw_strerror(rc));
    }
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return tw_seterr(err, TW_ETIMEDOUT, "request to %s timed out: %s", host, why);
    case CURLE_OUT_OF_MEMORY:
        return TW_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_UNKNOWN_OPTION:
        return tw_seterr(err, TW_EINVAL, "cannot send a request to %s: %s", host, why);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return tw_seterr(err, TW_ETLS, "TLS with %s failed: %s", host, why);
    default:
        return tw_seterr(err, TW_ENET, "cannot reach %s: %s", host, why);
    }
}

/* Copies the answer's Content-Type and Retry-After into resp. */
static void capture_headers(CURL *h, tw_http_response *resp)
{
    char *ct = NULL;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
        snprintf(resp->content_type, sizeof(resp->content_type), "%s", ct);
    struct curl_header *ra = NULL;
    if (curl_easy_header(h, "Retry-After", 0, CURLH_HEADER, -1, &ra) == CURLHE_OK)
        resp->retry_after_s = tw__http_parse_retry_after(ra->value, (long)time(NULL));
}

/* Sets one option or returns libcurl's failure, keeping the option lists short. */
#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        CURLcode cc_ = curl_easy_setopt(h, opt, val);                                              \
        if (cc_ != CURLE_OK)                                                                       \
            return cc_;                                                                            \
    } while (0)

/* Appends line to *hdrs: TW_OK or TW_ENOMEM (*hdrs unchanged). */
static int add_header(struct curl_slist **hdrs, const char *line)
{
    struct curl_slist *n = curl_slist_append(*hdrs, line);
    if (n == NULL)
        return TW_ENOMEM;
    *hdrs = n;
    return TW_OK;
}

/*
 * The request's header lines: the caller's, then the token (written into auth,
 * which the caller wipes), then the empty Content-Type and Expect that keep
 * libcurl from adding its own. Nothing may smuggle in a line break.
 */
static int build_headers(const tw_http_request *req, bool send_body, const char *host,
                         struct curl_slist **hdrs, tw_buf *auth, char *err)
{
    bool have_ct = false, have_expect = false;
    int rc;
    for (const char *const *p = req->headers; p != NULL && *p != NULL; p++) {
        if (has_line_break(*p))
            return tw_seterr(err, TW_EINVAL, "a request header for %s contains a line break", host);
        have_ct = have_ct || header_is(*p, "Content-Type");
        have_expect = have_expect || header_is(*p, "Expect");
        if ((rc = add_header(hdrs, *p)) != TW_OK)
            return rc;
    }
    if (req->bearer_token != NULL) {
        if (has_line_break(req->bearer_token))
            return tw_seterr(err, TW_EINVAL, "the bearer token for %s contains a line break", host);
        if ((rc = tw_buf_printf(auth, "Authorization: Bearer %s", req->bearer_token)) != TW_OK)
            return tw_seterr(err, rc, "the bearer token for %s is too long", host);
        if ((rc = add_header(hdrs, auth->data)) != TW_OK)
            return rc;
    }
    /* No form-encoded default type, and no 100-continue round trip. */
    if (send_body && !have_ct && (rc = add_header(hdrs, "Content-Type:")) != TW_OK)
        return rc;
    if (send_body && !have_expect && (rc = add_header(hdrs, "Expect:")) != TW_OK)
        return rc;
    if (req->user_agent != NULL && has_line_break(req->user_agent))
        return tw_seterr(err, TW_EINVAL, "the user agent contains a line break");
    return TW_OK;
}

/* Trust and client identity: verification on unless asked, exactly the given CA, the pair. */
static CURLcode set_tls(CURL *h, const tw_http_request *req)
{
    SETOPT(CURLOPT_SSL_VERIFYPEER, req->insecure_skip_verify ? 0L : 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, req->insecure_skip_verify ? 0L : 2L);
    if (req->ca_file != NULL || req->ca_pem != NULL) {
        /* Trust exactly the given CA, not the system store as well. */
        SETOPT(CURLOPT_CAPATH, NULL);
        if (req->ca_pem != NULL) {
            struct curl_blob ca = {(void *)req->ca_pem, strlen(req->ca_pem), CURL_BLOB_COPY};
            SETOPT(CURLOPT_CAINFO, NULL);
            SETOPT(CURLOPT_CAINFO_BLOB, &ca);
        } else {
            SETOPT(CURLOPT_CAINFO, req->ca_file);
        }
    }
    if (req->client_cert_pem != NULL && req->client_key_pem != NULL) {
        struct curl_blob cert = {(void *)req->client_cert_pem, strlen(req->client_cert_pem),
                                 CURL_BLOB_COPY};
        struct curl_blob key = {(void *)req->client_key_pem, strlen(req->client_key_pem),
                                CURL_BLOB_COPY};
        SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
        SETOPT(CURLOPT_SSLCERT_BLOB, &cert);
        SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
        SETOPT(CURLOPT_SSLKEY_BLOB, &key);
    } else if (req->client_cert_file != NULL && req->client_key_file != NULL) {
        SETOPT(CURLOPT_SSLCERT, req->client_cert_file);
        SETOPT(CURLOPT_SSLKEY, req->client_key_file);
    }
    return CURLE_OK;
}

/* Every option of one transfer, on a handle just reset: never a redirect, only http(s). */
static CURLcode set_options(tw_http_client *c, xfer *x, const char *method, bool send_body,
                            long remaining, struct curl_slist *hdrs)
{
    CURL *h = c->h;
    const tw_http_request *req = x->req;
    SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_VERBOSE, 0L);
    if (remaining > 0)
        SETOPT(CURLOPT_TIMEOUT_MS, remaining);
    if (req->connect_timeout_ms > 0 && (remaining == 0 || req->connect_timeout_ms < remaining))
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    if (req->no_proxy)
        SETOPT(CURLOPT_NOPROXY, "*");
    if (req->user_agent != NULL)
        SETOPT(CURLOPT_USERAGENT, req->user_agent);
    if (hdrs != NULL)
        SETOPT(CURLOPT_HTTPHEADER, hdrs);
    if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (send_body) {
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
        SETOPT(CURLOPT_POSTFIELDS, req->body ? req->body : "");
        if (strcmp(method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode cc = set_tls(h, req);
    if (cc != CURLE_OK)
        return cc;
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, x);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, x);
    if (req->on_data == NULL)
        SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->resp->body.max);
    return CURLE_OK;
}

/* Checks what a request asks before anything is sent: its host into host, the time left. */
static int check_request(const tw_http_request *req, const char *method, char *host,
                         size_t host_len, long *remaining, char *err)
{
    if (req->url == NULL)
        return tw_seterr(err, TW_EINVAL, "no URL for an HTTP request");
    int rc = url_host(req->url, host, host_len, err);
    if (rc != TW_OK)
        return rc;
    if (!method_valid(method))
        return tw_seterr(err, TW_EINVAL, "invalid HTTP method for %s", host);
    *remaining = 0;
    if (req->deadline != 0 && (*remaining = tw_remaining_ms(req->deadline)) <= 0)
        return tw_seterr(err, TW_ETIMEDOUT, "deadline passed before the request to %s", host);
    return TW_OK;
}

int tw_http_do(tw_http_client *c, const tw_http_request *req, tw_http_response *resp, char *err)
{
    if (c == NULL || req == NULL || resp == NULL)
        return tw_seterr(err, TW_EINVAL, "no client, request or response for an HTTP request");
    struct curl_slist *hdrs = NULL;
    tw_buf auth;
    tw_buf_init(&auth, 64 * 1024);
    char host[300] = "";
    long remaining = 0;
    const char *method = req->method ? req->method : "GET";
    bool send_body = req->body != NULL || strcmp(method, "POST") == 0 ||
                     strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;

    resp->status = 0;
    tw_buf_reset(&resp->body);
    tw_buf_set_max(&resp->body, req->max_body ? req->max_body : HTTP_DEFAULT_MAX_BODY);
    resp->content_type[0] = '\0';
    resp->retry_after_s = -1;
    int rc = check_request(req, method, host, sizeof(host), &remaining, err);
    if (rc == TW_OK)
        rc = build_headers(req, send_body, host, &hdrs, &auth, err);
    if (rc != TW_OK)
        goto out;

    /* Start from defaults each time; the connection cache survives the reset. */
    curl_easy_reset(c->h);
    c->errbuf[0] = '\0';
    xfer x = {.req = req, .resp = resp, .last_byte_ms = tw_now_ms()};
    CURLcode cc = set_options(c, &x, method, send_body, remaining, hdrs);
    if (cc != CURLE_OK) {
        rc = cc == CURLE_OUT_OF_MEMORY
                 ? TW_ENOMEM
                 : tw_seterr(err, TW_EINVAL, "libcurl refused an option for %s: %s", host,
                             curl_easy_strerror(cc));
        goto out;
    }
    x.last_byte_ms = tw_now_ms();
    cc = run_transfer(c, &x);
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    resp->status = status;
    capture_headers(c->h, resp);
    if (cc != CURLE_OK)
        rc = transfer_error(c, &x, cc, host, err);
    else if (tw_http_status_error(status) == TW_EREDIRECT)
        rc = tw_seterr(err, TW_EREDIRECT, "%s answered %ld, a redirect, which is never followed",
                       host, status);
out:
    /* Leave no pointer into this call's memory in the handle; connections stay pooled. */
    curl_easy_reset(c->h);
    curl_slist_free_all(hdrs);
    if (auth.data != NULL)
        explicit_bzero(auth.data, auth.cap);
    tw_buf_free(&auth);
    return rc;
}

int tw_http_append_escaped(tw_buf *b, const char *s)
{
    char *esc = curl_easy_escape(NULL, s, 0);
    if (esc == NULL)
        return TW_ENOMEM;
    int rc = tw_buf_puts(b, esc);
    curl_free(esc);
    return rc;
}
