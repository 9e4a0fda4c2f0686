/* imds.c - the node's zone, zone ID and region from AWS, GCP or Azure instance metadata. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "topowire/assert.h"
#include "topowire/buf.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/files.h"
#include "topowire/http.h"
#include "topowire/httpstatus.h"
#include "topowire/imds.h"
#include "topowire/json.h"
#include "topowire/label.h"
#include "topowire/version.h"

#include "imds_int.h"

#define IMDS_BODY_MAX       (64 * 1024)
#define IMDS_URL_MAX        2048
#define IMDS_DEFAULT_WAIT   5000 /* ms, when the caller passes no deadline */
#define DMI_DEFAULT_DIR     "/sys/class/dmi/id"
#define DMI_VALUE_MAX       256
#define DMI_FILE_MAX        4096 /* a sysfs attribute is at most a page */
#define AWS_ENDPOINT        "http://169.254.169.254"
#define GCP_ENDPOINT        "http://metadata.google.internal"
#define GCP_PROBE_ENDPOINT  "http://169.254.169.254"
#define AZURE_ENDPOINT      "http://169.254.169.254"
#define TOKEN_TIMEOUT_MS    500
#define TOKEN_TTL_HEADER    "X-aws-ec2-metadata-token-ttl-seconds: 21600"
#define TOKEN_HEADER        "X-aws-ec2-metadata-token"
#define TOKEN_MAX           TW__IMDS_TOKEN_MAX
#define AWS_TOKEN_PATH      "/latest/api/token"
#define AWS_PLACEMENT_PATH  "/latest/meta-data/placement/"
#define GCP_ZONE_PATH       "/computeMetadata/v1/instance/zone"
#define AZURE_INSTANCE_PATH "/metadata/instance?api-version=2021-02-01"
#define ZONE_PARTS_MAX      12

/* One query: what is asked, of whom, until when, and what was dropped on the way. */
typedef struct imds_ctx {
    const tw_imds_options *opts;
    tw_http_client *http;
    const char *base;        /* the endpoint for the cloud being asked (borrowed) */
    uint64_t deadline;       /* the caller's deadline */
    uint64_t probe_deadline; /* until the cloud has answered as itself; deadline when not probing */
    bool spoke;              /* the service answered as the cloud being asked */
    char note[TW_ERRLEN];    /* values dropped, reported through err on success */
} imds_ctx;

int tw_cloud_parse(const char *s, tw_cloud *out)
{
    static const struct {
        const char *name;
        tw_cloud cloud;
    } names[] = {
        {"auto", TW_CLOUD_AUTO},
        {"aws", TW_CLOUD_AWS},
        {"gcp", TW_CLOUD_GCP},
        {"azure", TW_CLOUD_AZURE},
    };
    if (s == NULL)
        return TW_EINVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].cloud;
            return TW_OK;
        }
    }
    return TW_EINVAL;
}

void tw_imds_options_from_env(tw_imds_options *opts)
{
    const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
    if (disabled != NULL && strcasecmp(disabled, "true") == 0)
        opts->aws_disabled = 1;
    const char *endpoint = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (opts->endpoint == NULL && endpoint != NULL && *endpoint != '\0')
        opts->endpoint = endpoint;
}

/* ---- DMI ---------------------------------------------------------------- */

/* Reads one DMI attribute into out with surrounding whitespace removed; "" when unreadable. */
static void dmi_read(const char *dir, const char *name, char out[DMI_VALUE_MAX])
{
    out[0] = '\0';
    char path[1024];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return;
    char *text = NULL;
    if (tw_file_read(path, DMI_FILE_MAX, &text, NULL, NULL) != TW_OK)
        return;
    /* A NUL inside ends the string; firmware strings have none. */
    snprintf(out, DMI_VALUE_MAX, "%s", text);
    free(text);
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' ' || out[len - 1] == '\t' ||
                       out[len - 1] == '\r'))
        out[--len] = '\0';
    size_t lead = strspn(out, " \t");
    if (lead > 0)
        memmove(out, out + lead, len - lead + 1);
}

