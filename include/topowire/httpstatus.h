/* httpstatus.h - what an HTTP status means as a topowire error code. */
#ifndef TOPOWIRE_HTTPSTATUS_H
#define TOPOWIRE_HTTPSTATUS_H

#include <stdbool.h>

/*
 * The error code for an answer with this HTTP status, the same for the
 * Kubernetes API and for instance metadata:
 *   2xx         0
 *   3xx         TW_EREDIRECT (topowire never follows)
 *   401         TW_EUNAUTH
 *   403         TW_EFORBIDDEN
 *   404         TW_ENOTFOUND
 *   410         TW_EGONE (a resourceVersion or continue token expired)
 *   429, 5xx    TW_ERETRY (the server may answer later; a caller that
 *               retries returns it once its attempts are spent)
 *   others      TW_EHTTP
 * Cannot fail.
 */
int tw_http_status_error(long status);

/* True for the statuses worth another attempt: 429 and 5xx. */
bool tw_http_status_retryable(long status);

#endif
