/* imds.h - cloud instance-metadata clients (AWS IMDSv2/v1, GCP, Azure). */
#ifndef TOPOWIRE_IMDS_H
#define TOPOWIRE_IMDS_H

#include <stdint.h>

#include "topowire/label.h"

typedef enum tw_cloud {
    TW_CLOUD_AUTO = 0,
    TW_CLOUD_AWS,
    TW_CLOUD_GCP,
    TW_CLOUD_AZURE,
} tw_cloud;

/* "auto", "aws", "gcp", "azure" (any case). Returns 0 or TW_EINVAL; out is borrowed. */
int tw_cloud_parse(const char *s, tw_cloud *out);

typedef struct tw_imds_options {
    tw_cloud cloud;       /* AUTO: detect from dmi_dir, then probe */
    const char *endpoint; /* base URL override, e.g. http://127.0.0.1:8080 (NULL = cloud default) */
    const char *dmi_dir;  /* NULL = /sys/class/dmi/id */
    long token_timeout_ms; /* AWS IMDSv2 token PUT give-up time; 0 = 500 ms */
    int aws_disabled;      /* AWS_EC2_METADATA_DISABLED=true */
    const char *user_agent;
} tw_imds_options;

/*
 * Fills opts from the environment: AWS_EC2_METADATA_DISABLED ("true" in any
 * case sets aws_disabled; other values leave it alone) and
 * AWS_EC2_METADATA_SERVICE_ENDPOINT (only when endpoint is still NULL and the
 * variable is not empty). Strings point into the environment (borrowed).
 */
void tw_imds_options_from_env(tw_imds_options *opts);

typedef struct tw_imds_result {
    tw_cloud cloud;                    /* which cloud answered */
    char zone[TW_LABEL_VALUE_SIZE];    /* us-east-1b / europe-west1-d / eastus-2; "" when unknown */
    char zone_id[TW_LABEL_VALUE_SIZE]; /* AWS only: use1-az4; "" elsewhere or when not served */
    char region[TW_LABEL_VALUE_SIZE];  /* served or derived from the zone; "" when unknown */
    int imds_v1;                       /* AWS: 1 when the IMDSv1 fallback was used */
} tw_imds_result;

/*
 * Asks the instance-metadata service for the zone, zone ID and region before
 * deadline (an absolute tw_now_ms() time; 0 = 5 s from now). With cloud AUTO
 * the cloud is named by the firmware's DMI strings in dmi_dir ("Amazon EC2"
 * vendors or an "amazon" BIOS/product version mean AWS, a "Google" vendor
 * GCP, a "Microsoft Corporation" "Virtual Machine" Azure), or else AWS, GCP
 * and Azure are probed in that order, each within a share of the time left.
 * Every value is validated as a label value; an invalid zone ID or region is
 * dropped and reported through err while the call still succeeds (err is ""
 * when there is nothing to report). A region not served is derived from the
 * zone's shape (us-east-1b -> us-east-1, europe-west1-d -> europe-west1).
 * Returns 0 (zone set), TW_EDISABLED (AWS switched off), TW_ENOTFOUND (no
 * cloud detected or no zone served), TW_EBADVALUE (the zone is not a valid
 * label value), TW_EUNAUTH (IMDSv2 required but no token could be had),
 * TW_EFORBIDDEN, TW_ETIMEDOUT, TW_ENET, TW_EPARSE, TW_EHTTP, TW_ETOOBIG,
 * TW_EREDIRECT, TW_EINVAL, TW_ENOMEM. opts is borrowed; out is written only
 * on success. Needs tw_http_global_init().
 */
int tw_imds_query(const tw_imds_options *opts, uint64_t deadline, tw_imds_result *out, char *err);

#endif
