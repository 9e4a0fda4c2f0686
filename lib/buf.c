/* buf.c - bounded growable byte buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topowire/buf.h"
#include "topowire/error.h"

void tw_buf_init(tw_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

/* Makes room for n more content bytes plus the terminator. */
static int buf_reserve(tw_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return TW_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return TW_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return TW_ENOMEM;
    b->data = p;
    b->cap = cap;
    return TW_OK;
}

int tw_buf_append(tw_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc != TW_OK)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return TW_OK;
}

int tw_buf_puts(tw_buf *b, const char *s)
{
    return tw_buf_append(b, s, strlen(s));
}

int tw_buf_vprintf(tw_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return TW_EINVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc != TW_OK)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return TW_OK;
}

int tw_buf_printf(tw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = tw_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *tw_buf_cstr(const tw_buf *b)
{
    return b->data ? b->data : "";
}

void tw_buf_reset(tw_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void tw_buf_truncate(tw_buf *b, size_t n)
{
    if (n >= b->len)
        return;
    b->len = n;
    b->data[n] = '\0';
}

void tw_buf_set_max(tw_buf *b, size_t max)
{
    b->max = max;
}

char *tw_buf_detach(tw_buf *b)
{
    char *p = b->data;
    if (p == NULL)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void tw_buf_free(tw_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
