/*
 * curl-init-probe.c - an LD_PRELOAD library for webhook.sh: records, in the
 * file $TW_CURL_INIT_PROBE, how many threads the process had when it called
 * curl_global_init(), then calls the real one. libcurl requires that call
 * before any other thread starts.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

typedef CURLcode (*init_fn)(long flags);

CURLcode curl_global_init(long flags)
{
    const char *out = getenv("TW_CURL_INIT_PROBE");
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    long threads = -1;
    while (status != NULL && fgets(line, sizeof(line), status) != NULL)
        if (strncmp(line, "Threads:", 8) == 0)
            threads = strtol(line + 8, NULL, 10);
    if (status != NULL)
        fclose(status);
    FILE *f = out != NULL ? fopen(out, "a") : NULL;
    if (f != NULL) {
        fprintf(f, "threads=%ld\n", threads);
        fclose(f);
    }
    init_fn real = (init_fn)dlsym(RTLD_NEXT, "curl_global_init");
    return real != NULL ? real(flags) : CURLE_FAILED_INIT;
}
