/* label.h - Kubernetes label key and value validation. */
#ifndef TOPOWIRE_LABEL_H
#define TOPOWIRE_LABEL_H

#include <stdbool.h>

/* Longest valid label value, without the terminator. */
#define TW_LABEL_VALUE_MAX 63
/* A buffer that holds any valid label value and its terminator. */
#define TW_LABEL_VALUE_SIZE (TW_LABEL_VALUE_MAX + 1)

/*
 * True when v is a non-empty valid label value: at most 63 characters of
 * [A-Za-z0-9._-], beginning and ending with an alphanumeric character. The
 * empty string is a valid Kubernetes label value but is reported false here,
 * because topowire treats it as "no value".
 */
bool tw_label_value_valid(const char *v);

/*
 * True when k is a valid label key: an optional DNS-subdomain prefix (at most
 * 253 characters) and '/', then a name of 1 to 63 characters of
 * [A-Za-z0-9._-] with alphanumeric ends.
 */
bool tw_label_key_valid(const char *k);

#endif