tw_cloud tw__imds_detect(const char *dmi_dir)
{
    const char *dir = dmi_dir ? dmi_dir : DMI_DEFAULT_DIR;
    char sys[DMI_VALUE_MAX], product[DMI_VALUE_MAX], board[DMI_VALUE_MAX], bios[DMI_VALUE_MAX];
    char product_version[DMI_VALUE_MAX], bios_version[DMI_VALUE_MAX];
    dmi_read(dir, "sys_vendor", sys);
    dmi_read(dir, "product_name", product);
    dmi_read(dir, "board_vendor", board);
    dmi_read(dir, "bios_vendor", bios);
    dmi_read(dir, "product_version", product_version);
    dmi_read(dir, "bios_version", bios_version);

    /* Nitro instances say "Amazon EC2"; Xen-based ones say "Xen" with an "...amazon" version. */
    if (strcmp(sys, "Amazon EC2") == 0 || strcmp(board, "Amazon EC2") == 0 ||
        strcmp(bios, "Amazon EC2") == 0 || strcasestr(product_version, "amazon") != NULL ||
        strcasestr(bios_version, "amazon") != NULL)
        return TW_CLOUD_AWS;
    if (strcmp(sys, "Google") == 0 || strcmp(board, "Google") == 0 || strcmp(bios, "Google") == 0 ||
        strcmp(product, "Google Compute Engine") == 0)
        return TW_CLOUD_GCP;
    /* Hyper-V anywhere says the same; Azure is then asked and simply does not answer. */
    if ((strcmp(sys, "Microsoft Corporation") == 0 ||
         strcmp(board, "Microsoft Corporation") == 0) &&
        strcmp(product, "Virtual Machine") == 0)
        return TW_CLOUD_AZURE;
    return TW_CLOUD_AUTO;
}

/* ---- region from zone --------------------------------------------------- */

/* A zone name cut at its dashes; every part is non-empty. */
typedef struct zone_parts {
    const char *p[ZONE_PARTS_MAX];
    size_t n[ZONE_PARTS_MAX];
    size_t count;
} zone_parts;

static bool split_dashes(const char *s, zone_parts *z)
{
    z->count = 0;
    const char *start = s;
    for (const char *c = s;; c++) {
        if (*c == '-' || *c == '\0') {
            if (c == start || z->count == ZONE_PARTS_MAX)
                return false;
            z->p[z->count] = start;
            z->n[z->count] = (size_t)(c - start);
            z->count++;
            if (*c == '\0')
                return true;
            start = c + 1;
        }
    }
}

static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t lower_run(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_lower(p[i]))
        i++;
    return i;
}

static size_t digit_run(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_digit(p[i]))
        i++;
    return i;
}

/* "1a": digits then exactly one lower-case letter. */
static bool digits_letter(const char *p, size_t n)
{
    size_t d = digit_run(p, n);
    return d > 0 && n == d + 1 && is_lower(p[d]);
}

/*
 * AWS: a region is two to four lower-case words and a number (us-east-1,
 * us-gov-west-1, eusc-de-east-1). A zone adds one letter to the number
 * (us-east-1b); a local zone adds "-metro-1a" (us-east-1-bos-1a); a
 * Wavelength zone "-wl1-metro-wlz-1" (us-east-1-wl1-bos-wlz-1). Returns the
 * length of the region prefix, 0 when zone is none of these.
 */
