/* imds.c - the instance-metadata stand-ins: AWS IMDSv2/v1, GCP computeMetadata, Azure IMDS. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "standin.h"
#include "topowire/clock.h"
#include "topowire/error.h"

#define MAX_TOKENS 256

struct st_imds {
    char *dir; /* fixtures/<cloud> */
    pthread_mutex_t mu;
    struct {
        char value[64];
        uint64_t expires_ms;
    } tokens[MAX_TOKENS];
    int next_token;
};

/* ---- error pages ---- */

static const char *reason_phrase(int code)
{
    switch (code) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

void imds_error(standin *st, const st_req *req, st_resp *resp, int code)
{
    (void)req;
    char body[1024];
    const char *phrase = reason_phrase(code);
    if (st->opts.cloud == ST_AZURE) {
        snprintf(body, sizeof(body), "{\"error\":\"%s\"}", phrase);
        st_reply(resp, code, "application/json; charset=utf-8", body);
    } else if (st->opts.cloud == ST_GCP) {
        snprintf(body, sizeof(body),
                 "<!DOCTYPE html>\n<html lang=en>\n  <title>Error %d (%s)!!1</title>\n"
                 "  <p><b>%d.</b> <ins>That's an error.</ins>\n",
                 code, phrase, code);
        st_reply(resp, code, "text/html; charset=UTF-8", body);
        st_add_header(resp, "Metadata-Flavor", "Google");
    } else {
        /* EC2's metadata service answers errors with a small XHTML page. */
        snprintf(body, sizeof(body),
                 "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"
                 "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n"
                 "\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n"
                 "<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n"
                 " <head>\n  <title>%d - %s</title>\n </head>\n <body>\n  <h1>%d - %s</h1>\n"
                 " </body>\n</html>\n",
                 code, phrase, code, phrase);
        st_reply(resp, code, "text/html", body);
        st_add_header(resp, "Server", "EC2ws");
    }
    if (code == 429)
        st_add_header(resp, "Retry-After", "1");
}

/* ---- fixture files ---- */

/* Path of rel under the cloud's fixtures, refusing "..", "." and empty segments. */
static int fixture_path(const st_imds *im, const char *rel, char *out, size_t cap)
{
    const char *p = rel;
    while (*p) {
        size_t n = strcspn(p, "/");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return -1;
        if (n == 0 && p[1] != '\0')
            return -1;
        p += n;
        if (*p == '/')
            p++;
    }
    int w = snprintf(out, cap, "%s/%s", im->dir, rel);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * Answers a metadata path from the fixtures: a file's content, or a
 * directory's listing (subdirectories with a trailing '/'), as the services
 * list categories. Returns 0, or 404 when there is no such entry.
 */
static int serve_fixture(const st_imds *im, const char *rel, const char *ctype, st_resp *resp)
{
    char path[4096];
    struct stat sb;
    if (fixture_path(im, rel, path, sizeof(path)) != 0 || stat(path, &sb) != 0)
        return 404;
    if (S_ISREG(sb.st_mode)) {
        size_t len = 0;
        char *text = st_read_file(path, ST_FILE_MAX, &len);
        if (text == NULL)
            return 404;
        st_reply(resp, 200, ctype, NULL);
        tw_buf_append(&resp->body, text, len);
        free(text);
        return 0;
    }
    if (!S_ISDIR(sb.st_mode))
        return 404;
    struct dirent **list = NULL;
    int n = scandir(path, &list, NULL, by_name);
    if (n < 0)
        return 404;
    st_reply(resp, 200, ctype, NULL);
    int first = 1;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (name[0] != '.') {
            char sub[4096 + 256];
            struct stat eb;
            snprintf(sub, sizeof(sub), "%s/%s", path, name);
            int dir = stat(sub, &eb) == 0 && S_ISDIR(eb.st_mode);
            tw_buf_printf(&resp->body, "%s%s%s", first ? "" : "\n", name, dir ? "/" : "");
            first = 0;
        }
        free(list[i]);
    }
    free(list);
    return 0;
}

/* ---- AWS ---- */

static int token_valid(st_imds *im, const char *tok)
{
    int ok = 0;
    uint64_t now = tw_now_ms();
    pthread_mutex_lock(&im->mu);
    for (int i = 0; i < MAX_TOKENS && !ok; i++)
        ok = im->tokens[i].value[0] && im->tokens[i].expires_ms > now &&
             strcmp(im->tokens[i].value, tok) == 0;
    pthread_mutex_unlock(&im->mu);
    return ok;
}

static void aws_token(standin *st, const st_req *req, st_resp *resp)
{
    st_imds *im = st->imds;
    if (st_fault_active(st, "put-hang")) {
        resp->action = ST_HANG;
        snprintf(resp->note, sizeof(resp->note), "fault=put-hang");
        return;
    }
    if (st_fault_active(st, "put-403")) {
        imds_error(st, req, resp, 403);
        snprintf(resp->note, sizeof(resp->note), "fault=put-403");
        return;
    }
    /* The service refuses token requests that went through a proxy. */
    if (st_header(req, "X-Forwarded-For")) {
        imds_error(st, req, resp, 403);
        return;
    }
    const char *ttl_s = st_header(req, "X-aws-ec2-metadata-token-ttl-seconds");
    char *end = NULL;
    errno = 0;
    long ttl = ttl_s ? strtol(ttl_s, &end, 10) : 0;
    if (ttl_s == NULL || *ttl_s == '\0' || *end != '\0' || errno || ttl < 1 || ttl > 21600) {
        imds_error(st, req, resp, 400);
        return;
    }
    char tok[64];
    /* 56 characters, like the service's tokens. */
    if (st_random_hex(tok, 28) != 0) {
        imds_error(st, req, resp, 500);
        return;
    }
    pthread_mutex_lock(&im->mu);
    int slot = im->next_token;
    im->next_token = (im->next_token + 1) % MAX_TOKENS;
    snprintf(im->tokens[slot].value, sizeof(im->tokens[slot].value), "%s", tok);
    im->tokens[slot].expires_ms = tw_now_ms() + (uint64_t)ttl * 1000;
    pthread_mutex_unlock(&im->mu);
    st_reply(resp, 200, "text/plain", tok);
    st_add_header(resp, "X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "%ld", ttl);
    st_add_header(resp, "Server", "EC2ws");
}

static void aws_meta(standin *st, const st_req *req, const char *rel, st_resp *resp)
{
    const char *tok = st_header(req, "X-aws-ec2-metadata-token");
    if (tok) {
        if (!token_valid(st->imds, tok)) {
            imds_error(st, req, resp, 401);
            return;
        }
        pthread_mutex_lock(&st->mu);
        st->imds_v2++;
        pthread_mutex_unlock(&st->mu);
    } else {
        if (st_fault_active(st, "v2-only")) {
            imds_error(st, req, resp, 401);
            snprintf(resp->note, sizeof(resp->note), "fault=v2-only");
            return;
        }
        pthread_mutex_lock(&st->mu);
        st->imds_v1++;
        pthread_mutex_unlock(&st->mu);
    }
    if (strcmp(rel, "placement/availability-zone-id") == 0 && st_fault_active(st, "no-zone-id")) {
        imds_error(st, req, resp, 404);
        snprintf(resp->note, sizeof(resp->note), "fault=no-zone-id");
        return;
    }
    if (strcmp(rel, "placement/availability-zone") == 0 && st_fault_active(st, "bad-zone")) {
        st_reply(resp, 200, "text/plain", "us-east-1b; rm -rf /");
        snprintf(resp->note, sizeof(resp->note), "fault=bad-zone");
    } else {
        int code = serve_fixture(st->imds, rel, "text/plain", resp);
        if (code)
            imds_error(st, req, resp, code);
    }
    st_add_header(resp, "Server", "EC2ws");
}

static void aws(standin *st, const st_req *req, st_resp *resp)
{
    const char *meta = "/latest/meta-data";
    size_t mlen = strlen(meta);
    if (strcmp(req->path, "/latest/api/token") == 0) {
        if (strcmp(req->method, "PUT") == 0)
            aws_token(st, req, resp);
        else
            imds_error(st, req, resp, 405);
    } else if (strncmp(req->path, meta, mlen) == 0 &&
               (req->path[mlen] == '\0' || req->path[mlen] == '/')) {
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
            imds_error(st, req, resp, 405);
            return;
        }
        aws_meta(st, req, req->path[mlen] ? req->path + mlen + 1 : "", resp);
    } else {
        imds_error(st, req, resp, 404);
    }
}

/* ---- GCP ---- */

static void gcp(standin *st, const st_req *req, st_resp *resp)
{
    const char *prefix = "/computeMetadata/v1/";
    size_t plen = strlen(prefix);
    const char *flavor = st_header(req, "Metadata-Flavor");
    if (strncmp(req->path, prefix, plen) != 0) {
        imds_error(st, req, resp, 404);
        return;
    }
    if (flavor == NULL || strcmp(flavor, "Google") != 0 || st_header(req, "X-Forwarded-For")) {
        char body[1024];
        snprintf(body, sizeof(body),
                 "<!DOCTYPE html>\n<html lang=en>\n  <title>Error 403 (Forbidden)!!1</title>\n"
                 "  <p><b>403.</b> <ins>That's an error.</ins>\n  <p>Your client does not have "
                 "permission to get URL <code>%s</code> from this server. Missing "
                 "Metadata-Flavor:Google header. <ins>That's all we know.</ins>\n",
                 req->path);
        st_reply(resp, 403, "text/html; charset=UTF-8", body);
        st_add_header(resp, "Metadata-Flavor", "Google");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        imds_error(st, req, resp, 405);
        return;
    }
    int code = serve_fixture(st->imds, req->path + plen, "application/text", resp);
    if (code)
        imds_error(st, req, resp, code);
    else
        st_add_header(resp, "Metadata-Flavor", "Google");
}

/* ---- Azure ---- */

static void azure_fail(st_resp *resp, int code, const char *json)
{
    st_reply(resp, code, "application/json; charset=utf-8", json);
}

static void azure(standin *st, const st_req *req, st_resp *resp)
{
    const char *prefix = "/metadata/instance";
    size_t plen = strlen(prefix);
    if (strncmp(req->path, prefix, plen) != 0 || (req->path[plen] && req->path[plen] != '/')) {
        azure_fail(resp, 404, "{\"error\":\"Not found\"}");
        return;
    }
    const char *md = st_header(req, "Metadata");
    if (md == NULL || strcasecmp(md, "true") != 0) {
        azure_fail(resp, 400,
                   "{\"error\":\"Bad request. Required metadata header not specified\"}");
        return;
    }
    const char *ver = st_arg(req, "api-version");
    if (ver == NULL || *ver == '\0') {
        azure_fail(resp, 400,
                   "{\"error\":\"Bad request. api-version was not specified in the querystring or "
                   "header\",\"newest-versions\":[\"2023-07-01\",\"2023-05-01\",\"2023-03-01\"]}");
        return;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        azure_fail(resp, 405, "{\"error\":\"Method not allowed\"}");
        return;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/instance.json", st->imds->dir);
    char *text = st_read_file(path, ST_FILE_MAX, NULL);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (doc == NULL) {
        azure_fail(resp, 500, "{\"error\":\"Internal server error\"}");
        return;
    }
    /* /metadata/instance/compute/zone walks into the document. */
    cJSON *cur = doc;
    const char *p = req->path + plen;
    while (cur && *p == '/' && p[1]) {
        p++;
        size_t n = strcspn(p, "/");
        char key[256];
        if (n >= sizeof(key)) {
            cur = NULL;
            break;
        }
        memcpy(key, p, n);
        key[n] = '\0';
        cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, (int)strtol(key, NULL, 10))
                                 : cJSON_GetObjectItemCaseSensitive(cur, key);
        p += n;
    }
    const char *format = st_arg(req, "format");
    if (cur == NULL) {
        azure_fail(resp, 404, "{\"error\":\"Not found\"}");
    } else if (format && strcmp(format, "text") == 0) {
        if (cJSON_IsString(cur)) {
            st_reply(resp, 200, "text/plain; charset=utf-8", cur->valuestring);
        } else {
            char *s = cJSON_PrintUnformatted(cur);
            st_reply(resp, 200, "text/plain; charset=utf-8", s);
            free(s);
        }
    } else {
        st_reply_json(resp, 200, "application/json; charset=utf-8", cur);
    }
    cJSON_Delete(doc);
}

void imds_handle(standin *st, const st_req *req, st_resp *resp)
{
    switch (st->opts.cloud) {
    case ST_GCP:
        gcp(st, req, resp);
        break;
    case ST_AZURE:
        azure(st, req, resp);
        break;
    default:
        aws(st, req, resp);
        break;
    }
}

int imds_init(standin *st, char *err)
{
    static const char *const names[] = {"aws", "gcp", "azure"};
    st_imds *im = calloc(1, sizeof(*im));
    if (im == NULL)
        return tw_seterr(err, TW_ENOMEM, "out of memory");
    st->imds = im;
    pthread_mutex_init(&im->mu, NULL);
    size_t n = strlen(st->opts.fixtures) + 16;
    im->dir = malloc(n);
    if (im->dir == NULL)
        return tw_seterr(err, TW_ENOMEM, "out of memory");
    snprintf(im->dir, n, "%s/%s", st->opts.fixtures, names[st->opts.cloud]);
    struct stat sb;
    if (stat(im->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return tw_seterr(err, TW_EIO, "no fixtures directory %s", im->dir);
    return TW_OK;
}

void imds_free(standin *st)
{
    st_imds *im = st->imds;
    if (im == NULL)
        return;
    free(im->dir);
    pthread_mutex_destroy(&im->mu);
    free(im);
    st->imds = NULL;
}
