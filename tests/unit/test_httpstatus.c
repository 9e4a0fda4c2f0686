/* test_httpstatus.c - HTTP status to error code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>

#include "topowire/error.h"
#include "topowire/httpstatus.h"

static void mapping(void **state)
{
    (void)state;
    static const struct {
        long status;
        int rc;
        bool retry;
    } cases[] = {
        {200, TW_OK, false},        {201, TW_OK, false},         {299, TW_OK, false},
        {301, TW_EREDIRECT, false}, {307, TW_EREDIRECT, false},  {400, TW_EHTTP, false},
        {401, TW_EUNAUTH, false},   {403, TW_EFORBIDDEN, false}, {404, TW_ENOTFOUND, false},
        {405, TW_EHTTP, false},     {409, TW_EHTTP, false},      {410, TW_EGONE, false},
        {422, TW_EHTTP, false},     {429, TW_ERETRY, true},      {500, TW_ERETRY, true},
        {502, TW_ERETRY, true},     {503, TW_ERETRY, true},      {599, TW_ERETRY, true},
        {100, TW_EHTTP, false},     {0, TW_EHTTP, false},        {600, TW_EHTTP, false},
        {-1, TW_EHTTP, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (tw_http_status_error(cases[i].status) != cases[i].rc)
            fail_msg("%ld: got %d, want %d", cases[i].status, tw_http_status_error(cases[i].status),
                     cases[i].rc);
        if (tw_http_status_retryable(cases[i].status) != cases[i].retry)
            fail_msg("%ld: retryable is wrong", cases[i].status);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