static size_t aws_region_len(const char *zone, const zone_parts *z)
{
    size_t k = 0;
    while (k < z->count && lower_run(z->p[k], z->n[k]) == z->n[k])
        k++;
    if (k < 2 || k > 4 || k == z->count)
        return 0;
    const char *t = z->p[k];
    size_t tn = z->n[k];
    size_t d = digit_run(t, tn);
    if (d == 0)
        return 0;
    if (k == z->count - 1)
        return digits_letter(t, tn) ? (size_t)(t - zone) + d : 0;
    if (d != tn)
        return 0;
    size_t rest = z->count - k - 1;
    const char *const *p = &z->p[k + 1];
    const size_t *n = &z->n[k + 1];
    bool local = rest == 2 && lower_run(p[0], n[0]) == n[0] && digits_letter(p[1], n[1]);
    bool wavelength = rest == 4 && n[0] > 2 && memcmp(p[0], "wl", 2) == 0 &&
                      digit_run(p[0] + 2, n[0] - 2) == n[0] - 2 && lower_run(p[1], n[1]) == n[1] &&
                      n[2] == 3 && memcmp(p[2], "wlz", 3) == 0 && digit_run(p[3], n[3]) == n[3];
    return local || wavelength ? (size_t)(t - zone) + tn : 0;
}

/* GCP: region "word-word1", zone "word-word1-x" (europe-west1-d). */
static size_t gcp_region_len(const char *zone, const zone_parts *z)
{
    if (z->count != 3 || lower_run(z->p[0], z->n[0]) != z->n[0])
        return 0;
    size_t letters = lower_run(z->p[1], z->n[1]);
    if (letters == 0 || letters == z->n[1] ||
        digit_run(z->p[1] + letters, z->n[1] - letters) != z->n[1] - letters)
        return 0;
    if (z->n[2] != 1 || !is_lower(z->p[2][0]))
        return 0;
    return (size_t)(z->p[1] - zone) + z->n[1];
}

/* Azure: "<location>-<n>" as AKS labels it (eastus-2, westeurope-1). */
static size_t azure_region_len(const char *zone, const zone_parts *z)
{
    (void)zone;
    if (z->count != 2 || !is_lower(z->p[0][0]))
        return 0;
    for (size_t i = 0; i < z->n[0]; i++)
        if (!is_lower(z->p[0][i]) && !is_digit(z->p[0][i]))
            return 0;
    if (z->n[1] > 2 || digit_run(z->p[1], z->n[1]) != z->n[1])
        return 0;
    return z->n[0];
}

int tw__imds_region_from_zone(tw_cloud cloud, const char *zone, char out[TW_LABEL_VALUE_SIZE])
{
    zone_parts z;
    if (zone == NULL || strlen(zone) > TW_LABEL_VALUE_MAX || !split_dashes(zone, &z))
        return TW_EPARSE;
    size_t len = 0;
    switch (cloud) {
    case TW_CLOUD_AWS:
        len = aws_region_len(zone, &z);
        break;
    case TW_CLOUD_GCP:
        len = gcp_region_len(zone, &z);
        break;
    case TW_CLOUD_AZURE:
        len = azure_region_len(zone, &z);
        break;
    case TW_CLOUD_AUTO:
        len = aws_region_len(zone, &z);
        if (len == 0)
            len = gcp_region_len(zone, &z);
        if (len == 0)
            len = azure_region_len(zone, &z);
        break;
    }
    if (len == 0)
        return TW_EPARSE;
    TW_ASSERT(len < strlen(zone) && len <= TW_LABEL_VALUE_MAX); /* a proper prefix of the zone */
    memcpy(out, zone, len);
    out[len] = '\0';
    return TW_OK;
}

/* ---- requests ----------------------------------------------------------- */

