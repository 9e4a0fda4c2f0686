/* log.c - one line per event on stderr, as text or JSON. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "topowire/buf.h"
#include "topowire/error.h"
#include "topowire/assert.h"
#include "topowire/log.h"

#define LOG_LINE_MAX 8192

static const char *log_prog = "topowire";
static tw_log_format log_format = TW_LOG_TEXT;
static tw_log_level log_min = TW_LOG_INFO;

static const char *const level_names[] = {
    [TW_LOG_DEBUG] = "debug",
    [TW_LOG_INFO] = "info",
    [TW_LOG_WARN] = "warn",
    [TW_LOG_ERROR] = "error",
};
_Static_assert(sizeof(level_names) / sizeof(level_names[0]) == TW_LOG_ERROR + 1, "level names");

void tw_log_setup(const char *prog, tw_log_format format, tw_log_level min_level)
{
    log_prog = prog;
    log_format = format;
    log_min = min_level;
}

int tw_log_parse_format(const char *s, tw_log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = TW_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = TW_LOG_JSON;
    else
        return TW_EINVAL;
    return TW_OK;
}

int tw_log_parse_level(const char *s, tw_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (tw_log_level)i;
            return TW_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = TW_LOG_WARN;
        return TW_OK;
    }
    return TW_EINVAL;
}

static void timestamp(char out[32])
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

/* Writes the whole line with as few write(2) calls as the kernel allows. */
static void emit(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Text values with spaces, quotes or control bytes are quoted and escaped. */
static void text_value(tw_buf *b, const char *v)
{
    bool plain = *v != '\0';
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            plain = false;
    if (plain) {
        tw_buf_puts(b, v);
        return;
    }
    tw_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            tw_buf_printf(b, "\\%c", *p);
        else if (*p < ' ' || *p == 0x7f)
            tw_buf_printf(b, "\\x%02x", *p);
        else
            tw_buf_append(b, p, 1);
    }
    tw_buf_puts(b, "\"");
}

static void vlog_kv(tw_log_level level, const char *msg, va_list ap)
{
    TW_ASSERT(level >= TW_LOG_DEBUG && level <= TW_LOG_ERROR);
    if (level < TW_LOG_DEBUG || level > TW_LOG_ERROR)
        level = TW_LOG_ERROR;
    char ts[32];
    tw_buf line;
    tw_buf_init(&line, LOG_LINE_MAX);
    timestamp(ts);
    if (log_format == TW_LOG_JSON) {
        cJSON *o = cJSON_CreateObject();
        if (o == NULL)
            return;
        cJSON_AddStringToObject(o, "time", ts);
        cJSON_AddStringToObject(o, "level", level_names[level]);
        cJSON_AddStringToObject(o, "prog", log_prog);
        cJSON_AddStringToObject(o, "msg", msg);
        const char *k;
        while ((k = va_arg(ap, const char *)) != NULL) {
            const char *v = va_arg(ap, const char *);
            cJSON_DeleteItemFromObjectCaseSensitive(o, k);
            cJSON_AddStringToObject(o, k, v ? v : "");
        }
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (s == NULL)
            return;
        if (tw_buf_puts(&line, s) != TW_OK) {
            tw_buf_reset(&line);
            tw_buf_printf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"log line too long\"}",
                          ts, level_names[level]);
        }
        cJSON_free(s);
    } else {
        tw_buf_printf(&line, "%s %s %s: %s", ts, level_names[level], log_prog, msg);
        const char *k;
        while ((k = va_arg(ap, const char *)) != NULL) {
            const char *v = va_arg(ap, const char *);
            tw_buf_printf(&line, " %s=", k);
            text_value(&line, v ? v : "");
        }
    }
    if (tw_buf_puts(&line, "\n") != TW_OK && line.len > 0) {
        /* Over the cap: cut the line but keep it one line. */
        tw_buf_truncate(&line, line.len - 1);
        tw_buf_puts(&line, "\n");
    }
    emit(tw_buf_cstr(&line), line.len);
    tw_buf_free(&line);
}

void tw_log_kv(tw_log_level level, const char *msg, ...)
{
    if (level < log_min)
        return;
    va_list ap;
    va_start(ap, msg);
    vlog_kv(level, msg, ap);
    va_end(ap);
}
