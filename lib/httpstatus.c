/* httpstatus.c - HTTP status to topowire error code. */
#include "topowire/error.h"
#include "topowire/httpstatus.h"

bool tw_http_status_retryable(long status)
{
    return status == 429 || (status >= 500 && status <= 599);
}

int tw_http_status_error(long status)
{
    if (status >= 200 && status <= 299)
        return TW_OK;
    if (status >= 300 && status <= 399)
        return TW_EREDIRECT;
    if (tw_http_status_retryable(status))
        return TW_ERETRY;
    switch (status) {
    case 401:
        return TW_EUNAUTH;
    case 403:
        return TW_EFORBIDDEN;
    case 404:
        return TW_ENOTFOUND;
    case 410:
        return TW_EGONE;
    default:
        return TW_EHTTP;
    }
}
