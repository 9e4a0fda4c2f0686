/* json.c - parse untrusted JSON text with cJSON without letting "\u0000" cut a string. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "topowire/error.h"
#include "topowire/json.h"

/*
 * Returns a copy of text with every "\u0000" escape made "\u0001" (caller
 * frees), or NULL when there is none (*nomem set when the copy failed).
 */
static char *without_nul_escapes(const char *text, size_t len, bool *nomem)
{
    char *copy = NULL;
    for (size_t i = 0; i + 1 < len; i++) {
        if (text[i] != '\\')
            continue;
        /* In valid JSON every backslash starts an escape: skip its second byte. */
        if (text[i + 1] == 'u' && len - i >= 6 && memcmp(text + i + 2, "0000", 4) == 0) {
            if (copy == NULL) {
                if ((copy = malloc(len)) == NULL) {
                    *nomem = true;
                    return NULL;
                }
                memcpy(copy, text, len);
            }
            copy[i + 5] = '1';
        }
        i++;
    }
    return copy;
}

static bool only_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            return false;
    return true;
}

int tw_json_parse(const char *text, size_t len, cJSON **out, char *err)
{
    bool nomem = false;
    char *copy = text != NULL ? without_nul_escapes(text, len, &nomem) : NULL;
    if (nomem)
        return tw_seterr(err, TW_ENOMEM, "out of memory reading JSON");
    const char *src = copy != NULL ? copy : text;
    const char *end = NULL;
    int rc = TW_OK;
    cJSON *root = src != NULL ? cJSON_ParseWithLengthOpts(src, len, &end, 0) : NULL;
    if (root == NULL)
        rc = tw_seterr(err, TW_EPARSE, "not valid JSON");
    else if (end == NULL || !only_space(end, src + len))
        rc = tw_seterr(err, TW_EPARSE, "more than one JSON value");
    free(copy);
    if (rc != TW_OK) {
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return TW_OK;
}
