/* reply.c - building answers and turning them into libmicrohttpd responses. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "standin.h"
#include "topowire/error.h"

const char *st_header(const st_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *st_arg(const st_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

void st_resp_init(st_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->action = ST_SEND;
    tw_buf_init(&r->body, 512u * 1024 * 1024);
}

void st_resp_free(st_resp *r)
{
    tw_buf_free(&r->body);
    /* A stream that was never queued still owns its reader state. */
    if (r->reader_cls && r->reader_free)
        r->reader_free(r->reader_cls);
    r->reader_cls = NULL;
}

void st_reply(st_resp *r, int status, const char *ctype, const char *body)
{
    r->status = status;
    r->ctype = ctype;
    tw_buf_reset(&r->body);
    if (body)
        tw_buf_puts(&r->body, body);
}

void st_reply_json(st_resp *r, int status, const char *ctype, const cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    st_reply(r, status, ctype, s ? s : "{}");
    free(s);
}

void st_add_header(st_resp *r, const char *name, const char *fmt, ...)
{
    if (r->nheaders == ST_MAX_HEADERS)
        return;
    snprintf(r->hname[r->nheaders], sizeof(r->hname[0]), "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->hvalue[r->nheaders], sizeof(r->hvalue[0]), fmt, ap);
    va_end(ap);
    r->nheaders++;
}

/* ---- the huge body: valid JSON of exactly ST_HUGE_SIZE bytes, made on the fly ---- */

static const char huge_head[] =
    "{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"huge\",\"annotations\":"
    "{\"padding\":\"";
static const char huge_tail[] = "\"}}}\n";

static ssize_t huge_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    const uint64_t head = sizeof(huge_head) - 1, tail = sizeof(huge_tail) - 1;
    const uint64_t total = ST_HUGE_SIZE;
    size_t n = 0;
    while (n < max && pos + n < total) {
        uint64_t at = pos + n;
        if (at < head) {
            buf[n++] = huge_head[at];
        } else if (at >= total - tail) {
            buf[n++] = huge_tail[at - (total - tail)];
        } else {
            uint64_t run = (total - tail) - at;
            if (run > max - n)
                run = max - n;
            memset(buf + n, 'x', (size_t)run);
            n += (size_t)run;
        }
    }
    return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

/* ---- the stalled body: a prefix, then nothing until the server stops ---- */

typedef struct stall_state {
    standin *st;
    char *part;
    size_t len;
} stall_state;

static ssize_t stall_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    stall_state *s = cls;
    if (pos < s->len) {
        size_t n = s->len - (size_t)pos;
        if (n > max)
            n = max;
        memcpy(buf, s->part + pos, n);
        return (ssize_t)n;
    }
    while (!st_sleep(s->st, 1000))
        ;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stall_free(void *cls)
{
    stall_state *s = cls;
    free(s->part);
    free(s);
}

enum MHD_Result st_send(standin *st, struct MHD_Connection *conn, st_resp *resp)
{
    struct MHD_Response *r = NULL;
    switch (resp->action) {
    case ST_HUGE:
        r = MHD_create_response_from_callback(ST_HUGE_SIZE, 64 * 1024, huge_reader, NULL, NULL);
        break;
    case ST_STALL: {
        stall_state *s = calloc(1, sizeof(*s));
        if (s == NULL)
            break;
        s->st = st;
        s->len = resp->body.len;
        s->part = tw_buf_detach(&resp->body);
        /* Promise more than we will ever send, so the client keeps waiting. */
        r = MHD_create_response_from_callback(s->len + 4096, 1024, stall_reader, s, stall_free);
        if (r == NULL)
            stall_free(s);
        break;
    }
    case ST_STREAM:
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, resp->reader,
                                              resp->reader_cls, resp->reader_free);
        /* From here on the response owns the reader state (or we still do on failure). */
        if (r)
            resp->reader_cls = NULL;
        break;
    default:
        r = MHD_create_response_from_buffer(resp->body.len, (void *)tw_buf_cstr(&resp->body),
                                            MHD_RESPMEM_MUST_COPY);
        break;
    }
    if (r == NULL) {
        st_resp_free(resp);
        return MHD_NO;
    }
    if (resp->ctype)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->ctype);
    for (int i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->hname[i], resp->hvalue[i]);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    st_resp_free(resp);
    return rc;
}

char *st_read_file(const char *path, size_t max, size_t *len)
{
    char *s = NULL;
    tw_buf b;
    tw_buf_init(&b, max);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        goto out;
    for (;;) {
        char chunk[16384];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        if (tw_buf_append(&b, chunk, (size_t)n) != TW_OK)
            goto out;
    }
    if (len)
        *len = b.len;
    s = tw_buf_detach(&b);
out:
    close(fd);
    tw_buf_free(&b);
    return s;
}

int st_random_hex(char *out, size_t n)
{
    unsigned char raw[64];
    if (n > sizeof(raw) || getrandom(raw, n, 0) != (ssize_t)n)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}
