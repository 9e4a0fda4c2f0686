/* imds_int.h - imds.c's tw__ hooks for its unit tests and fuzzer; not public API. */
#ifndef TOPOWIRE_IMDS_INT_H
#define TOPOWIRE_IMDS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "topowire/imds.h"
#include "topowire/label.h"

/* Size of an IMDSv2 token buffer, terminator included. */
#define TW__IMDS_TOKEN_MAX 1024

/*
 * Names the cloud from the firmware's DMI strings in dmi_dir (NULL =
 * /sys/class/dmi/id): "Amazon EC2" vendors or an "amazon" BIOS/product version
 * mean AWS, a "Google" vendor GCP, a "Microsoft Corporation" "Virtual Machine"
 * Azure. Returns TW_CLOUD_AUTO when the directory is missing or names no
 * known cloud. Reads only small files; cannot fail. tw_imds_query() calls it
 * for TW_CLOUD_AUTO.
 */
tw_cloud tw__imds_detect(const char *dmi_dir);

/*
 * Derives a region from a zone name for the given cloud: us-east-1b ->
 * us-east-1 (also local zones us-east-1-bos-1a and Wavelength zones
 * us-east-1-wl1-bos-wlz-1), europe-west1-d -> europe-west1, eastus-2 ->
 * eastus. AUTO tries the three shapes in that order. Returns 0 or TW_EPARSE
 * when the zone does not have the cloud's shape (or zone is NULL). out holds
 * TW_LABEL_VALUE_SIZE bytes and is written only on success.
 */
int tw__imds_region_from_zone(tw_cloud cloud, const char *zone, char out[TW_LABEL_VALUE_SIZE]);

/*
 * Takes a served value of n bytes at p (not NUL-terminated): one trailing
 * newline (or CRLF) is dropped and the rest must be a valid label value. Copies
 * it into out and returns true, or returns false and leaves out alone. Used
 * for every AWS placement answer.
 */
bool tw__imds_take_value(const char *p, size_t n, char out[TW_LABEL_VALUE_SIZE]);

/*
 * Takes the IMDSv2 token from the n-byte answer to the token PUT: one
 * trailing newline is dropped, the rest must be 1 to TW__IMDS_TOKEN_MAX - 1
 * bytes of printable ASCII without spaces (it goes into a header). Copies it
 * into token and returns true, or returns false and leaves token alone.
 */
bool tw__imds_take_token(const char *p, size_t n, char token[TW__IMDS_TOKEN_MAX]);

/*
 * Parses GCP's instance/zone answer (len bytes, "projects/NUM/zones/ZONE",
 * one trailing newline allowed) into zone and region (region is "" when the
 * zone has no GCP shape). *spoke is set true once the answer has GCP's form,
 * even when the zone then proves invalid. Returns 0, TW_EPARSE (not of that
 * form) or TW_EBADVALUE (the zone is not a valid label value); zone and
 * region are written only on success.
 */
int tw__imds_parse_gcp_zone(const char *body, size_t len, char zone[TW_LABEL_VALUE_SIZE],
                            char region[TW_LABEL_VALUE_SIZE], bool *spoke, char *err);

/*
 * Parses Azure's metadata/instance JSON (len bytes) into zone
 * ("<location>-<zone>") and region (the location). *spoke is set true once
 * the answer is a JSON object with a string compute.location. Returns 0,
 * TW_EPARSE, TW_ENOTFOUND (a regional VM: no zone), TW_EBADVALUE or
 * TW_ENOMEM; zone and region are written only on success.
 */
int tw__imds_parse_azure(const char *body, size_t len, char zone[TW_LABEL_VALUE_SIZE],
                         char region[TW_LABEL_VALUE_SIZE], bool *spoke, char *err);

#endif
