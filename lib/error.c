/* error.c - error code descriptions and the err-buffer helper. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "topowire/assert.h"
#include "topowire/error.h"

/* Indexed by -code: every code of enum tw_error has its sentence. */
static const char *const messages[] = {
    [-TW_OK] = "success",
    [-TW_ENOMEM] = "out of memory",
    [-TW_EINVAL] = "invalid argument or configuration",
    [-TW_EIO] = "input/output error",
    [-TW_ENET] = "connection failed",
    [-TW_ETIMEDOUT] = "deadline exceeded",
    [-TW_EHTTP] = "unexpected HTTP status",
    [-TW_EPARSE] = "malformed data",
    [-TW_ETOOBIG] = "too large",
    [-TW_ENOTFOUND] = "not found",
    [-TW_EFORBIDDEN] = "forbidden",
    [-TW_EUNAUTH] = "unauthorized",
    [-TW_ETLS] = "TLS failure",
    [-TW_EREDIRECT] = "redirect refused",
    [-TW_EDISABLED] = "disabled",
    [-TW_ENOCONFIG] = "not configured",
    [-TW_EBADVALUE] = "invalid label value",
    [-TW_ERETRY] = "retries exhausted",
    [-TW_EEXEC] = "external command failed",
    [-TW_EGONE] = "resource version expired",
    [-TW_ECANCELED] = "canceled",
};
_Static_assert(sizeof(messages) / sizeof(messages[0]) == 1 - TW_ELAST,
               "every error code has a message, and no more");

const char *tw_strerror(int code)
{
    if (code > 0 || code < TW_ELAST || messages[-code] == NULL)
        return "unknown error";
    return messages[-code];
}

_Noreturn void tw__assert_fail(const char *cond, const char *file, int line, const char *func)
{
    fprintf(stderr, "topowire: assertion failed: %s (%s:%d, %s)\n", cond, file, line, func);
    abort();
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
