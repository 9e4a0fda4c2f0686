/* imds.h - cloud instance-metadata clients (AWS IMDSv2/v1, GCP, Azure). */
#ifndef TOPOWIRE_IMDS_H
#define TOPOWIRE_IMDS_H

#include <stdint.h>

typedef enum tw_cloud {
    TW_CLOUD_AUTO = 0,
    TW_CLOUD_AWS,
    TW_CLOUD_GCP,
    TW_CLOUD_AZURE,
} tw_cloud;

/* "auto", "aws", "gcp", "azure". Return 0 or TW_EINVAL. */
int tw_cloud_parse(const char *s, tw_cloud *out);
const char *tw_cloud_name(tw_cloud c);

typedef struct tw_imds_options {
    tw_cloud cloud;            /* AUTO: detect from dmi_dir, then probe */
    const char *endpoint;      /* base URL override, e.g. http://127.0.0.1:8080 (NULL = cloud default) */
    const char *dmi_dir;       /* NULL = /sys/class/dmi/id */
    long token_timeout_ms;     /* AWS IMDSv2 token PUT give-up time; 0 = 500 ms */
    int aws_disabled;          /* AWS_EC2_METADATA_DISABLED=true */
    const char *user_agent;
} tw_imds_options;

/*
 * Fills opts from the environment: AWS_EC2_METADATA_DISABLED and
 * AWS_EC2_METADATA_SERVICE_ENDPOINT (only when endpoint is still NULL).
 * Strings point into the environment (borrowed).
 */
void tw_imds_options_from_env(tw_imds_options *opts);

typedef struct tw_imds_result {
    tw_cloud cloud;   /* which cloud answered */
    char zone[64];    /* us-east-1b / europe-west1-d / eastus-2; "" when unknown */
    char zone_id[64]; /* AWS only: use1-az4; "" elsewhere or when not served */
    char region[64];  /* served or derived from the zone; "" when unknown */
    int imds_v1;      /* AWS: 1 when the IMDSv1 fallback was used */
} tw_imds_result;

/*
 * Asks the instance-metadata service for the zone, zone ID and region before
 * deadline. Every value is validated as a label value; invalid ones are
 * dropped and reported through err while the call still succeeds if the zone
 * was found. Returns 0 (zone set), TW_EDISABLED, TW_ENOTFOUND (no cloud
 * detected or no zone served), TW_ETIMEDOUT, TW_ENET, TW_EPARSE, TW_EHTTP,
 * TW_ENOMEM.
 */
int tw_imds_query(const tw_imds_options *opts, uint64_t deadline, tw_imds_result *out, char *err);

/*
 * Derives a region from a zone name for the given cloud: us-east-1b ->
 * us-east-1, europe-west1-d -> europe-west1, eastus-2 -> eastus. Returns 0 or
 * TW_EPARSE when the zone does not have the cloud's shape. out holds 64 bytes.
 */
int tw_imds_region_from_zone(tw_cloud cloud, const char *zone, char out[64]);

#endif
