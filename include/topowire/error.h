/* error.h - the one table of topowire error codes and the err-buffer convention. */
#ifndef TOPOWIRE_ERROR_H
#define TOPOWIRE_ERROR_H

#include <stddef.h>

/*
 * Every library call that can fail returns int: 0 on success or one of these
 * negative codes. Out-parameters are written only on success. Most calls also
 * take `char *err`, an optional buffer of TW_ERRLEN bytes (NULL is allowed)
 * that receives one human sentence saying what went wrong, fit for a log line
 * or an AdmissionReview status message. It never contains a token.
 */
#define TW_ERRLEN 256

enum tw_error {
    TW_OK = 0,
    TW_ENOMEM = -1,      /* out of memory */
    TW_EINVAL = -2,      /* bad argument or configuration */
    TW_EIO = -3,         /* file or pipe I/O failed */
    TW_ENET = -4,        /* could not connect, or the connection broke */
    TW_ETIMEDOUT = -5,   /* the deadline passed */
    TW_EHTTP = -6,       /* the server answered with an unexpected HTTP status */
    TW_EPARSE = -7,      /* the answer or file is malformed */
    TW_ETOOBIG = -8,     /* a body or value is over its size cap */
    TW_ENOTFOUND = -9,   /* the thing asked for does not exist (404, no file, no label) */
    TW_EFORBIDDEN = -10, /* authenticated but not allowed (403) */
    TW_EUNAUTH = -11,    /* not authenticated (401) */
    TW_ETLS = -12,       /* TLS handshake or certificate verification failed */
    TW_EREDIRECT = -13,  /* the server redirected; topowire never follows */
    TW_EDISABLED = -14,  /* the source is switched off by configuration */
    TW_ENOCONFIG = -15,  /* no configuration for this source exists here */
    TW_EBADVALUE = -16,  /* a value is not a valid Kubernetes label value */
    TW_ERETRY = -17,     /* a retryable failure (429, 5xx): attempts ran out, or none was made */
    TW_EEXEC = -18,      /* an external command (credential plugin) failed */
    TW_EGONE = -19,      /* the resourceVersion expired (410 Gone): list again */
    TW_ECANCELED = -20,  /* the caller stopped the operation */
    TW_ELAST = TW_ECANCELED, /* the lowest code; a new code goes below it and moves this */
};

/* Returns a static, short description of code (never NULL). */
const char *tw_strerror(int code);

/*
 * Writes a printf-style sentence into err (TW_ERRLEN bytes) when err is not
 * NULL, and returns code unchanged, so that `return tw_seterr(err, TW_EIO,
 * "...")` both reports and fails.
 */
int tw_seterr(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
