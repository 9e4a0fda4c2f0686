/* label.c - Kubernetes label key and value syntax. */
#include <string.h>

#include "topowire/label.h"

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A label name: 1..63 of [A-Za-z0-9._-], alphanumeric at both ends. */
static bool name_valid(const char *s, size_t n)
{
    if (n == 0 || n > TW_LABEL_VALUE_MAX)
        return false;
    if (!is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

/* A DNS-1123 subdomain: dot-separated lower-case labels, at most 253 characters. */
static bool subdomain_valid(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            size_t len = i - start;
            if (len == 0 || len > 63)
                return false;
            const char *p = s + start;
            bool lower_alnum_first = (p[0] >= 'a' && p[0] <= 'z') || (p[0] >= '0' && p[0] <= '9');
            char last = p[len - 1];
            bool lower_alnum_last = (last >= 'a' && last <= 'z') || (last >= '0' && last <= '9');
            if (!lower_alnum_first || !lower_alnum_last)
                return false;
            for (size_t j = 0; j < len; j++) {
                char c = p[j];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                    return false;
            }
            start = i + 1;
        }
    }
    return true;
}

bool tw_label_subdomain_valid(const char *s)
{
    return s != NULL && subdomain_valid(s, strlen(s));
}

bool tw_label_value_valid(const char *v)
{
    return v != NULL && name_valid(v, strlen(v));
}

bool tw_label_key_valid(const char *k)
{
    if (k == NULL)
        return false;
    const char *slash = strchr(k, '/');
    if (slash == NULL)
        return name_valid(k, strlen(k));
    if (strchr(slash + 1, '/') != NULL)
        return false;
    return subdomain_valid(k, (size_t)(slash - k)) && name_valid(slash + 1, strlen(slash + 1));
}