/* Adds a sentence to the notes reported through err when the query succeeds. */
__attribute__((format(printf, 2, 3))) static void add_note(imds_ctx *cx, const char *fmt, ...)
{
    size_t n = strlen(cx->note);
    if (n + 3 >= sizeof(cx->note))
        return;
    if (n > 0) {
        memcpy(cx->note + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cx->note + n, sizeof(cx->note) - n, fmt, ap);
    va_end(ap);
}

/* ---- answers ------------------------------------------------------------ */

bool tw__imds_take_value(const char *p, size_t n, char out[TW_LABEL_VALUE_SIZE])
{
    if (n > 0 && p[n - 1] == '\n') {
        n--;
        if (n > 0 && p[n - 1] == '\r')
            n--;
    }
    if (n == 0 || n > TW_LABEL_VALUE_MAX || memchr(p, '\0', n) != NULL)
        return false;
    char v[TW_LABEL_VALUE_MAX + 1];
    memcpy(v, p, n);
    v[n] = '\0';
    if (!tw_label_value_valid(v))
        return false;
    memcpy(out, v, n + 1);
    return true;
}

bool tw__imds_take_token(const char *p, size_t n, char token[TW__IMDS_TOKEN_MAX])
{
    if (n > 0 && p[n - 1] == '\n')
        n--;
    /* It goes into a header: printable ASCII without spaces only. */
    if (n == 0 || n >= TW__IMDS_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    memcpy(token, p, n);
    token[n] = '\0';
    return true;
}

int tw__imds_parse_gcp_zone(const char *body, size_t len, char zone[TW_LABEL_VALUE_SIZE],
                            char region[TW_LABEL_VALUE_SIZE], bool *spoke, char *err)
{
    /* projects/412345678901/zones/europe-west1-d */
    static const char projects[] = "projects/";
    static const char zones[] = "/zones/";
    size_t pl = sizeof(projects) - 1, zl = sizeof(zones) - 1;
    size_t n = len;
    if (n > 0 && body[n - 1] == '\n')
        n--;
    const char *slash = NULL;
    for (size_t i = 0; i < n; i++)
        if (body[i] == '/')
            slash = body + i;
    if (slash == NULL || (size_t)(slash - body) + 1 < zl ||
        memcmp(slash + 1 - zl, zones, zl) != 0 || len < pl || memcmp(body, projects, pl) != 0)
        return tw_seterr(err, TW_EPARSE,
                         "GCP instance/zone is not of the form projects/NUMBER/zones/ZONE");
    *spoke = true;
    const char *z = slash + 1;
    char v[TW_LABEL_VALUE_SIZE];
    if (!tw__imds_take_value(z, (size_t)(body + n - z), v))
        return tw_seterr(err, TW_EBADVALUE,
                         "the GCP zone served (%zu bytes) is not a valid label value",
                         (size_t)(body + n - z));
    if (tw__imds_region_from_zone(TW_CLOUD_GCP, v, region) != TW_OK)
        region[0] = '\0';
    memcpy(zone, v, sizeof(v));
    return TW_OK;
}

int tw__imds_parse_azure(const char *body, size_t len, char zone[TW_LABEL_VALUE_SIZE],
                         char region[TW_LABEL_VALUE_SIZE], bool *spoke, char *err)
{
    /* An escaped NUL must not cut the zone or location short ("1\u0000junk" is not "1"). */
    cJSON *root = NULL;
    int rc = tw_json_parse(body, len, &root, NULL);
    if (rc == TW_ENOMEM)
        return tw_seterr(err, rc, "out of memory reading Azure metadata/instance");
    rc = TW_OK;
    const cJSON *compute = cJSON_GetObjectItemCaseSensitive(root, "compute");
    const cJSON *location = cJSON_GetObjectItemCaseSensitive(compute, "location");
    const cJSON *zn = cJSON_GetObjectItemCaseSensitive(compute, "zone");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(compute) || !cJSON_IsString(location)) {
        rc = tw_seterr(err, TW_EPARSE,
                       "Azure metadata/instance is not JSON with a string compute.location");
        goto out;
    }
    *spoke = true;
    if (zn != NULL && !cJSON_IsNull(zn) && !cJSON_IsString(zn)) {
        rc = tw_seterr(err, TW_EPARSE,
                       "Azure metadata/instance has a compute.zone that is not a string");
        goto out;
    }
    if (zn == NULL || !cJSON_IsString(zn) || zn->valuestring[0] == '\0') {
        rc = tw_seterr(err, TW_ENOTFOUND,
                       "the Azure VM is regional: metadata/instance names no availability zone");
        goto out;
    }
    char joined[2 * TW_LABEL_VALUE_MAX + 2], z[TW_LABEL_VALUE_SIZE], r[TW_LABEL_VALUE_SIZE];
    int jn = snprintf(joined, sizeof(joined), "%s-%s", location->valuestring, zn->valuestring);
    if (jn < 0 || (size_t)jn >= sizeof(joined) || !tw_label_value_valid(location->valuestring) ||
        !tw__imds_take_value(joined, (size_t)jn, z) ||
        !tw__imds_take_value(location->valuestring, strlen(location->valuestring), r)) {
        rc = tw_seterr(err, TW_EBADVALUE,
                       "the Azure location and zone served do not form a valid label value");
        goto out;
    }
    memcpy(zone, z, sizeof(z));
    memcpy(region, r, sizeof(r));
out:
    cJSON_Delete(root);
    return rc;
}

/*
 * Sends one request to cx->base + path, never through a proxy, never past
 * the caller's deadline nor past until. headers is borrowed; resp must be
 * initialised. Returns tw_http_do's code with err naming what failed.
 */
static int fetch(imds_ctx *cx, const char *method, const char *path, const char *const *headers,
                 uint64_t until, tw_http_response *resp, char *err)
{
    if (until > cx->deadline)
        until = cx->deadline;
    if (tw_remaining_ms(until) == 0)
        return tw_seterr(err, TW_ETIMEDOUT, "no time left to ask %s", cx->base);
    size_t n = strlen(cx->base);
    while (n > 0 && cx->base[n - 1] == '/')
        n--;
    tw_buf url;
    tw_buf_init(&url, IMDS_URL_MAX);
    int rc = tw_buf_append(&url, cx->base, n);
    if (rc == TW_OK)
        rc = tw_buf_puts(&url, path);
    if (rc != TW_OK) {
        rc = tw_seterr(err, rc == TW_ETOOBIG ? TW_EINVAL : rc,
                       "the instance-metadata endpoint is too long");
        goto out;
    }
    tw_http_request req = {0};
    req.method = method;
    req.url = tw_buf_cstr(&url);
    req.headers = headers;
    req.no_proxy = 1; /* instance metadata must never pass through a proxy */
    req.user_agent = cx->opts->user_agent ? cx->opts->user_agent : "topowire/" TW_VERSION;
    req.deadline = until;
    req.max_body = IMDS_BODY_MAX;
    rc = tw_http_do(cx->http, &req, resp, err);
out:
    tw_buf_free(&url);
    return rc;
}

/* Turns an unexpected status into an error code and a sentence. */
static int status_error(char *err, long status, const char *cloud, const char *what)
{
    int code = tw_http_status_error(status);
    if (code == TW_OK)
        code = TW_EHTTP; /* a 2xx other than the 200 expected */
    return tw_seterr(err, code, "%s instance metadata answered HTTP %ld for %s", cloud, status,
                     what);
}

/* ---- AWS ---------------------------------------------------------------- */

/*
 * Asks for an IMDSv2 token, giving up after token_timeout_ms: where the
 * instance's hop limit is 1 the answer never reaches a container, so the PUT
 * just hangs. Fills token (TOKEN_MAX bytes) or leaves it "" to ask with
 * IMDSv1. Returns 0, or an error when the service cannot be asked at all.
 */
static int aws_token(imds_ctx *cx, char token[TOKEN_MAX], char *err)
{
    static const char *const headers[] = {TOKEN_TTL_HEADER, NULL};
    long wait = cx->opts->token_timeout_ms > 0 ? cx->opts->token_timeout_ms : TOKEN_TIMEOUT_MS;
    uint64_t until = tw_deadline_in(wait);
    bool capped = until >= cx->probe_deadline; /* the deadline, not the token wait, bounds it */
    if (capped)
        until = cx->probe_deadline;
    tw_http_response resp;
    tw_http_response_init(&resp);
    char herr[TW_ERRLEN] = "";
    token[0] = '\0';
    int rc = fetch(cx, "PUT", AWS_TOKEN_PATH, headers, until, &resp, herr);
    if (rc == TW_ETIMEDOUT) {
        /*
         * A PUT that outlasted the token wait means a hop-limit-1 node: use IMDSv1.
         * One cut off by the deadline leaves no time for IMDSv1 either.
         */
        if (capped)
            rc = tw_seterr(err, TW_ETIMEDOUT,
                           "AWS instance metadata: the deadline passed during the token request");
        else
            rc = TW_OK;
        goto out;
    }
    if (rc != TW_OK) {
        tw_seterr(err, rc, "AWS instance metadata token request: %s", herr);
        goto out;
    }
    if (resp.status == 200) {
        if (tw__imds_take_token(tw_buf_cstr(&resp.body), resp.body.len, token)) {
            cx->spoke = true;
        } else {
            add_note(cx, "the IMDSv2 token served is unusable, IMDSv1 was used");
        }
        goto out;
    }
    /* Refused: IMDSv2 is not offered here (or this is not AWS); IMDSv1 may still answer. */
    if (resp.status == 403 || resp.status == 404 || resp.status == 405)
        goto out;
    rc = status_error(err, resp.status, "AWS", "the token request");
out:
    tw_http_response_free(&resp);
    return rc;
}

/* GETs placement/leaf, with the token when there is one. resp must be initialised. */
static int aws_get(imds_ctx *cx, const char *leaf, const char *token, uint64_t until,
                   tw_http_response *resp, char *err)
{
    char path[128];
    snprintf(path, sizeof(path), AWS_PLACEMENT_PATH "%s", leaf);
    char header[TOKEN_MAX + sizeof(TOKEN_HEADER) + 4];
    const char *headers[2] = {NULL, NULL};
    if (token[0] != '\0') {
        snprintf(header, sizeof(header), TOKEN_HEADER ": %s", token);
        headers[0] = header;
    }
    char herr[TW_ERRLEN] = "";
    int rc = fetch(cx, "GET", path, headers, until, resp, herr);
    /* The header held the token: wipe it from the stack. */
    memset(header, 0, sizeof(header));
    if (rc != TW_OK)
        return tw_seterr(err, rc, "AWS instance metadata %s: %s", leaf, herr);
    return TW_OK;
}

/* Fetches a value the answer can do without (zone ID, region): failures become notes. */
static void aws_optional(imds_ctx *cx, const char *leaf, const char *token,
                         char out[TW_LABEL_VALUE_SIZE])
{
    tw_http_response resp;
    tw_http_response_init(&resp);
    char e[TW_ERRLEN] = "";
    out[0] = '\0';
    if (aws_get(cx, leaf, token, cx->deadline, &resp, e) != TW_OK)
        add_note(cx, "%s", e);
    else if (resp.status == 404)
        ; /* not served in every region or partition */
    else if (resp.status != 200)
        add_note(cx, "AWS instance metadata answered HTTP %ld for %s", resp.status, leaf);
    else if (!tw__imds_take_value(resp.body.data ? resp.body.data : "", resp.body.len, out))
        add_note(cx, "the AWS %s served (%zu bytes) is not a valid label value and was dropped",
                 leaf, resp.body.len);
    tw_http_response_free(&resp);
}

static int aws_query(imds_ctx *cx, tw_imds_result *res, char *err)
{
    char token[TOKEN_MAX];
    tw_http_response resp;
    tw_http_response_init(&resp);
    int rc = aws_token(cx, token, err);
    if (rc != TW_OK)
        goto out;
    res->imds_v1 = token[0] == '\0';
    if (res->imds_v1 && tw_remaining_ms(cx->deadline) == 0) {
        rc = tw_seterr(err, TW_ETIMEDOUT,
                       "AWS instance metadata: the deadline passed during the token request");
        goto out;
    }
    rc = aws_get(cx, "availability-zone", token, cx->spoke ? cx->deadline : cx->probe_deadline,
                 &resp, err);
    if (rc != TW_OK)
        goto out;
    if (resp.status == 401 && res->imds_v1) {
        cx->spoke = true;
        rc = tw_seterr(err, TW_EUNAUTH,
                       "AWS instance metadata requires IMDSv2, but the token request (PUT %s) was "
                       "refused or timed out; in a container this usually means the instance's "
                       "metadata hop limit is 1 and needs to be 2",
                       AWS_TOKEN_PATH);
        goto out;
    }
    if (resp.status != 200) {
        rc = status_error(err, resp.status, "AWS", "placement/availability-zone");
        goto out;
    }
    cx->spoke = true;
    if (!tw__imds_take_value(resp.body.data ? resp.body.data : "", resp.body.len, res->zone)) {
        rc = tw_seterr(err, TW_EBADVALUE,
                       "the AWS availability zone served (%zu bytes) is not a valid label value",
                       resp.body.len);
        goto out;
    }
    aws_optional(cx, "availability-zone-id", token, res->zone_id);
    aws_optional(cx, "region", token, res->region);
    if (res->region[0] == '\0' && tw__imds_region_from_zone(TW_CLOUD_AWS, res->zone, res->region))
        add_note(cx, "no region could be derived from the AWS zone %s", res->zone);
out:
    memset(token, 0, sizeof(token));
    tw_http_response_free(&resp);
    return rc;
}

/*
 * GET path with headers within the probe deadline; anything but a 200 is an
 * error naming cloud and what (TW_OK leaves the answer in resp).
 */
static int probe_get(imds_ctx *cx, const char *path, const char *const *headers, const char *cloud,
                     const char *what, tw_http_response *resp, char *err)
{
    char herr[TW_ERRLEN] = "";
    int rc = fetch(cx, "GET", path, headers, cx->probe_deadline, resp, herr);
    if (rc != TW_OK)
        return tw_seterr(err, rc, "%s instance metadata: %s", cloud, herr);
    if (resp->status != 200)
        return status_error(err, resp->status, cloud, what);
    return TW_OK;
}

/* ---- GCP ---------------------------------------------------------------- */

static int gcp_query(imds_ctx *cx, tw_imds_result *res, char *err)
{
    static const char *const headers[] = {"Metadata-Flavor: Google", NULL};
    tw_http_response resp;
    tw_http_response_init(&resp);
    int rc = probe_get(cx, GCP_ZONE_PATH, headers, "GCP", "instance/zone", &resp, err);
    if (rc == TW_OK)
        rc = tw__imds_parse_gcp_zone(tw_buf_cstr(&resp.body), resp.body.len, res->zone, res->region,
                                     &cx->spoke, err);
    if (rc == TW_OK && res->region[0] == '\0')
        add_note(cx, "no region could be derived from the GCP zone %s", res->zone);
    tw_http_response_free(&resp);
    return rc;
}

/* ---- Azure -------------------------------------------------------------- */

static int azure_query(imds_ctx *cx, tw_imds_result *res, char *err)
{
    static const char *const headers[] = {"Metadata: true", NULL};
    tw_http_response resp;
    tw_http_response_init(&resp);
    int rc = probe_get(cx, AZURE_INSTANCE_PATH, headers, "Azure", "metadata/instance", &resp, err);
    if (rc == TW_OK)
        rc = tw__imds_parse_azure(tw_buf_cstr(&resp.body), resp.body.len, res->zone, res->region,
                                  &cx->spoke, err);
    tw_http_response_free(&resp);
    return rc;
}

/* ---- the query ---------------------------------------------------------- */

/* Asks one cloud at cx->base; cx->spoke tells whether it answered as that cloud. */
static int query_cloud(imds_ctx *cx, tw_cloud cloud, tw_imds_result *res, char *err)
{
    TW_ASSERT(cloud == TW_CLOUD_AWS || cloud == TW_CLOUD_GCP || cloud == TW_CLOUD_AZURE);
    memset(res, 0, sizeof(*res));
    res->cloud = cloud;
    cx->spoke = false;
    cx->note[0] = '\0';
    switch (cloud) {
    case TW_CLOUD_AWS:
        return aws_query(cx, res, err);
    case TW_CLOUD_GCP:
        return gcp_query(cx, res, err);
    case TW_CLOUD_AZURE:
        return azure_query(cx, res, err);
    case TW_CLOUD_AUTO:
        break;
    }
    return tw_seterr(err, TW_EINVAL, "no cloud to ask");
}

static const char *default_endpoint(tw_cloud cloud, bool probing)
{
    TW_ASSERT(cloud == TW_CLOUD_AWS || cloud == TW_CLOUD_GCP || cloud == TW_CLOUD_AZURE);
    switch (cloud) {
    case TW_CLOUD_AWS:
        return AWS_ENDPOINT;
    /* Probing skips the DNS name: off GCP its lookup can take longer than the probe may. */
    case TW_CLOUD_GCP:
        return probing ? GCP_PROBE_ENDPOINT : GCP_ENDPOINT;
    case TW_CLOUD_AZURE:
        return AZURE_ENDPOINT;
    case TW_CLOUD_AUTO:
        break;
    }
    return AWS_ENDPOINT;
}

/*
 * No DMI hint: asks AWS, GCP and Azure in turn, each until it has answered
 * as itself within an equal share of the time left. The first that answers
 * decides the outcome.
 */
static int probe_clouds(imds_ctx *cx, tw_imds_result *res, char *err)
{
    tw_cloud order[3];
    size_t n = 0;
    if (!cx->opts->aws_disabled)
        order[n++] = TW_CLOUD_AWS;
    order[n++] = TW_CLOUD_GCP;
    order[n++] = TW_CLOUD_AZURE;
    char last[TW_ERRLEN] = "nothing was asked";
    for (size_t i = 0; i < n; i++) {
        long left = tw_remaining_ms(cx->deadline);
        if (left == 0)
            break;
        cx->probe_deadline = tw_now_ms() + (uint64_t)(left / (long)(n - i));
        cx->base = cx->opts->endpoint ? cx->opts->endpoint : default_endpoint(order[i], true);
        char perr[TW_ERRLEN] = "";
        int rc = query_cloud(cx, order[i], res, perr);
        if (rc == TW_OK || cx->spoke) {
            if (rc != TW_OK)
                tw_seterr(err, rc, "%s", perr);
            return rc;
        }
        snprintf(last, sizeof(last), "%s", perr);
    }
    return tw_seterr(err, TW_ENOTFOUND,
                     "no cloud detected: DMI names none and no instance-metadata service "
                     "answered (last: %.160s)",
                     last);
}

int tw_imds_query(const tw_imds_options *opts, uint64_t deadline, tw_imds_result *out, char *err)
{
    if (err != NULL)
        err[0] = '\0';
    if (opts == NULL || out == NULL)
        return tw_seterr(err, TW_EINVAL, "tw_imds_query needs options and a result");
    tw_cloud cloud = opts->cloud;
    if (cloud != TW_CLOUD_AUTO && cloud != TW_CLOUD_AWS && cloud != TW_CLOUD_GCP &&
        cloud != TW_CLOUD_AZURE)
        return tw_seterr(err, TW_EINVAL, "unknown cloud %d", (int)cloud);
    if (deadline == 0)
        deadline = tw_deadline_in(IMDS_DEFAULT_WAIT);
    if (cloud == TW_CLOUD_AUTO)
        cloud = tw__imds_detect(opts->dmi_dir);
    if (cloud == TW_CLOUD_AWS && opts->aws_disabled)
        return tw_seterr(err, TW_EDISABLED,
                         "AWS instance metadata is disabled (AWS_EC2_METADATA_DISABLED)");

    imds_ctx cx = {.opts = opts, .deadline = deadline, .probe_deadline = deadline};
    tw_imds_result res;
    int rc;
    cx.http = tw_http_client_new();
    if (cx.http == NULL)
        return tw_seterr(err, TW_ENOMEM, "out of memory");
    if (cloud == TW_CLOUD_AUTO) {
        rc = probe_clouds(&cx, &res, err);
    } else {
        cx.base = opts->endpoint ? opts->endpoint : default_endpoint(cloud, false);
        rc = query_cloud(&cx, cloud, &res, err);
    }
    if (rc == TW_OK) {
        *out = res;
        if (err != NULL)
            snprintf(err, TW_ERRLEN, "%s", cx.note);
    }
    tw_http_client_free(cx.http);
    return rc;
}
