/* error.c - error code descriptions and the err-buffer helper. */
#include <stdarg.h>
#include <stdio.h>

#include "topowire/error.h"

const char *tw_strerror(int code)
{
    switch (code) {
    case TW_OK:
        return "success";
    case TW_ENOMEM:
        return "out of memory";
    case TW_EINVAL:
        return "invalid argument or configuration";
    case TW_EIO:
        return "input/output error";
    case TW_ENET:
        return "connection failed";
    case TW_ETIMEDOUT:
        return "deadline exceeded";
    case TW_EHTTP:
        return "unexpected HTTP status";
    case TW_EPARSE:
        return "malformed data";
    case TW_ETOOBIG:
        return "too large";
    case TW_ENOTFOUND:
        return "not found";
    case TW_EFORBIDDEN:
        return "forbidden";
    case TW_EUNAUTH:
        return "unauthorized";
    case TW_ETLS:
        return "TLS failure";
    case TW_EREDIRECT:
        return "redirect refused";
    case TW_EDISABLED:
        return "disabled";
    case TW_ENOCONFIG:
        return "not configured";
    case TW_EBADVALUE:
        return "invalid label value";
    case TW_ERETRY:
        return "retries exhausted";
    case TW_EEXEC:
        return "external command failed";
    }
    return "unknown error";
}

int tw_seterr(char *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, TW_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return code;
}
