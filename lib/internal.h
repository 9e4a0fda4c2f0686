/* internal.h - tw__ functions shared inside the library and with its unit tests and fuzzers. */
#ifndef TOPOWIRE_INTERNAL_H
#define TOPOWIRE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "topowire/kubeconfig.h"
#include "topowire/label.h"

/* ---- kubeconfig.c -------------------------------------------------------------------------- */

/* Never open a file the kubeconfig names (client-certificate, client-key): fail instead. */
#define TW__KUBECONFIG_NO_FILES 1u

/*
 * Parses a kubeconfig held in memory: text is len bytes of YAML or JSON (not
 * necessarily NUL-terminated; at most 4 MiB), name is what error messages
 * call it (the file's path), dir the directory relative paths are resolved
 * against (NULL leaves them as written), context as for tw_kube_config_load.
 * Nothing is run: an exec plugin is only described in the result. Files the
 * config names are read now unless flags holds TW__KUBECONFIG_NO_FILES.
 * Returns 0 and a new config in *out (free with tw_kube_config_free; out is
 * written only on success), or the codes of tw_kube_config_load except
 * TW_ENOCONFIG. Borrows every argument.
 */
int tw__kube_config_parse(const char *text, size_t len, const char *name, const char *dir,
                          const char *context, unsigned flags, tw_kube_config **out, char *err);

/* ---- imds.c -------------------------------------------------------------------------------- */

/* Size of an IMDSv2 token buffer, terminator included. */
#define TW__IMDS_TOKEN_MAX 1024

/*
 * Takes a served value of n bytes at p (not NUL-terminated): one trailing
 * newline (or CRLF) is dropped and the rest must be a valid label value. Copies
 * it into out (64 bytes) and returns true, or returns false and leaves out
 * alone. Used for every AWS placement answer.
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
 * one trailing newline allowed) into zone and region (64 bytes each; region
 * is "" when the zone has no GCP shape). *spoke is set true once the answer
 * has GCP's form, even when the zone then proves invalid. Returns 0,
 * TW_EPARSE (not of that form) or TW_EBADVALUE (the zone is not a valid label
 * value); zone and region are written only on success.
 */
int tw__imds_parse_gcp_zone(const char *body, size_t len, char zone[TW_LABEL_VALUE_SIZE],
                            char region[TW_LABEL_VALUE_SIZE], bool *spoke, char *err);

/*
 * Parses Azure's metadata/instance JSON (len bytes) into zone
 * ("<location>-<zone>") and region (the location), 64 bytes each. *spoke is
 * set true once the answer is a JSON object with a string compute.location.
 * Returns 0, TW_EPARSE, TW_ENOTFOUND (a regional VM: no zone) or TW_EBADVALUE;
 * zone and region are written only on success.
 */
int tw__imds_parse_azure(const char *body, size_t len, char zone[TW_LABEL_VALUE_SIZE],
                         char region[TW_LABEL_VALUE_SIZE], bool *spoke, char *err);

#endif
