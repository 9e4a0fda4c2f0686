/* fuzz_imds.c - libFuzzer target: each cloud's instance-metadata answers, without HTTP. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "topowire/error.h"
#include "topowire/imds.h"
#include "topowire/label.h"

#include "../lib/imds_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MARK 0x5A

static bool untouched(const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] != MARK)
            return false;
    return true;
}

/* A derived region is a valid label value and a proper prefix of its zone. */
static void check_region_of(tw_cloud cloud, const char *zone)
{
    char region[64];
    memset(region, MARK, sizeof(region));
    if (tw__imds_region_from_zone(cloud, zone, region) != TW_OK) {
        if (!untouched(region, sizeof(region)))
            __builtin_trap();
        return;
    }
    size_t n = strlen(region);
    if (!tw_label_value_valid(region) || n >= strlen(zone) || strncmp(region, zone, n) != 0)
        __builtin_trap();
}

/* A zone is a valid label value; a region is one too, or "". */
static void check_zone_region(const char *zone, const char *region)
{
    if (memchr(zone, '\0', 64) == NULL || memchr(region, '\0', 64) == NULL)
        __builtin_trap();
    if (!tw_label_value_valid(zone) || (region[0] != '\0' && !tw_label_value_valid(region)))
        __builtin_trap();
}

/* A failure says why in one bounded sentence. */
static void check_err(const char *err, int rc)
{
    if (rc != TW_OK && (memchr(err, '\0', TW_ERRLEN) == NULL || err[0] == '\0'))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char zone[64], region[64], err[TW_ERRLEN];
    char token[TW__IMDS_TOKEN_MAX];
    memset(zone, MARK, sizeof(zone));
    memset(region, MARK, sizeof(region));
    memset(token, MARK, sizeof(token));
    memset(err, MARK, sizeof(err));
    bool spoke = false;
    int rc;

    switch (data[0] % 4) {
    case 0: /* AWS: placement/availability-zone, -zone-id, region (plain text) */
        if (tw__imds_take_value(body, len, zone)) {
            check_zone_region(zone, "");
            check_region_of(TW_CLOUD_AWS, zone);
            check_region_of(TW_CLOUD_AUTO, zone);
        } else if (!untouched(zone, sizeof(zone))) {
            __builtin_trap();
        }
        break;
    case 1: /* AWS: the IMDSv2 token */
        if (tw__imds_take_token(body, len, token)) {
            size_t n = strlen(token);
            if (n == 0 || n >= TW__IMDS_TOKEN_MAX || n > len || memcmp(token, body, n) != 0)
                __builtin_trap();
            for (size_t i = 0; i < n; i++)
                if (token[i] < 0x21 || token[i] > 0x7e)
                    __builtin_trap();
        } else if (!untouched(token, sizeof(token))) {
            __builtin_trap();
        }
        break;
    case 2: /* GCP: instance/zone */
        rc = tw__imds_parse_gcp_zone(body, len, zone, region, &spoke, err);
        check_err(err, rc);
        if (rc == TW_OK) {
            check_zone_region(zone, region);
            check_region_of(TW_CLOUD_GCP, zone);
            if (!spoke)
                __builtin_trap();
        } else if (!untouched(zone, sizeof(zone)) || !untouched(region, sizeof(region)) ||
                   (rc != TW_EPARSE && rc != TW_EBADVALUE) || (rc == TW_EBADVALUE && !spoke)) {
            __builtin_trap();
        }
        break;
    default: /* Azure: metadata/instance JSON */
        rc = tw__imds_parse_azure(body, len, zone, region, &spoke, err);
        check_err(err, rc);
        if (rc == TW_OK) {
            check_zone_region(zone, region);
            check_region_of(TW_CLOUD_AZURE, zone);
            /* The zone is "<region>-<zone>". */
            size_t n = strlen(region);
            if (!spoke || region[0] == '\0' || strncmp(zone, region, n) != 0 || zone[n] != '-')
                __builtin_trap();
        } else if (!untouched(zone, sizeof(zone)) || !untouched(region, sizeof(region)) ||
                   (rc != TW_EPARSE && rc != TW_ENOTFOUND && rc != TW_EBADVALUE) ||
                   (rc != TW_EPARSE && !spoke)) {
            __builtin_trap();
        }
        break;
    }
    return 0;
}
